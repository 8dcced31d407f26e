/*
 * echo_server.c - a WebSocket echo server: one thread per connection.
 *
 *     echo_server [URL] [SECONDS]
 *
 * Listens on URL (default ws://127.0.0.1:0/, port 0 = any free port), prints
 * "listening on port N", and echoes every message back with its type, piece by piece
 * (a *_FRAGMENT piece is sent as a fragment, the *_MESSAGE piece ends the message), so a
 * message of any size passes through a 64 KiB buffer. When a client closes, the server
 * answers with the same status and reason. It accepts permessage-deflate (RFC 7692) when a
 * client offers it. It stops after SECONDS (default 60): the listener's receive timeout
 * bounds each ws_accept.
 */
#include <pthread.h>
#include <time.h>

#include "common.h"

#define MAX_CONNECTIONS 4096

struct conn {
    ws_handle h;
    pthread_t thread;
};

static struct conn conns[MAX_CONNECTIONS];
static size_t nconns;

/* Echo until the client closes or the connection fails. */
static void *serve(void *arg)
{
    ws_handle h = *(ws_handle *)arg;
    unsigned char buf[64 * 1024];
    for (;;) {
        size_t n;
        uint32_t type;
        ws_error e = ws_receive(h, buf, sizeof buf, &n, &type);
        if (e != WS_OK)
            break; /* the peer broke the protocol, vanished, or we are shutting down */
        if (type == WS_BUFFER_CLOSE) {
            uint16_t status = WS_CLOSE_STATUS_SUCCESS;
            unsigned char reason[WS_MAX_CLOSE_REASON_LENGTH]; /* always large enough */
            size_t reason_len;
            ws_query_close_status(h, &status, reason, sizeof reason, &reason_len);
            /* echo status and reason; 1005 (no status) is answered in kind, with no reason */
            if (status == WS_CLOSE_STATUS_EMPTY)
                reason_len = 0;
            ws_close(h, status, reason, reason_len);
            break;
        }
        if (ws_send(h, type, buf, n) != WS_OK)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:0/";
    long seconds = argc > 2 ? atol(argv[2]) : 60;
    ws_handle listener;
    CHECK(ws_listen(url, &listener));
    /* accept permessage-deflate when a client offers it (browsers, Python websockets and
     * Node ws do), with the default tuning */
    uint32_t on = 1;
    CHECK(ws_set_option(listener, WS_OPTION_PERMESSAGE_DEFLATE, &on, sizeof on));

    uint32_t port;
    size_t len = sizeof port;
    CHECK(ws_query_option(listener, WS_OPTION_LOCAL_PORT, &port, &len));
    printf("listening on port %u\n", (unsigned)port);
    fflush(stdout);

    time_t stop = time(NULL) + seconds;
    while (nconns < MAX_CONNECTIONS) {
        long left = (long)(stop - time(NULL));
        if (left <= 0)
            break;
        uint32_t ms = (uint32_t)left * 1000u; /* each accept waits at most until the stop */
        CHECK(ws_set_option(listener, WS_OPTION_RECEIVE_TIMEOUT, &ms, sizeof ms));
        struct conn *c = &conns[nconns];
        ws_error e = ws_accept(listener, &c->h);
        if (e == WS_ERROR_TIMEOUT)
            break;
        if (e != WS_OK)
            ws_example_fail("ws_accept(listener, &c->h)", e, __FILE__, __LINE__);
        if (pthread_create(&c->thread, NULL, serve, &c->h) != 0)
            die("pthread_create failed");
        nconns++;
    }

    /* Closing a handle cancels a receive still blocked on it; then every thread ends. */
    CHECK(ws_close_handle(listener));
    for (size_t i = 0; i < nconns; i++) {
        ws_close_handle(conns[i].h);
        pthread_join(conns[i].thread, NULL);
    }
    printf("served %zu connections\n", nconns);
    return 0;
}
