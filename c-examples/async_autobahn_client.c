/*
 * async_autobahn_client.c - the client side of the Autobahn|Testsuite conformance run, in
 * the asynchronous mode: the same case loop as autobahn_client.c, with every operation
 * started and completed asynchronously.
 *
 *     async_autobahn_client ws://127.0.0.1:PORT [AGENT] [queue|callback]
 *
 * queue (the default): one completion queue, driven by ws_queue_wait on this thread.
 * callback: a status callback on the library's I/O threads; this thread only starts each
 * case and waits for its HANDLE_CLOSING.
 *
 * Each case's connection always has a receive pending into one 64 KiB buffer. Every piece
 * received is echoed with its type from a copy of its own (freed at its WRITE_COMPLETE; sends
 * complete in call order), and the receive is started again at once, so echoes overlap the
 * next receive. The server's close is answered with its status and reason (ws_close); a
 * failed operation (a protocol violation by the server, which is what many cases test)
 * releases the handle. The case ends with the handle's HANDLE_CLOSING. It offers
 * permessage-deflate like autobahn_client.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "common.h"

#define BUFFER_SIZE (64 * 1024)
#define URL_MAX 512
#define COUNT_MAX 32

/* An echo waiting for its WRITE_COMPLETE. */
struct echo {
    struct echo *next;
    unsigned char data[];
};

/* The one connection of the current case (its completions come one at a time). */
static struct {
    ws_handle h;
    unsigned char buf[BUFFER_SIZE];
    struct echo *first, *last;
    int counting;             /* getCaseCount: keep the text instead of echoing it */
    char count[COUNT_MAX];
    size_t count_len;
    int released;
    ws_error error;           /* the first failure, WS_OK if none */
    int done;                 /* HANDLE_CLOSING arrived */
} conn;

static int callback_mode;
static ws_handle queue;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;

static void pending(ws_error rc, const char *call, int line)
{
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail(call, rc, __FILE__, line);
}

static void release(void)
{
    if (!conn.released)
        CHECK(ws_close_handle(conn.h));
    conn.released = 1;
}

static void start_receive(void)
{
    ws_error rc = ws_receive(conn.h, conn.buf, sizeof conn.buf, NULL, NULL);
    if (rc == WS_ERROR_INVALID_OPERATION) {
        /* the connection closed meanwhile (our close answer is under way) */
        return;
    }
    pending(rc, "ws_receive", __LINE__);
}

static void echo(size_t n, uint32_t type)
{
    struct echo *e = malloc(sizeof *e + (n ? n : 1));
    if (e == NULL)
        die("out of memory");
    e->next = NULL;
    memcpy(e->data, conn.buf, n);
    ws_error rc = ws_send(conn.h, type, e->data, n);
    if (rc != WS_ERROR_IO_PENDING) {
        /* refused (the server already closed, say): nothing will complete for it */
        free(e);
        return;
    }
    if (conn.last)
        conn.last->next = e;
    else
        conn.first = e;
    conn.last = e;
}

static void written(void)
{
    struct echo *e = conn.first;
    if (e == NULL)
        die("a WRITE_COMPLETE without a send");
    conn.first = e->next;
    if (conn.first == NULL)
        conn.last = NULL;
    free(e);
}

/* The server closed: answer with its status and reason. */
static void answer_close(void)
{
    uint16_t status = WS_CLOSE_STATUS_SUCCESS;
    unsigned char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t len = 0;
    CHECK(ws_query_close_status(conn.h, &status, reason, sizeof reason, &len));
    if (status == WS_CLOSE_STATUS_EMPTY || status == WS_CLOSE_STATUS_ABORTED)
        len = 0;
    if (status == WS_CLOSE_STATUS_ABORTED)
        status = WS_CLOSE_STATUS_EMPTY;
    ws_error rc = ws_close(conn.h, status, reason, len);
    if (rc != WS_ERROR_IO_PENDING)
        release(); /* nothing left to close */
}

/* One completion of the current case's connection. */
static void on_completion(uint32_t status, size_t bytes, uint32_t type, ws_error error)
{
    switch (status) {
    case WS_CALLBACK_STATUS_CONNECT_COMPLETE:
        start_receive();
        break;
    case WS_CALLBACK_STATUS_READ_COMPLETE:
        if (type == WS_BUFFER_CLOSE) {
            answer_close();
        } else if (conn.counting) {
            size_t room = COUNT_MAX - 1 - conn.count_len;
            size_t take = bytes < room ? bytes : room;
            memcpy(conn.count + conn.count_len, conn.buf, take);
            conn.count_len += take;
            conn.count[conn.count_len] = '\0';
            start_receive();
        } else {
            echo(bytes, type);
            start_receive();
        }
        break;
    case WS_CALLBACK_STATUS_WRITE_COMPLETE:
        written();
        break;
    case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
        release();
        break;
    case WS_CALLBACK_STATUS_REQUEST_ERROR:
        if (error != WS_ERROR_OPERATION_CANCELLED) {
            if (conn.error == WS_OK)
                conn.error = error;
            release();
        }
        break;
    case WS_CALLBACK_STATUS_HANDLE_CLOSING:
        while (conn.first)
            written(); /* cancelled sends never touch their buffers again */
        pthread_mutex_lock(&lock);
        conn.done = 1;
        pthread_cond_signal(&finished);
        pthread_mutex_unlock(&lock);
        break;
    default:
        die("unexpected status %#x", (unsigned)status);
    }
}

