/*
 * async_seed_client.c - the two-way streaming case of seed_client.c, asynchronously:
 * one thread, no blocking call.
 *
 * The scenario of seeds/003_708f1961e88b610b.txt: stream COUNT binary messages
 * of 128 KiB (default 1024: 128 MiB) while a receive is always pending for the
 * server's text replies ("Server got 4194304 bytes\n" per 4 MiB). Up to
 * PIPELINE sends are pending at once (they go on the wire in call order and
 * complete in that order). Then close, one of two ways:
 *
 *   shutdown (default) - ws_shutdown right after the last ws_send (its close
 *       frame follows the pending sends on the wire); the receive stays
 *       pending, gets the server's last reply, then WS_BUFFER_CLOSE: 33 replies.
 *   close - once the 32 regular replies are in, ws_close: the pending receive
 *       completes with WS_ERROR_OPERATION_CANCELLED first, then ws_close
 *       discards the last reply and completes when the server's close frame
 *       arrived (CLOSE_COMPLETE): 32 replies.
 *
 * Usage: async_seed_client URL [shutdown|close] [COUNT] [queue|callback]
 *
 *   queue (default): a completion queue driven by ws_queue_wait on this thread.
 *   callback: a status callback, called by the library's I/O thread; this
 *       thread only waits for the end. The same handler serves both.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "common.h"

#define MESSAGE_SIZE (128 * 1024)
#define RECEIVE_BUFFER_SIZE (64 * 1024)
#define REPLY_EVERY 4194304u
#define PIPELINE 8

static const char FULL_REPLY[] = "Server got 4194304 bytes\n";

struct client {
    ws_handle h;
    int use_close;
    long count, started, written;   /* sends: wanted, started, completed */
    unsigned full_replies, replies;
    char last_reply[64];
    unsigned char *data;            /* every send's payload (zeros; never changes) */
    unsigned char buf[RECEIVE_BUFFER_SIZE];
    char text[256];
    size_t text_len;
    int closing;                    /* ws_shutdown or ws_close was started */
    int receive_cancelled;
    int finished;                   /* HANDLE_CLOSING arrived */
    ws_error failure;               /* a REQUEST_ERROR we did not expect */
    pthread_mutex_t lock;           /* callback mode: guards finished */
    pthread_cond_t done;
};

static void start_receive(struct client *c)
{
    ws_error rc = ws_receive(c->h, c->buf, sizeof c->buf, NULL, NULL);
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail("ws_receive", rc, __FILE__, __LINE__);
}

/* Start sends until PIPELINE are pending; after the last one, ws_shutdown (shutdown mode). */
static void start_sends(struct client *c)
{
    while (c->started < c->count && c->started - c->written < PIPELINE) {
        ws_error rc = ws_send(c->h, WS_BUFFER_BINARY_MESSAGE, c->data, MESSAGE_SIZE);
        if (rc != WS_ERROR_IO_PENDING)
            ws_example_fail("ws_send", rc, __FILE__, __LINE__);
        c->started++;
    }
    if (c->started == c->count && !c->use_close && !c->closing) {
        ws_error rc = ws_shutdown(c->h, WS_CLOSE_STATUS_SUCCESS, NULL, 0);
        if (rc != WS_ERROR_IO_PENDING)
            ws_example_fail("ws_shutdown", rc, __FILE__, __LINE__);
        c->closing = 1;
    }
}

/* Close mode: once everything is sent and the regular replies are in, the full close. A
 * receive is pending then, so it completes first, with WS_ERROR_OPERATION_CANCELLED. */
static void maybe_close(struct client *c)
{
    if (!c->use_close || c->closing || c->replies < c->full_replies || c->written < c->count)
        return;
    ws_error rc = ws_close(c->h, WS_CLOSE_STATUS_SUCCESS, NULL, 0);
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail("ws_close", rc, __FILE__, __LINE__);
    c->closing = 1;
}

static void got_reply(struct client *c, size_t n, uint32_t type)
{
    if (type != WS_BUFFER_UTF8_FRAGMENT && type != WS_BUFFER_UTF8_MESSAGE)
        die("expected a text reply, got %s", buffer_type_name(type));
    if (n > sizeof c->text - c->text_len)
        die("a reply longer than %zu bytes", sizeof c->text);
    memcpy(c->text + c->text_len, c->buf, n);
    c->text_len += n;
    if (type == WS_BUFFER_UTF8_FRAGMENT)
        return;
    printf("client got: %.*s", (int)c->text_len, c->text);
    const char *want = c->replies < c->full_replies ? FULL_REPLY : c->last_reply;
    if (c->text_len != strlen(want) || memcmp(c->text, want, c->text_len) != 0)
        die("expected the reply \"%.*s\\n\"", (int)strlen(want) - 1, want);
    c->replies++;
    c->text_len = 0;
}

