/*
 * common.h - error handling shared by the wshandle C examples.
 *
 * Every wshandle call returns a ws_error; WS_OK (0) means success. On failure
 * the library also records a human-readable detail for the calling thread,
 * read with ws_last_error_message(). CHECK(call) prints both and exits:
 *
 *     CHECK(ws_connect(h));
 *     -> echo_client.c:42: ws_connect(h) failed: WS_ERROR_CANNOT_CONNECT (12029): <detail>
 *
 * The detail belongs to the thread that failed, so CHECK must run on that
 * thread (it does: it reads the detail right after the call).
 */
#ifndef WSHANDLE_EXAMPLES_COMMON_H
#define WSHANDLE_EXAMPLES_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wshandle.h"

/* Print "<file>:<line>: <call> failed: <NAME> (<code>): <detail>" and exit 1. */
static inline _Noreturn void ws_example_fail(const char *call, ws_error code,
                                             const char *file, int line)
{
    char detail[512];
    ws_last_error_message(detail, sizeof detail); /* truncated if longer; always NUL-terminated */
    fprintf(stderr, "%s:%d: %s failed: %s (%u): %s\n", file, line, call,
            ws_error_name(code), (unsigned)code, detail);
    exit(1);
}

/* Run a wshandle call; on anything but WS_OK report it and exit 1. */
#define CHECK(call)                                                       \
    do {                                                                  \
        ws_error check_rc_ = (call);                                      \
        if (check_rc_ != WS_OK)                                           \
            ws_example_fail(#call, check_rc_, __FILE__, __LINE__);        \
    } while (0)

/* For failures that are not a wshandle error (wrong echo, bad count, ...). */
static inline _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Exit 1 unless cond holds; what is a short description for the message. */
#define EXPECT(cond, what)                                                \
    do {                                                                  \
        if (!(cond))                                                      \
            die("%s:%d: check failed: %s (%s)", __FILE__, __LINE__,       \
                #cond, (what));                                           \
    } while (0)

/* The name of a WS_BUFFER_* value, for printing. */
static inline const char *buffer_type_name(uint32_t type)
{
    switch (type) {
    case WS_BUFFER_BINARY_MESSAGE:  return "WS_BUFFER_BINARY_MESSAGE";
    case WS_BUFFER_BINARY_FRAGMENT: return "WS_BUFFER_BINARY_FRAGMENT";
    case WS_BUFFER_UTF8_MESSAGE:    return "WS_BUFFER_UTF8_MESSAGE";
    case WS_BUFFER_UTF8_FRAGMENT:   return "WS_BUFFER_UTF8_FRAGMENT";
    case WS_BUFFER_CLOSE:           return "WS_BUFFER_CLOSE";
    default:                        return "(unknown buffer type)";
    }
}

/* The name of a WS_STATE_* value, for printing. */
static inline const char *state_name(uint32_t state)
{
    switch (state) {
    case WS_STATE_NONE:           return "WS_STATE_NONE";
    case WS_STATE_CONNECTING:     return "WS_STATE_CONNECTING";
    case WS_STATE_OPEN:           return "WS_STATE_OPEN";
    case WS_STATE_CLOSE_SENT:     return "WS_STATE_CLOSE_SENT";
    case WS_STATE_CLOSE_RECEIVED: return "WS_STATE_CLOSE_RECEIVED";
    case WS_STATE_CLOSED:         return "WS_STATE_CLOSED";
    case WS_STATE_ABORTED:        return "WS_STATE_ABORTED";
    default:                      return "(unknown state)";
    }
}

#endif /* WSHANDLE_EXAMPLES_COMMON_H */
