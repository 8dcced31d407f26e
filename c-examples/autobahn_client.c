/*
 * autobahn_client.c - the client side of the Autobahn|Testsuite conformance run.
 *
 *     autobahn_client ws://127.0.0.1:PORT [AGENT]
 *
 * Runs the standard case loop against Autobahn's `fuzzingserver` (scripts/autobahn.sh starts
 * one on 127.0.0.1):
 *
 *   1. GET /getCaseCount              -> one text message, the number of cases N;
 *   2. for each case 1..N: /runCase?case=i&agent=AGENT, echoing every text and binary
 *      message back with its type until the server closes (its close status and reason
 *      are echoed back, as echo_server.c does) or fails the connection;
 *   3. /updateReports?agent=AGENT&shutdownOnComplete=true, which writes the reports and
 *      stops the server.
 *
 * Messages are echoed piece by piece, like echo_server.c: a *_FRAGMENT piece is sent as a
 * fragment and the *_MESSAGE piece ends the message, so the 16 MiB messages of section 9
 * pass through a 64 KiB buffer. A case that fails the connection (a protocol violation by
 * the server, which is what many cases test) is not an error of this program: it prints
 * one line per case and exits 0 once the reports are written. It offers permessage-deflate
 * (RFC 7692), which sections 12 and 13 test.
 */
#include "common.h"

#define BUFFER_SIZE (64 * 1024)
#define URL_MAX 512

static unsigned char buf[BUFFER_SIZE];

/* Opens and connects base + path; returns 0 when ws_connect failed. */
static ws_handle connect_to(const char *base, const char *path)
{
    char url[URL_MAX];
    int n = snprintf(url, sizeof url, "%s%s", base, path);
    if (n < 0 || (size_t)n >= sizeof url)
        die("URL too long: %s%s", base, path);
    ws_handle h = 0;
    CHECK(ws_open(url, &h));
    /* no case takes this long; a stuck case must not stall the whole run */
    uint32_t receive_ms = 60000, close_ms = 10000;
    CHECK(ws_set_option(h, WS_OPTION_RECEIVE_TIMEOUT, &receive_ms, sizeof receive_ms));
    CHECK(ws_set_option(h, WS_OPTION_CLOSE_TIMEOUT, &close_ms, sizeof close_ms));
    /* permessage-deflate (sections 12 and 13): without context takeover the offer carries
     * client_no_context_takeover, so the server may use every parameter set of section 13;
     * threshold 0 compresses even the smallest messages. */
    uint32_t on = 1, off = 0;
    CHECK(ws_set_option(h, WS_OPTION_PERMESSAGE_DEFLATE, &on, sizeof on));
    CHECK(ws_set_option(h, WS_OPTION_DEFLATE_CONTEXT_TAKEOVER, &off, sizeof off));
    CHECK(ws_set_option(h, WS_OPTION_DEFLATE_THRESHOLD, &off, sizeof off));
    ws_error e = ws_connect(h);
    if (e != WS_OK) {
        char detail[256];
        ws_last_error_message(detail, sizeof detail);
        fprintf(stderr, "connect %s: %s: %s\n", path, ws_error_name(e), detail);
        CHECK(ws_close_handle(h));
        return 0;
    }
    return h;
}

/* Answers the peer's close frame with its own status and reason (1005 in kind). */
static void answer_close(ws_handle h)
{
    uint16_t status = WS_CLOSE_STATUS_SUCCESS;
    unsigned char reason[WS_MAX_CLOSE_REASON_LENGTH];
    size_t reason_len = 0;
    CHECK(ws_query_close_status(h, &status, reason, sizeof reason, &reason_len));
    if (status == WS_CLOSE_STATUS_EMPTY)
        reason_len = 0;
    ws_close(h, status, reason, reason_len); /* the result changes nothing here */
}

/*
 * Echoes until the peer's close frame (answered) or a failure. Returns the last result
 * (WS_OK after a clean close) and, when text is not NULL, copies the first text message
 * (up to cap - 1 bytes, NUL-terminated) there instead of echoing it.
 */
static ws_error echo_until_close(ws_handle h, char *text, size_t cap)
{
    size_t text_len = 0;
    for (;;) {
        size_t n = 0;
        uint32_t type = 0;
        ws_error e = ws_receive(h, buf, sizeof buf, &n, &type);
        if (e != WS_OK)
            return e; /* the server broke the protocol (it was told so), or TCP ended */
        if (type == WS_BUFFER_CLOSE) {
            answer_close(h);
            return WS_OK;
        }
        if (text != NULL) {
            size_t room = cap - 1 - text_len;
            size_t take = n < room ? n : room;
            memcpy(text + text_len, buf, take);
            text_len += take;
            text[text_len] = '\0';
            continue;
        }
        e = ws_send(h, type, buf, n);
        if (e != WS_OK)
            return e;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        die("usage: %s ws://127.0.0.1:PORT [AGENT]", argv[0]);
    const char *base = argv[1];
    const char *agent = argc > 2 ? argv[2] : "wshandle";
    char path[URL_MAX];

    ws_handle h = connect_to(base, "/getCaseCount");
    if (h == 0)
        die("cannot reach the fuzzingserver at %s", base);
    char count_text[32] = "";
    echo_until_close(h, count_text, sizeof count_text);
    CHECK(ws_close_handle(h));
    long count = atol(count_text);
    if (count <= 0)
        die("getCaseCount answered \"%s\"", count_text);
    printf("%ld cases\n", count);
    fflush(stdout);

    for (long i = 1; i <= count; i++) {
        snprintf(path, sizeof path, "/runCase?case=%ld&agent=%s", i, agent);
        h = connect_to(base, path);
        if (h == 0)
            continue; /* reported by connect_to; the report shows the case as failed */
        ws_error e = echo_until_close(h, NULL, 0);
        uint32_t state = 0;
        CHECK(ws_query_state(h, &state));
        printf("case %ld: %s, %s\n", i, ws_error_name(e), state_name(state));
        fflush(stdout);
        CHECK(ws_close_handle(h));
    }

    snprintf(path, sizeof path, "/updateReports?agent=%s", agent);
    h = connect_to(base, path);
    if (h == 0)
        die("cannot ask the fuzzingserver for its reports");
    echo_until_close(h, NULL, 0);
    CHECK(ws_close_handle(h));
    printf("reports updated\n");
    return 0;
}
