/* ws_send_batch from C, with the default signal dispositions, against an echo server:
 *
 *   batch URL    sends a batch (text, binary, a text message split inside a code point, an
 *                empty message, 200 small messages), checks every echo, checks that a refused
 *                batch sends nothing and leaves the open message open, then closes.
 *
 * Prints one line per check and "N passed, M failed"; exits 1 on any failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wshandle.h"

static int passed, failed;

static void expect(ws_error got, ws_error want, const char *what) {
    char detail[256] = "";
    if (got != want) ws_last_error_message(detail, sizeof detail);
    printf("%s %s: got %s, want %s%s%s\n", got == want ? "ok  " : "FAIL", what,
           ws_error_name(got), ws_error_name(want), got == want ? "" : " -- ", detail);
    if (got == want) passed++; else failed++;
}

static void truth(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok) passed++; else failed++;
}

/* Receives one whole message into buf (at most cap bytes); returns its length, or -1. */
static long recv_message(ws_handle h, char *buf, size_t cap, uint32_t *type) {
    size_t total = 0, n;
    for (;;) {
        if (total == cap) return -1;
        if (ws_receive(h, buf + total, cap - total, &n, type) != WS_OK) return -1;
        total += n;
        if (*type != WS_BUFFER_UTF8_FRAGMENT && *type != WS_BUFFER_BINARY_FRAGMENT) return (long)total;
    }
}

static void expect_message(ws_handle h, const char *data, size_t len, uint32_t type, const char *what) {
    char buf[1024];
    uint32_t got_type = 99;
    long n = recv_message(h, buf, sizeof buf, &got_type);
    truth(n == (long)len && got_type == type && memcmp(buf, data, len) == 0, what);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: batch URL\n");
        return 2;
    }
    ws_handle h;
    uint32_t ms = 10000;
    expect(ws_open(argv[1], &h), WS_OK, "ws_open");
    ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, &ms, sizeof ms);
    ws_set_option(h, WS_OPTION_SEND_TIMEOUT, &ms, sizeof ms);
    ws_set_option(h, WS_OPTION_CLOSE_TIMEOUT, &ms, sizeof ms);
    ws_error e = ws_connect(h);
    expect(e, WS_OK, "ws_connect");
    if (e != WS_OK) return 1;

    const ws_batch_item items[] = {
        {WS_BUFFER_UTF8_MESSAGE, "hello", 5},
        {WS_BUFFER_BINARY_MESSAGE, "\x00\x01\x02", 3},
        {WS_BUFFER_UTF8_FRAGMENT, "\xe2\x82", 2}, /* ends inside the euro sign */
        {WS_BUFFER_UTF8_MESSAGE, "\xac", 1},
        {WS_BUFFER_BINARY_MESSAGE, NULL, 0},
    };
    expect(ws_send_batch(h, items, sizeof items / sizeof items[0]), WS_OK, "ws_send_batch of 5");
    expect_message(h, "hello", 5, WS_BUFFER_UTF8_MESSAGE, "echo 0: text");
    expect_message(h, "\x00\x01\x02", 3, WS_BUFFER_BINARY_MESSAGE, "echo 1: binary");
    expect_message(h, "\xe2\x82\xac", 3, WS_BUFFER_UTF8_MESSAGE, "echo 2: text sent in two pieces");
    expect_message(h, "", 0, WS_BUFFER_BINARY_MESSAGE, "echo 3: empty");

    enum { MANY = 200 };
    static char texts[MANY][8];
    ws_batch_item many[MANY];
    for (int i = 0; i < MANY; i++) {
        int n = snprintf(texts[i], sizeof texts[i], "m%d", i);
        many[i].buffer_type = WS_BUFFER_UTF8_MESSAGE;
        many[i].buf = texts[i];
        many[i].len = (size_t)n;
    }
    expect(ws_send_batch(h, many, MANY), WS_OK, "ws_send_batch of 200");
    int in_order = 1;
    for (int i = 0; i < MANY; i++) {
        char buf[16];
        uint32_t type;
        long n = recv_message(h, buf, sizeof buf, &type);
        if (n != (long)strlen(texts[i]) || memcmp(buf, texts[i], (size_t)n) != 0) in_order = 0;
    }
    truth(in_order, "200 echoes in order");

    /* all or nothing: the third element is not UTF-8 */
    expect(ws_send(h, WS_BUFFER_UTF8_FRAGMENT, "open-", 5), WS_OK, "ws_send of a fragment");
    const ws_batch_item bad[] = {
        {WS_BUFFER_UTF8_MESSAGE, "x", 1},
        {WS_BUFFER_BINARY_MESSAGE, "y", 1},
        {WS_BUFFER_UTF8_MESSAGE, "\xff", 1},
    };
    expect(ws_send_batch(h, bad, 3), WS_ERROR_INVALID_PARAMETER, "a refused batch");
    char detail[256];
    ws_last_error_message(detail, sizeof detail);
    truth(strncmp(detail, "element 2", 9) == 0, "the detail names element 2");
    expect(ws_send_batch(h, NULL, 1), WS_ERROR_INVALID_PARAMETER, "items NULL");
    expect(ws_send_batch(h, NULL, 0), WS_OK, "an empty batch");
    const ws_batch_item end[] = {{WS_BUFFER_UTF8_MESSAGE, "end", 3}};
    expect(ws_send_batch(h, end, 1), WS_OK, "the open message ends");
    expect_message(h, "open-end", 8, WS_BUFFER_UTF8_MESSAGE, "nothing of the refused batch arrived");

    expect(ws_close(h, WS_CLOSE_STATUS_SUCCESS, "bye", 3), WS_OK, "ws_close");
    expect(ws_send_batch(h, end, 1), WS_ERROR_INVALID_OPERATION, "a batch after the close");
    expect(ws_close_handle(h), WS_OK, "ws_close_handle");
    expect(ws_send_batch(h, end, 1), WS_ERROR_INVALID_HANDLE, "a batch on a released handle");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
