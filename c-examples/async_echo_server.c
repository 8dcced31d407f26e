/*
 * async_echo_server.c - an echo server in queue mode: one thread, any number of
 * connections, no blocking call.
 *
 * The listener and every connection it accepts are bound to one completion
 * queue; ws_queue_wait does their I/O on this thread and hands back their
 * completions. Each connection always has a receive pending; every piece it
 * receives is echoed with its type (the echo's copy lives until its
 * WRITE_COMPLETE), and the client's close status and reason are echoed back
 * with ws_close. It accepts permessage-deflate when a client offers it. After
 * SECONDS (default 60) every handle is closed; the program waits for each
 * one's HANDLE_CLOSING (after which nothing more comes for it and its memory
 * may be freed), closes the queue, prints "served N connections" and exits.
 *
 * Usage: async_echo_server [URL] [SECONDS]   (URL default ws://127.0.0.1:0/)
 * Prints "listening on port N" first.
 */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#include "common.h"

#define PIECE 65536

/* An echo waiting for its WRITE_COMPLETE (sends complete in call order: a FIFO). */
struct echo {
    struct echo *next;
    size_t len;
    unsigned char data[];
};

/* One connection: its receive buffer and its echoes in flight. Linked into a list of
 * all open handles so that they can be closed at the end. */
struct conn {
    ws_handle h;
    struct conn *prev, *next;
    struct echo *first, *last;
    int released; /* ws_close_handle was called */
    unsigned char buf[PIECE];
};

static struct conn *conns; /* every connection not yet HANDLE_CLOSING */
static long open_handles;  /* connections and the listener */
static int stopping;       /* time is up: everything is being closed */
static long served;        /* connections accepted */

static void release(struct conn *c)
{
    if (!c->released)
        CHECK(ws_close_handle(c->h));
    c->released = 1;
}

static void fail_unless_pending(ws_error rc, const char *call, int line)
{
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail(call, rc, __FILE__, line);
}

static void start_receive(struct conn *c)
{
    fail_unless_pending(ws_receive(c->h, c->buf, sizeof c->buf, NULL, NULL), "ws_receive",
                        __LINE__);
}

static void accepted(ws_handle h)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        die("out of memory");
    c->h = h;
    served++;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    open_handles++;
    void *ctx = c;
    CHECK(ws_set_option(h, WS_OPTION_CONTEXT_VALUE, &ctx, sizeof ctx));
    start_receive(c);
}

static void echo(struct conn *c, size_t n, uint32_t type)
{
    struct echo *e = malloc(sizeof *e + n);
    if (e == NULL)
        die("out of memory");
    e->next = NULL;
    e->len = n;
    memcpy(e->data, c->buf, n);
    if (c->last)
        c->last->next = e;
    else
        c->first = e;
    c->last = e;
    fail_unless_pending(ws_send(c->h, type, e->data, n), "ws_send", __LINE__);
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
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* The client closed: echo its status and reason with the full close. */
static void answer_close(struct conn *c)
{
    uint16_t status = 0;
    char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t len = 0;
    CHECK(ws_query_close_status(c->h, &status, reason, sizeof reason, &len));
    if (status == WS_CLOSE_STATUS_EMPTY || status == WS_CLOSE_STATUS_ABORTED)
        len = 0;
    if (status == WS_CLOSE_STATUS_ABORTED)
        status = WS_CLOSE_STATUS_EMPTY;
    fail_unless_pending(ws_close(c->h, status, reason, len), "ws_close", __LINE__);
}

static void handle(ws_handle listener, const ws_completion *x)
{
    struct conn *c = x->context; /* NULL for the listener */
    switch (x->status) {
    case WS_CALLBACK_STATUS_ACCEPT_COMPLETE:
        accepted(x->accepted);
        fail_unless_pending(ws_accept(listener, NULL), "ws_accept", __LINE__);
        break;
    case WS_CALLBACK_STATUS_READ_COMPLETE:
        if (x->io.buffer_type == WS_BUFFER_CLOSE) {
            answer_close(c);
            break;
        }
        echo(c, x->io.bytes_transferred, x->io.buffer_type);
        start_receive(c);
        break;
    case WS_CALLBACK_STATUS_WRITE_COMPLETE:
        written(c);
        break;
    case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
        release(c);
        break;
    case WS_CALLBACK_STATUS_REQUEST_ERROR:
        if (x->result.error != WS_ERROR_OPERATION_CANCELLED) {
            /* a client that vanished or broke the protocol: drop it */
            printf("handle %llx: operation %u failed: %s\n", (unsigned long long)x->handle,
                   (unsigned)x->result.operation, ws_error_name(x->result.error));
            if (c != NULL)
                release(c);
            else if (!stopping)
                fail_unless_pending(ws_accept(listener, NULL), "ws_accept", __LINE__);
        }
        break;
    case WS_CALLBACK_STATUS_HANDLE_CLOSING:
        if (c != NULL)
            closing(c);
        open_handles--;
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    const char *url = argc >= 2 ? argv[1] : "ws://127.0.0.1:0/";
    long seconds = argc >= 3 ? atol(argv[2]) : 60;
    ws_handle queue = 0, listener = 0;
    CHECK(ws_queue_create(&queue));
    CHECK(ws_listen(url, &listener));
    CHECK(ws_set_option(listener, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    /* accept permessage-deflate when a client offers it, as echo_server.c does */
    uint32_t on = 1;
    CHECK(ws_set_option(listener, WS_OPTION_PERMESSAGE_DEFLATE, &on, sizeof on));
    open_handles = 1;
    uint32_t port = 0;
    size_t len = sizeof port;
    CHECK(ws_query_option(listener, WS_OPTION_LOCAL_PORT, &port, &len));
    printf("listening on port %u\n", (unsigned)port);
    fflush(stdout);
    fail_unless_pending(ws_accept(listener, NULL), "ws_accept", __LINE__);

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    ws_completion out[64];
    while (open_handles > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!stopping && now.tv_sec - start.tv_sec >= seconds) {
            /* time is up: close everything; each handle's HANDLE_CLOSING follows */
            stopping = 1;
            CHECK(ws_close_handle(listener));
            for (struct conn *c = conns; c; c = c->next)
                release(c);
        }
        size_t n = 0;
        ws_error rc = ws_queue_wait(queue, out, 64, &n, 200);
        if (rc == WS_ERROR_TIMEOUT)
            continue;
        if (rc != WS_OK)
            ws_example_fail("ws_queue_wait", rc, __FILE__, __LINE__);
        for (size_t i = 0; i < n; i++)
            handle(listener, &out[i]);
    }
    CHECK(ws_close_handle(queue));
    printf("served %ld connections\n", served);
    return 0;
}
