/*
 * async_epoll.c - a completion queue inside your own event loop.
 *
 * The program's loop is epoll with two descriptors and no timeout of its own:
 * a timerfd that ticks every 100 ms, and the queue's descriptor from
 * ws_queue_fd. That descriptor is level-triggered: it is readable while the
 * queue has I/O to do, completions to hand out or a deadline due (a receive
 * timeout, a keepalive ping), so the loop calls ws_queue_wait(..., 0) when it
 * is readable and never needs to know the library's timers. (libuv's
 * uv_poll_start, Qt's QSocketNotifier or Python's loop.add_reader take the
 * descriptor the same way.)
 *
 * Against an echo server: on each of TICKS ticks, send "tick N"; a receive is
 * always pending and checks each echo; then ws_close, and exit once the
 * handle's HANDLE_CLOSING arrived.
 *
 * Usage: async_epoll URL [TICKS]   (default 5)
 */
#define _GNU_SOURCE

#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common.h"

struct client {
    ws_handle h;
    int ticks, sent, echoed, finished;
    char out[32][16]; /* one buffer per send: each stays valid until its WRITE_COMPLETE */
    char in[64];
};

static void start_receive(struct client *c)
{
    ws_error rc = ws_receive(c->h, c->in, sizeof c->in, NULL, NULL);
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail("ws_receive", rc, __FILE__, __LINE__);
}

static void on_completion(struct client *c, const ws_completion *x)
{
    switch (x->status) {
    case WS_CALLBACK_STATUS_CONNECT_COMPLETE:
        printf("connected\n");
        start_receive(c);
        break;
    case WS_CALLBACK_STATUS_WRITE_COMPLETE:
        break;
    case WS_CALLBACK_STATUS_READ_COMPLETE: {
        char want[16];
        snprintf(want, sizeof want, "tick %d", c->echoed);
        EXPECT(x->io.buffer_type == WS_BUFFER_UTF8_MESSAGE, "a text echo");
        EXPECT(x->io.bytes_transferred == strlen(want) &&
                   memcmp(c->in, want, strlen(want)) == 0,
               "the echo of the tick");
        printf("echo: %.*s\n", (int)x->io.bytes_transferred, c->in);
        c->echoed++;
        if (c->echoed < c->ticks) {
            start_receive(c);
        } else {
            ws_error rc = ws_close(c->h, WS_CLOSE_STATUS_SUCCESS, "done", 4);
            if (rc != WS_ERROR_IO_PENDING)
                ws_example_fail("ws_close", rc, __FILE__, __LINE__);
        }
        break;
    }
    case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
        printf("closed\n");
        CHECK(ws_close_handle(c->h));
        break;
    case WS_CALLBACK_STATUS_HANDLE_CLOSING:
        c->finished = 1;
        break;
    case WS_CALLBACK_STATUS_REQUEST_ERROR:
        die("operation %u failed: %s", (unsigned)x->result.operation,
            ws_error_name(x->result.error));
    default:
        die("unexpected status %#x", (unsigned)x->status);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        die("usage: %s URL [TICKS]", argv[0]);
    static struct client c;
    c.ticks = argc == 3 ? atoi(argv[2]) : 5;
    if (c.ticks <= 0 || c.ticks > 32)
        die("TICKS must be 1 to 32");

    ws_handle queue = 0;
    CHECK(ws_queue_create(&queue));
    int qfd = -1;
    CHECK(ws_queue_fd(queue, &qfd));

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec every = {{0, 100000000}, {0, 100000000}};
    if (tfd < 0 || timerfd_settime(tfd, 0, &every, NULL) != 0)
        die("timerfd: %s", strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = qfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, qfd, &ev) != 0)
        die("epoll: %s", strerror(errno));
    ev.data.fd = tfd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) != 0)
        die("epoll: %s", strerror(errno));

    CHECK(ws_open(argv[1], &c.h));
    CHECK(ws_set_option(c.h, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    uint32_t timeout_ms = 5000; /* a lost echo fails the receive: the queue fd wakes for it */
    CHECK(ws_set_option(c.h, WS_OPTION_RECEIVE_TIMEOUT, &timeout_ms, sizeof timeout_ms));
    ws_error rc = ws_connect(c.h);
    if (rc != WS_ERROR_IO_PENDING)
        ws_example_fail("ws_connect", rc, __FILE__, __LINE__);

    while (!c.finished) {
        struct epoll_event ready[2];
        int n = epoll_wait(ep, ready, 2, -1); /* no timeout: the queue fd covers deadlines */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (ready[i].data.fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    die("read timerfd: %s", strerror(errno));
                if (c.sent == c.ticks)
                    continue; /* all sent (the handle may be closed already) */
                uint32_t state = 0;
                CHECK(ws_query_state(c.h, &state));
                if (state == WS_STATE_OPEN) {
                    char *buf = c.out[c.sent];
                    int len = snprintf(buf, sizeof c.out[0], "tick %d", c.sent);
                    rc = ws_send(c.h, WS_BUFFER_UTF8_MESSAGE, buf, (size_t)len);
                    if (rc != WS_ERROR_IO_PENDING)
                        ws_example_fail("ws_send", rc, __FILE__, __LINE__);
                    c.sent++;
                }
            } else {
                /* the queue has work: do it without blocking */
                ws_completion out[8];
                size_t got = 0;
                rc = ws_queue_wait(queue, out, 8, &got, 0);
                if (rc != WS_OK && rc != WS_ERROR_TIMEOUT)
                    ws_example_fail("ws_queue_wait", rc, __FILE__, __LINE__);
                for (size_t k = 0; k < got; k++)
                    on_completion(&c, &out[k]);
            }
        }
    }
    close(ep);
    close(tfd);
    CHECK(ws_close_handle(queue));
    printf("epoll ok: %d echoes\n", c.echoed);
    return 0;
}
