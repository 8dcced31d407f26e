/*
 * echo_client.c - the basic life of a wshandle client, against an echo server.
 *
 *   open -> set a receive timeout -> connect -> send text, receive the echo
 *   -> send binary, receive the echo -> close handshake -> read the server's
 *   close status -> release the handle.
 *
 * Usage: echo_client ws://host:port/path
 */
#include "common.h"

/*
 * Receive one whole message into msg (room for cap bytes) and return its
 * length; *type is set to WS_BUFFER_UTF8_MESSAGE or WS_BUFFER_BINARY_MESSAGE.
 *
 * ws_receive delivers as much of the current message as fits in the buffer.
 * While more of the same message remains it says *_FRAGMENT; the last piece
 * (possibly 0 bytes) says *_MESSAGE. The 16-byte buffer here is deliberately
 * small so that longer messages come in several pieces.
 */
static size_t receive_message(ws_handle h, unsigned char *msg, size_t cap, uint32_t *type)
{
    unsigned char piece[16];
    size_t len = 0;

    for (;;) {
        size_t n = 0;
        CHECK(ws_receive(h, piece, sizeof piece, &n, type));
        if (*type == WS_BUFFER_CLOSE)
            die("the server sent a close frame instead of an echo");
        if (n > cap - len)
            die("the echo is longer than %zu bytes", cap);
        memcpy(msg + len, piece, n);
        len += n;
        printf("  piece: %zu bytes, %s\n", n, buffer_type_name(*type));
        if (*type == WS_BUFFER_UTF8_MESSAGE || *type == WS_BUFFER_BINARY_MESSAGE)
            return len; /* last piece of the message */
        /* WS_BUFFER_*_FRAGMENT: more of this message follows */
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: %s ws://host:port/path", argv[0]);

    /* 1. A client handle: parses the URL, no network I/O yet. */
    ws_handle h = 0;
    CHECK(ws_open(argv[1], &h));

    /* 2. Options go between ws_open and ws_connect. A u32 option takes a
     *    pointer to the value and exactly sizeof(uint32_t). With a receive
     *    timeout, a silent server makes ws_receive fail with WS_ERROR_TIMEOUT
     *    after 10 s instead of waiting forever. */
    uint32_t receive_timeout_ms = 10000;
    CHECK(ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, &receive_timeout_ms, sizeof(uint32_t)));

    /* 3. TCP (+ TLS for wss://) and the HTTP upgrade. */
    CHECK(ws_connect(h));

    unsigned char echo[256];
    size_t echo_len;
    uint32_t type;

    /* 4. A text message: must be valid UTF-8; no NUL terminator is sent. */
    const char text[] = "hello wshandle: a text longer than the buffer arrives in pieces";
    CHECK(ws_send(h, WS_BUFFER_UTF8_MESSAGE, text, strlen(text)));
    printf("sent text \"%s\"\n", text);
    echo_len = receive_message(h, echo, sizeof echo, &type);
    EXPECT(type == WS_BUFFER_UTF8_MESSAGE, "the echo of a text message is text");
    EXPECT(echo_len == strlen(text) && memcmp(echo, text, echo_len) == 0,
           "the echo equals the text sent");
    printf("got text echo \"%.*s\"\n", (int)echo_len, (const char *)echo);

    /* 5. A binary message: any bytes, zeros included. */
    const unsigned char bytes[3] = {0, 1, 2};
    CHECK(ws_send(h, WS_BUFFER_BINARY_MESSAGE, bytes, sizeof bytes));
    printf("sent binary {0, 1, 2}\n");
    echo_len = receive_message(h, echo, sizeof echo, &type);
    EXPECT(type == WS_BUFFER_BINARY_MESSAGE, "the echo of a binary message is binary");
    EXPECT(echo_len == sizeof bytes && memcmp(echo, bytes, sizeof bytes) == 0,
           "the echo equals the bytes sent");
    printf("got binary echo of %zu bytes\n", echo_len);

    /* 6. The full close handshake: send our close frame, wait for the
     *    server's (discarding any data still in flight), close TCP. The reason
     *    is UTF-8 bytes with an explicit length, at most 123 bytes. */
    CHECK(ws_close(h, WS_CLOSE_STATUS_SUCCESS, "bye", 3));

    /* 7. What the server put in its close frame. The reason is NOT
     *    NUL-terminated: reason_consumed says how many bytes were written. */
    uint16_t status = 0;
    char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t reason_consumed = 0;
    CHECK(ws_query_close_status(h, &status, reason, sizeof reason, &reason_consumed));
    printf("server closed with %u \"%.*s\"\n", (unsigned)status, (int)reason_consumed, reason);

    /* 8. Release the handle and all its memory. Needed after every ws_open,
     *    whatever happened to the connection. */
    CHECK(ws_close_handle(h));

    printf("echo ok\n");
    return 0;
}
