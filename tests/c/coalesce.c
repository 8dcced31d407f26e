/* Small sends share system calls (tests/async_syscalls.rs runs this under strace).
 *
 *   coalesce URL COUNT
 *
 * Queue mode, one thread: connects to URL, prints "posting" (the marker the test looks for in
 * the trace), starts COUNT sends of 16 bytes ("message 000000\n\n" numbered from 0) and a
 * ws_close with status 1000 and reason "done" before the loop runs again, prints "posted",
 * then drives the queue until CLOSE_COMPLETE, checking that the COUNT WRITE_COMPLETEs came
 * first and in call order. Prints "coalesce ok: COUNT sends" and exits 0, or exits 1 with the
 * reason. The socket writes between the two markers belong to ws_queue_wait's loop turns. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wshandle.h"

#define MESSAGE_SIZE 16

static void fail(const char *what, ws_error rc)
{
    char detail[256] = "";
    ws_last_error_message(detail, sizeof detail);
    fprintf(stderr, "coalesce: %s: %s: %s\n", what, ws_error_name(rc), detail);
    exit(1);
}

static void expect(ws_error rc, ws_error want, const char *what)
{
    if (rc != want)
        fail(what, rc);
}

/* The next completion (10 s at most). */
static ws_completion next(ws_handle q)
{
    ws_completion c;
    size_t n = 0;
    expect(ws_queue_wait(q, &c, 1, &n, 10000), WS_OK, "ws_queue_wait");
    if (n != 1)
        fail("ws_queue_wait returned no completion", WS_OK);
    return c;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: coalesce URL COUNT\n");
        return 2;
    }
    long count = strtol(argv[2], NULL, 10);
    if (count < 1 || count > 1000000) {
        fprintf(stderr, "coalesce: COUNT must be 1..1000000\n");
        return 2;
    }
    ws_handle q = 0, h = 0;
    expect(ws_queue_create(&q), WS_OK, "ws_queue_create");
    expect(ws_open(argv[1], &h), WS_OK, "ws_open");
    expect(ws_set_option(h, WS_OPTION_COMPLETION_QUEUE, &q, sizeof q), WS_OK, "bind");
    expect(ws_connect(h), WS_ERROR_IO_PENDING, "ws_connect");
    ws_completion c = next(q);
    if (c.status != WS_CALLBACK_STATUS_CONNECT_COMPLETE)
        fail("connect did not complete", c.result.error);

    char *messages = malloc((size_t)count * MESSAGE_SIZE + 1);
    if (!messages)
        fail("out of memory", WS_OK);
    printf("posting\n");
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        char *m = messages + i * MESSAGE_SIZE;
        snprintf(m, MESSAGE_SIZE + 1, "message %06ld\n\n", i % 1000000);
        expect(ws_send(h, WS_BUFFER_BINARY_MESSAGE, m, MESSAGE_SIZE), WS_ERROR_IO_PENDING,
               "ws_send");
    }
    expect(ws_close(h, 1000, "done", 4), WS_ERROR_IO_PENDING, "ws_close");
    printf("posted\n");
    fflush(stdout);

    for (long i = 0; i < count; i++) {
        c = next(q);
        if (c.status != WS_CALLBACK_STATUS_WRITE_COMPLETE ||
            c.io.bytes_transferred != MESSAGE_SIZE)
            fail("expected a WRITE_COMPLETE of 16 bytes", c.result.error);
    }
    c = next(q);
    if (c.status != WS_CALLBACK_STATUS_CLOSE_COMPLETE)
        fail("expected CLOSE_COMPLETE", c.result.error);
    printf("closed\n");
    fflush(stdout);
    uint16_t status = 0;
    size_t reason_len = 0;
    char reason[124];
    expect(ws_query_close_status(h, &status, reason, sizeof reason, &reason_len), WS_OK,
           "ws_query_close_status");
    expect(ws_close_handle(h), WS_OK, "ws_close_handle");
    c = next(q);
    if (c.status != WS_CALLBACK_STATUS_HANDLE_CLOSING)
        fail("expected HANDLE_CLOSING", c.result.error);
    expect(ws_close_handle(q), WS_OK, "ws_close_handle(queue)");
    free(messages);
    printf("coalesce ok: %ld sends, peer closed with %u\n", count, (unsigned)status);
    return 0;
}
