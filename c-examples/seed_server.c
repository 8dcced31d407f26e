/*
 * seed_server.c - the server from seeds/003_708f1961e88b610b.txt, in C.
 *
 *     seed_server [URL] [CONNECTIONS] [SECONDS]
 *
 * Listens on URL (default ws://127.0.0.1:0/seed), prints "listening on port N", and serves
 * CONNECTIONS clients (default 1) one after the other, within SECONDS (default 120).
 * Like the ASP.NET server of the question, it counts the bytes it receives and sends the
 * text "Server got 4194304 bytes\n" per 4 MiB; when the client's close frame arrives it
 * sends one last reply ("Server got <n> bytes\n") - a server may still send in
 * WS_STATE_CLOSE_RECEIVED - and then closes with ws_close, which answers the client's close
 * and returns at once.
 */
#include <time.h>

#include "common.h"

#define CHUNK 4194304u

static void reply(ws_handle h, size_t n)
{
    char text[64];
    int len = snprintf(text, sizeof text, "Server got %zu bytes\n", n);
    CHECK(ws_send(h, WS_BUFFER_UTF8_MESSAGE, text, (size_t)len));
}

static void serve(ws_handle h)
{
    static unsigned char buf[64 * 1024];
    size_t count = 0, total = 0, replies = 0;
    for (;;) {
        size_t n;
        uint32_t type;
        CHECK(ws_receive(h, buf, sizeof buf, &n, &type));
        if (type == WS_BUFFER_CLOSE)
            break;
        total += n;
        count += n;
        while (count >= CHUNK) {
            reply(h, CHUNK);
            replies++;
            count -= CHUNK;
        }
    }
    uint16_t status;
    size_t reason_len;
    unsigned char reason[WS_MAX_CLOSE_REASON_LENGTH];
    CHECK(ws_query_close_status(h, &status, reason, sizeof reason, &reason_len));
    reply(h, count); /* the last word, after the client's close */
    replies++;
    CHECK(ws_close(h, WS_CLOSE_STATUS_SUCCESS, NULL, 0));
    printf("server: %zu replies, %zu bytes, client closed with %u\n", replies, total,
           (unsigned)status);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:0/seed";
    long connections = argc > 2 ? atol(argv[2]) : 1;
    long seconds = argc > 3 ? atol(argv[3]) : 120;
    ws_handle listener;
    CHECK(ws_listen(url, &listener));
    uint32_t port;
    size_t len = sizeof port;
    CHECK(ws_query_option(listener, WS_OPTION_LOCAL_PORT, &port, &len));
    uint32_t ms = (uint32_t)seconds * 1000u; /* ws_accept and ws_receive give up after this */
    CHECK(ws_set_option(listener, WS_OPTION_RECEIVE_TIMEOUT, &ms, sizeof ms));
    printf("listening on port %u\n", (unsigned)port);
    fflush(stdout);

    for (long i = 0; i < connections; i++) {
        ws_handle h;
        CHECK(ws_accept(listener, &h));
        serve(h);
        CHECK(ws_close_handle(h));
    }
    CHECK(ws_close_handle(listener));
    return 0;
}
