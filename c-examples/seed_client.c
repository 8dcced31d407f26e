/*
 * seed_client.c - closing a two-way WebSocket without hanging.
 *
 * The scenario of "How to gracefully close a two-way WebSocket in .Net"
 * (seeds/003_708f1961e88b610b.txt): the client streams 1024 binary messages of
 * 128 KiB (128 MiB) while a second thread reads the server's text replies,
 * "Server got 4194304 bytes\n" per 4 MiB. When the client's close frame
 * arrives, the server sends one last reply, "Server got <n> bytes\n", and
 * then its own close frame (1000).
 *
 * Usage: seed_client ws://host:port/path [shutdown|close] [COUNT]
 *
 *   shutdown (default) - the seed's accepted answer (CloseOutputAsync):
 *       ws_shutdown sends our close frame and returns at once; the receiver
 *       thread keeps reading in WS_STATE_CLOSE_SENT, gets the last reply,
 *       then WS_BUFFER_CLOSE. All 33 replies arrive.
 *
 *   close - WinHTTP's full close while another thread is blocked in
 *       ws_receive: that ws_receive returns WS_ERROR_OPERATION_CANCELLED,
 *       and ws_close itself reads (and discards) the last reply while it
 *       waits for the server's close frame. The receiver sees 32 replies.
 *       Use this when you no longer care what the peer sends after your close.
 *       (Rarely the receiver has not re-entered ws_receive when ws_close
 *       starts; its call is then refused with WS_ERROR_INVALID_OPERATION.
 *       A receive loop must treat both results as "stop".)
 *
 *   COUNT - how many 128 KiB messages to stream (default 1024, the seed's
 *       128 MiB); the expected replies follow from it (COUNT / 32 replies of
 *       4 MiB, then the rest). Smaller counts keep runs under valgrind short.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime and CLOCK_MONOTONIC under -std=c11 */

#include <pthread.h>
#include <time.h>

#include "common.h"

#define MESSAGE_SIZE (128 * 1024)       /* one binary message */
#define MESSAGE_COUNT 1024              /* 128 MiB in all, by default */
#define RECEIVE_BUFFER_SIZE (64 * 1024) /* as in the seed's client */
#define REPLY_EVERY 4194304u            /* the server replies per 4 MiB */

static const char FULL_REPLY[] = "Server got 4194304 bytes\n";

/* Set by main from the message count: the number of 4 MiB replies (32 for 128 MiB) and
 * the last reply, which counts what is left after them ("Server got 0 bytes\n"). */
static unsigned full_replies;
static char last_reply[64];

/* State shared by the main thread and the receiver thread. */
struct receiver {
    ws_handle h;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* signalled when replies or done change */
    unsigned replies;       /* whole text messages received */
    int close_called;       /* main is about to call ws_close ("close" mode) */
    int done;               /* the receiver has left its loop */
    ws_error result;        /* the result of its last ws_receive */
    uint32_t last_type;     /* the buffer type of its last successful ws_receive */
};

/* Has the main thread started ws_close? */
static int close_called(struct receiver *r)
{
    pthread_mutex_lock(&r->lock);
    int called = r->close_called;
    pthread_mutex_unlock(&r->lock);
    return called;
}

/*
 * The receiver thread: read until the server's close frame (WS_BUFFER_CLOSE)
 * or until ws_close on another thread ends the reading. ws_receive hands out
 * at most RECEIVE_BUFFER_SIZE bytes at a time, so a text message may come in
 * WS_BUFFER_UTF8_FRAGMENT pieces; they are joined before printing.
 */