/* One completion of our handle, from the queue or the callback. */
static void on_completion(struct client *c, uint32_t status, const ws_web_socket_status *io,
                          const ws_async_result *result)
{
    switch (status) {
    case WS_CALLBACK_STATUS_CONNECT_COMPLETE:
        start_receive(c); /* a receive is pending from now on, until the close */
        start_sends(c);
        break;
    case WS_CALLBACK_STATUS_WRITE_COMPLETE:
        EXPECT(io->bytes_transferred == MESSAGE_SIZE, "a whole message per send");
        c->written++;
        start_sends(c);
        maybe_close(c);
        break;
    case WS_CALLBACK_STATUS_READ_COMPLETE:
        if (io->buffer_type == WS_BUFFER_CLOSE) {
            /* shutdown mode: the handshake is complete (CLOSED) */
            CHECK(ws_close_handle(c->h));
            break;
        }
        got_reply(c, io->bytes_transferred, io->buffer_type);
        start_receive(c); /* always one pending */
        maybe_close(c);
        break;
    case WS_CALLBACK_STATUS_SHUTDOWN_COMPLETE:
        break;
    case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
        CHECK(ws_close_handle(c->h));
        break;
    case WS_CALLBACK_STATUS_REQUEST_ERROR:
        if (result->operation == WS_OPERATION_RECEIVE &&
            result->error == WS_ERROR_OPERATION_CANCELLED && c->use_close) {
            c->receive_cancelled = 1;
            break;
        }
        fprintf(stderr, "operation %u failed: %s\n", (unsigned)result->operation,
                ws_error_name(result->error));
        c->failure = result->error;
        CHECK(ws_close_handle(c->h));
        break;
    case WS_CALLBACK_STATUS_HANDLE_CLOSING:
        pthread_mutex_lock(&c->lock);
        c->finished = 1;
        pthread_cond_signal(&c->done);
        pthread_mutex_unlock(&c->lock);
        break;
    default:
        die("unexpected status %#x", (unsigned)status);
    }
}

static void on_status(ws_handle h, void *context, uint32_t status, void *info, size_t info_len)
{
    (void)h;
    (void)info_len;
    struct client *c = context;
    on_completion(c, status, info, info);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5)
        die("usage: %s URL [shutdown|close] [COUNT] [queue|callback]", argv[0]);
    const char *mode = argc >= 3 ? argv[2] : "shutdown";
    const char *driver = argc >= 5 ? argv[4] : "queue";
    static struct client c; /* big (the receive buffer): not on the stack */
    c.count = argc >= 4 ? atol(argv[3]) : 1024;
    if (c.count <= 0)
        die("COUNT must be a positive number of messages");
    c.use_close = strcmp(mode, "close") == 0;
    if (!c.use_close && strcmp(mode, "shutdown") != 0)
        die("unknown mode \"%s\"", mode);
    int use_callback = strcmp(driver, "callback") == 0;
    if (!use_callback && strcmp(driver, "queue") != 0)
        die("unknown driver \"%s\"", driver);
    unsigned long long total = (unsigned long long)c.count * MESSAGE_SIZE;
    c.full_replies = (unsigned)(total / REPLY_EVERY);
    snprintf(c.last_reply, sizeof c.last_reply, "Server got %llu bytes\n", total % REPLY_EVERY);
    c.data = calloc(1, MESSAGE_SIZE);
    if (c.data == NULL)
        die("out of memory");
    if (pthread_mutex_init(&c.lock, NULL) != 0 || pthread_cond_init(&c.done, NULL) != 0)
        die("pthread_mutex_init / pthread_cond_init failed");

    ws_handle queue = 0;
    CHECK(ws_open(argv[1], &c.h));
    void *ctx = &c;
    CHECK(ws_set_option(c.h, WS_OPTION_CONTEXT_VALUE, &ctx, sizeof ctx));
    if (use_callback) {
        CHECK(ws_set_status_callback(c.h, on_status));
    } else {
        CHECK(ws_queue_create(&queue));
        CHECK(ws_set_option(c.h, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    }
    ws_error rc = ws_connect(c.h);
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail("ws_connect", rc, __FILE__, __LINE__);

    if (use_callback) {
        pthread_mutex_lock(&c.lock);
        while (!c.finished)
            pthread_cond_wait(&c.done, &c.lock);
        pthread_mutex_unlock(&c.lock);
    } else {
        ws_completion out[16];
        while (!c.finished) {
            size_t n = 0;
            rc = ws_queue_wait(queue, out, 16, &n, 30000);
            if (rc != WS_OK)
                ws_example_fail("ws_queue_wait", rc, __FILE__, __LINE__);
            for (size_t i = 0; i < n; i++)
                on_completion(out[i].context, out[i].status, &out[i].io, &out[i].result);
        }
        CHECK(ws_close_handle(queue));
    }
    free(c.data);
    pthread_cond_destroy(&c.done);
    pthread_mutex_destroy(&c.lock);

    if (c.failure != WS_OK)
        die("failed: %s", ws_error_name(c.failure));
    EXPECT(c.written == c.count, "every send completed");
    if (!c.use_close) {
        EXPECT(c.replies == c.full_replies + 1, "the regular replies and the last one");
        printf("async seed shutdown ok (%s): %u replies\n", driver, c.replies);
    } else {
        EXPECT(c.receive_cancelled, "ws_close cancelled the pending receive");
        EXPECT(c.replies == c.full_replies, "the last reply went to ws_close");
        printf("async seed close ok (%s): %u replies, receive cancelled\n", driver, c.replies);
    }
    return 0;
}
