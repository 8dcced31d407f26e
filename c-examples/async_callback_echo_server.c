/*
 * async_callback_echo_server.c - an echo server in callback mode (WinHTTP's
 * WINHTTP_FLAG_ASYNC shape): the library's I/O threads do the work and call one status
 * callback; the main thread only starts the listener and, at the end, closes everything.
 *
 * The listener has the callback; the connections it accepts get it too (each on one of the
 * I/O threads, its completions one at a time and in order, so a connection's own state
 * needs no lock). Each connection always has a receive pending; every piece received is
 * echoed with its type from a copy of its own (freed at its WRITE_COMPLETE), and the
 * client's close status and reason are echoed with ws_close. It accepts permessage-deflate
 * when a client offers it. After SECONDS (default 60) every handle is closed; the program
 * waits for each one's HANDLE_CLOSING, prints "served N connections" and exits.
 *
 * Usage: async_callback_echo_server [URL] [SECONDS]   (URL default ws://127.0.0.1:0/)
 * Prints "listening on port N" first.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <time.h>

#include "common.h"

#define PIECE 65536

/* An echo waiting for its WRITE_COMPLETE (sends complete in call order: a FIFO). */
struct echo {
    struct echo *next;
    unsigned char data[];
};

/* One connection: touched only by its own callbacks, except `released` and the list links
 * (under `lock`). */
struct conn {
    ws_handle h;
    struct conn *prev, *next;
    struct echo *first, *last;
    int released;
    unsigned char buf[PIECE];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_closed = PTHREAD_COND_INITIALIZER;
static struct conn *conns; /* every connection not yet HANDLE_CLOSING */
static long open_handles;  /* connections and the listener */
static int stopping;       /* time is up: everything is being closed */
static long served;
static ws_handle listener;

static void pending(ws_error rc, const char *call, int line)
{
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail(call, rc, __FILE__, line);
}

/* ws_close_handle once (the main thread may be closing everything at the same time). */
static void release(struct conn *c)
{
    pthread_mutex_lock(&lock);
    int first = !c->released;
    c->released = 1;
    pthread_mutex_unlock(&lock);
    if (first)
        CHECK(ws_close_handle(c->h));
}

static void start_receive(struct conn *c)
{
    ws_error rc = ws_receive(c->h, c->buf, sizeof c->buf, NULL, NULL);
    if (rc == WS_ERROR_INVALID_OPERATION || rc == WS_ERROR_INVALID_HANDLE)
        return; /* closing, or released by the main thread */
    pending(rc, "ws_receive", __LINE__);
}

static void accepted(ws_handle h)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        die("out of memory");
    c->h = h;
    void *ctx = c;
    CHECK(ws_set_option(h, WS_OPTION_CONTEXT_VALUE, &ctx, sizeof ctx));
    pthread_mutex_lock(&lock);
    served++;
    open_handles++;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    int late = stopping;
    pthread_mutex_unlock(&lock);
    if (late)
        release(c);
    else
        start_receive(c);
}

static void echo(struct conn *c, size_t n, uint32_t type)
{
    struct echo *e = malloc(sizeof *e + (n ? n : 1));
    if (e == NULL)
        die("out of memory");
    e->next = NULL;
    memcpy(e->data, c->buf, n);
    ws_error rc = ws_send(c->h, type, e->data, n);
    if (rc != WS_ERROR_IO_PENDING) {
        free(e); /* refused (closing): nothing will complete for it */
        return;
    }
    if (c->last)
        c->last->next = e;
    else
        c->first = e;
    c->last = e;
}

static void written(struct conn *c)
{
    struct echo *e = c->first;
    c->first = e->next;
    if (c->first == NULL)
        c->last = NULL;
    free(e);
}

static void closing(struct conn *c)
{
    while (c->first)
        written(c); /* HANDLE_CLOSING: cancelled sends never touch their buffers again */
    pthread_mutex_lock(&lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&lock);
    free(c);
}