static void *receive_replies(void *arg)
{
    struct receiver *r = arg;
    unsigned char *buf = malloc(RECEIVE_BUFFER_SIZE);
    char text[256];
    size_t text_len = 0;
    ws_error rc;
    uint32_t type = 0;

    if (buf == NULL)
        die("out of memory");

    for (;;) {
        size_t n = 0;
        rc = ws_receive(r->h, buf, RECEIVE_BUFFER_SIZE, &n, &type);
        /* ws_close on another thread ends reading in one of two ways:
         * - it cancels a ws_receive that is waiting: WS_ERROR_OPERATION_CANCELLED;
         * - a ws_receive that starts once ws_close has begun is refused:
         *   WS_ERROR_INVALID_OPERATION. Nothing tells the main thread whether
         *   we are already inside ws_receive, so handle both. */
        if (rc == WS_ERROR_OPERATION_CANCELLED)
            break;
        if (rc == WS_ERROR_INVALID_OPERATION && close_called(r))
            break;
        if (rc != WS_OK)
            ws_example_fail("ws_receive(h, buf, 65536, &n, &type)", rc, __FILE__, __LINE__);
        if (type == WS_BUFFER_CLOSE)
            break; /* the server's close frame: nothing more will come */
        if (type != WS_BUFFER_UTF8_FRAGMENT && type != WS_BUFFER_UTF8_MESSAGE)
            die("expected a text reply, got %s", buffer_type_name(type));
        if (n > sizeof text - text_len)
            die("a reply longer than %zu bytes", sizeof text);
        memcpy(text + text_len, buf, n);
        text_len += n;
        if (type == WS_BUFFER_UTF8_FRAGMENT)
            continue; /* more of this reply follows */

        /* A whole reply. The replies end in '\n' already. */
        printf("client got: %.*s", (int)text_len, text);
        if (text_len == 0 || text[text_len - 1] != '\n')
            putchar('\n');

        const char *want = last_reply;
        pthread_mutex_lock(&r->lock);
        if (r->replies < full_replies)
            want = FULL_REPLY;
        r->replies++;
        pthread_mutex_unlock(&r->lock);
        if (text_len != strlen(want) || memcmp(text, want, text_len) != 0)
            die("expected the reply \"%.*s\\n\"", (int)strlen(want) - 1, want);
        text_len = 0;
        pthread_cond_signal(&r->changed);
        /* Straight back into ws_receive: in "close" mode the main thread is
         * about to call ws_close and wants to find us waiting there. */
    }

    free(buf);
    pthread_mutex_lock(&r->lock);
    r->result = rc;
    r->last_type = type;
    r->done = 1;
    pthread_cond_signal(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static long long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - start->tv_sec) * 1000 +
           (now.tv_nsec - start->tv_nsec) / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4)
        die("usage: %s ws://host:port/path [shutdown|close] [COUNT]", argv[0]);
    const char *mode = argc >= 3 ? argv[2] : "shutdown";
    long count = argc == 4 ? atol(argv[3]) : MESSAGE_COUNT;
    if (count <= 0)
        die("COUNT must be a positive number of messages");
    unsigned long long total = (unsigned long long)count * MESSAGE_SIZE;
    full_replies = (unsigned)(total / REPLY_EVERY);
    snprintf(last_reply, sizeof last_reply, "Server got %llu bytes\n", total % REPLY_EVERY);
    int use_close = strcmp(mode, "close") == 0;
    if (!use_close && strcmp(mode, "shutdown") != 0)
        die("unknown mode \"%s\": expected shutdown or close", mode);

    ws_handle h = 0;
    CHECK(ws_open(argv[1], &h));
    CHECK(ws_connect(h));

    /* Start the receiver. ws_receive on one thread and ws_send on another
     * run at the same time without blocking each other. */
    struct receiver r;
    memset(&r, 0, sizeof r);
    r.h = h;
    if (pthread_mutex_init(&r.lock, NULL) != 0 || pthread_cond_init(&r.changed, NULL) != 0)
        die("pthread_mutex_init / pthread_cond_init failed");
    pthread_t thread;
    int err = pthread_create(&thread, NULL, receive_replies, &r);
    if (err != 0)
        die("pthread_create: %s", strerror(err));

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);

    /* Stream 128 MiB (by default). Each ws_send returns once its bytes are handed to the OS. */
    unsigned char *data = calloc(1, MESSAGE_SIZE);
    if (data == NULL)
        die("out of memory");
    for (long i = 0; i < count; i++)
        CHECK(ws_send(h, WS_BUFFER_BINARY_MESSAGE, data, MESSAGE_SIZE));
    free(data);

    if (!use_close) {
        /* CloseOutputAsync: send our close frame and return at once. The
         * receiver goes on reading (state CLOSE_SENT) until WS_BUFFER_CLOSE,
         * which ends the handshake (state CLOSED). */
        CHECK(ws_shutdown(h, WS_CLOSE_STATUS_SUCCESS, NULL, 0));
        pthread_join(thread, NULL);
    } else {
        /* Wait until the receiver has all the regular replies (32 for 128 MiB).
         * The server sends nothing more until it sees our close frame, so the
         * receiver is now (or within microseconds) blocked in ws_receive. */
        pthread_mutex_lock(&r.lock);
        while (r.replies < full_replies && !r.done)
            pthread_cond_wait(&r.changed, &r.lock);
        r.close_called = 1;
        pthread_mutex_unlock(&r.lock);

        /* The full close: cancels the blocked ws_receive, sends our close
         * frame, reads and discards the server's last reply, and returns
         * WS_OK once the server's close frame has arrived (bounded by
         * WS_OPTION_CLOSE_TIMEOUT, 10 s by default). */
        CHECK(ws_close(h, WS_CLOSE_STATUS_SUCCESS, NULL, 0));
        pthread_join(thread, NULL);
    }
    long long ms = elapsed_ms(&start);

    /* The receiver has exited: its results can be read without the lock. */
    if (!use_close) {
        EXPECT(r.result == WS_OK && r.last_type == WS_BUFFER_CLOSE,
               "the receiver ended with the server's close frame");
        EXPECT(r.replies == full_replies + 1, "the regular replies and the last one");
    } else {
        /* Almost always WS_ERROR_OPERATION_CANCELLED. WS_ERROR_INVALID_OPERATION
         * means the receiver lost a race: it had not re-entered ws_receive
         * yet when ws_close began, so its next call was refused instead. */
        if (r.result != WS_ERROR_OPERATION_CANCELLED && r.result != WS_ERROR_INVALID_OPERATION)
            die("the receiver's ws_receive returned %s, expected WS_ERROR_OPERATION_CANCELLED",
                ws_error_name(r.result));
        EXPECT(r.replies == full_replies, "the last reply went to ws_close, not the receiver");
    }

    uint32_t state = 0;
    CHECK(ws_query_state(h, &state));
    if (state != WS_STATE_CLOSED)
        die("state is %s, expected WS_STATE_CLOSED", state_name(state));

    /* The server's close frame: status and reason (not NUL-terminated). */
    uint16_t status = 0;
    char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t reason_len = 0;
    CHECK(ws_query_close_status(h, &status, reason, sizeof reason, &reason_len));
    if (status != WS_CLOSE_STATUS_SUCCESS)
        die("the server closed with %u \"%.*s\", expected 1000", (unsigned)status,
            (int)reason_len, reason);

    CHECK(ws_close_handle(h));
    pthread_cond_destroy(&r.changed);
    pthread_mutex_destroy(&r.lock);

    printf("seed time: %lld ms\n", ms);
    if (!use_close)
        printf("seed shutdown ok: %u replies, close %u\n", r.replies, (unsigned)status);
    else
        printf("seed close ok: %u replies, receive %s, close %u\n", r.replies,
               r.result == WS_ERROR_OPERATION_CANCELLED ? "cancelled"
                                                        : "refused (it began after ws_close)",
               (unsigned)status);
    return 0;
}