static void callback(ws_handle h, void *context, uint32_t status, void *info, size_t info_len)
{
    (void)context;
    size_t bytes = 0;
    uint32_t type = 0;
    ws_error error = WS_OK;
    if (h != conn.h)
        die("a completion for another handle");
    if (status == WS_CALLBACK_STATUS_READ_COMPLETE || status == WS_CALLBACK_STATUS_WRITE_COMPLETE) {
        EXPECT(info_len == sizeof(ws_web_socket_status), "READ/WRITE_COMPLETE info");
        const ws_web_socket_status *s = info;
        bytes = s->bytes_transferred;
        type = s->buffer_type;
    } else if (status == WS_CALLBACK_STATUS_REQUEST_ERROR) {
        EXPECT(info_len == sizeof(ws_async_result), "REQUEST_ERROR info");
        error = ((const ws_async_result *)info)->error;
    }
    on_completion(status, bytes, type, error);
}

/* Runs one case: base + path, until its HANDLE_CLOSING. Returns the first failure. */
static ws_error run_case(const char *base, const char *path, int counting)
{
    char url[URL_MAX];
    int n = snprintf(url, sizeof url, "%s%s", base, path);
    if (n < 0 || (size_t)n >= sizeof url)
        die("URL too long: %s%s", base, path);
    memset(&conn, 0, sizeof conn);
    conn.counting = counting;
    CHECK(ws_open(url, &conn.h));
    uint32_t receive_ms = 60000, close_ms = 10000;
    CHECK(ws_set_option(conn.h, WS_OPTION_RECEIVE_TIMEOUT, &receive_ms, sizeof receive_ms));
    CHECK(ws_set_option(conn.h, WS_OPTION_CLOSE_TIMEOUT, &close_ms, sizeof close_ms));
    uint32_t on = 1, off = 0;
    CHECK(ws_set_option(conn.h, WS_OPTION_PERMESSAGE_DEFLATE, &on, sizeof on));
    CHECK(ws_set_option(conn.h, WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, &off, sizeof off));
    CHECK(ws_set_option(conn.h, WS_OPTION_DEFLATE_THRESHOLD, &off, sizeof off));
    if (callback_mode)
        CHECK(ws_set_status_callback(conn.h, callback));
    else
        CHECK(ws_set_option(conn.h, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    pending(ws_connect(conn.h), "ws_connect", __LINE__);
    if (callback_mode) {
        pthread_mutex_lock(&lock);
        while (!conn.done)
            pthread_cond_wait(&finished, &lock);
        pthread_mutex_unlock(&lock);
        return conn.error;
    }
    ws_completion out[16];
    while (!conn.done) {
        size_t count = 0;
        ws_error rc = ws_queue_wait(queue, out, 16, &count, 120000);
        if (rc != WS_OK)
            ws_example_fail("ws_queue_wait", rc, __FILE__, __LINE__);
        for (size_t i = 0; i < count; i++) {
            if (out[i].handle != conn.h)
                die("a completion for another handle");
            on_completion(out[i].status, out[i].io.bytes_transferred, out[i].io.buffer_type,
                          out[i].result.error);
        }
    }
    return conn.error;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4)
        die("usage: %s ws://127.0.0.1:PORT [AGENT] [queue|callback]", argv[0]);
    const char *base = argv[1];
    const char *agent = argc > 2 ? argv[2] : "wshandle";
    const char *mode = argc > 3 ? argv[3] : "queue";
    if (strcmp(mode, "callback") == 0)
        callback_mode = 1;
    else if (strcmp(mode, "queue") != 0)
        die("mode must be queue or callback, not %s", mode);
    if (!callback_mode)
        CHECK(ws_queue_create(&queue));
    char path[URL_MAX];

    run_case(base, "/getCaseCount", 1);
    long count = atol(conn.count);
    if (count <= 0)
        die("getCaseCount answered \"%s\"", conn.count);
    printf("%ld cases (%s mode)\n", count, mode);
    fflush(stdout);

    for (long i = 1; i <= count; i++) {
        snprintf(path, sizeof path, "/runCase?case=%ld&agent=%s", i, agent);
        ws_error e = run_case(base, path, 0);
        printf("case %ld: %s\n", i, ws_error_name(e));
        fflush(stdout);
    }

    snprintf(path, sizeof path, "/updateReports?agent=%s", agent);
    run_case(base, path, 0);
    if (!callback_mode)
        CHECK(ws_close_handle(queue));
    printf("reports updated\n");
    return 0;
}