/* The client closed: echo its status and reason with the full close. */
static void answer_close(struct conn *c)
{
    uint16_t status = 0;
    char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t len = 0;
    if (ws_query_close_status(c->h, &status, reason, sizeof reason, &len) != WS_OK)
        return; /* released by the main thread meanwhile */
    if (status == WS_CLOSE_STATUS_EMPTY || status == WS_CLOSE_STATUS_ABORTED)
        len = 0;
    if (status == WS_CLOSE_STATUS_ABORTED)
        status = WS_CLOSE_STATUS_EMPTY;
    if (ws_close(c->h, status, reason, len) != WS_ERROR_IO_PENDING)
        release(c);
}

static void handle_gone(void)
{
    pthread_mutex_lock(&lock);
    if (--open_handles == 0)
        pthread_cond_signal(&all_closed);
    pthread_mutex_unlock(&lock);
}

static void callback(ws_handle h, void *context, uint32_t status, void *info, size_t info_len)
{
    struct conn *c = context; /* NULL for the listener */
    const ws_web_socket_status *io = info;
    switch (status) {
    case WS_CALLBACK_STATUS_ACCEPT_COMPLETE:
        EXPECT(info_len == sizeof(ws_handle), "ACCEPT_COMPLETE info");
        accepted(*(const ws_handle *)info);
        pending(ws_accept(h, NULL), "ws_accept", __LINE__);
        break;
    case WS_CALLBACK_STATUS_READ_COMPLETE:
        EXPECT(info_len == sizeof *io, "READ_COMPLETE info");
        if (io->buffer_type == WS_BUFFER_CLOSE) {
            answer_close(c);
            break;
        }
        echo(c, io->bytes_transferred, io->buffer_type);
        start_receive(c);
        break;
    case WS_CALLBACK_STATUS_WRITE_COMPLETE:
        written(c);
        break;
    case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
        release(c);
        break;
    case WS_CALLBACK_STATUS_REQUEST_ERROR: {
        const ws_async_result *r = info;
        EXPECT(info_len == sizeof *r, "REQUEST_ERROR info");
        if (r->error == WS_ERROR_OPERATION_CANCELLED)
            break;
        /* a client that vanished or broke the protocol: drop it */
        if (c != NULL)
            release(c);
        else
            pending(ws_accept(h, NULL), "ws_accept", __LINE__);
        break;
    }
    case WS_CALLBACK_STATUS_HANDLE_CLOSING:
        if (c != NULL)
            closing(c);
        handle_gone();
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    const char *url = argc >= 2 ? argv[1] : "ws://127.0.0.1:0/";
    long seconds = argc >= 3 ? atol(argv[2]) : 60;
    CHECK(ws_listen(url, &listener));
    uint32_t on = 1;
    CHECK(ws_set_option(listener, WS_OPTION_PERMESSAGE_DEFLATE, &on, sizeof on));
    CHECK(ws_set_status_callback(listener, callback));
    open_handles = 1;
    uint32_t port = 0;
    size_t len = sizeof port;
    CHECK(ws_query_option(listener, WS_OPTION_LOCAL_PORT, &port, &len));
    printf("listening on port %u\n", (unsigned)port);
    fflush(stdout);
    pending(ws_accept(listener, NULL), "ws_accept", __LINE__);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&lock);
    while (pthread_cond_timedwait(&all_closed, &lock, &until) == 0 && open_handles > 0) {
    }
    /* time is up: close everything; each handle's HANDLE_CLOSING follows */
    stopping = 1;
    pthread_mutex_unlock(&lock);
    CHECK(ws_close_handle(listener));
    pthread_mutex_lock(&lock);
    for (struct conn *c = conns; c; c = c->next) {
        if (!c->released) {
            c->released = 1;
            CHECK(ws_close_handle(c->h));
        }
    }
    while (open_handles > 0)
        pthread_cond_wait(&all_closed, &lock);
    pthread_mutex_unlock(&lock);
    printf("served %ld connections\n", served);
    return 0;
}
