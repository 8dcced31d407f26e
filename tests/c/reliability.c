/* Reliability checks that only a C program can make: it keeps the default signal dispositions
 * (the Rust test harness and CPython ignore SIGPIPE, which hid a crash), and it calls the
 * library from a thread's exit destructors and with no file descriptors left.
 *
 *   reliability vanish CA CERT KEY   peers that vanish before and during ws_send, ws_shutdown,
 *                                    ws_close and ws_close_handle, over ws:// and wss://, with
 *                                    wshandle as the surviving client and as the surviving server
 *   reliability thread-exit          failing and succeeding calls from a pthread-key destructor
 *   reliability emfile               ws_open, ws_listen and ws_connect with no descriptors left
 *
 * Prints one line per check and "N passed, M failed"; exits 1 on any failure. A process killed
 * by SIGPIPE or aborted by a panic never prints its summary. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wshandle.h"

static int passed, failed;

static void check(int ok, const char *what, ws_error got, ws_error want) {
    char detail[256] = "";
    if (!ok) ws_last_error_message(detail, sizeof detail);
    printf("%s %s: got %s, want %s%s%s\n", ok ? "ok  " : "FAIL", what, ws_error_name(got),
           ws_error_name(want), ok ? "" : " -- ", detail);
    if (ok) passed++; else failed++;
}

static void expect(ws_error got, ws_error want, const char *what) { check(got == want, what, got, want); }

static uint32_t state_of(ws_handle h) {
    uint32_t s = 99;
    if (ws_query_state(h, &s) != WS_OK) return 99;
    return s;
}

static void expect_state(ws_handle h, uint32_t want, const char *what) {
    uint32_t s = state_of(h);
    printf("%s %s: state %u, want %u\n", s == want ? "ok  " : "FAIL", what, s, want);
    if (s == want) passed++; else failed++;
}

static void die(const char *what, ws_error e) {
    char detail[256];
    ws_last_error_message(detail, sizeof detail);
    fprintf(stderr, "%s: %s: %s\n", what, ws_error_name(e), detail);
    exit(2);
}

/* ---- a connected pair: wshandle client and wshandle server in this process ---- */

static const char *ca_file, *cert_file, *key_file;
static ws_handle listeners[2]; /* ws://, wss:// */
static uint32_t listener_ports[2];

struct accept_arg { ws_handle listener; ws_handle accepted; ws_error rc; };

static void *accept_thread(void *p) {
    struct accept_arg *a = p;
    a->rc = ws_accept(a->listener, &a->accepted);
    return NULL;
}

static void set_str(ws_handle h, uint32_t opt, const char *v) {
    ws_error e = ws_set_option(h, opt, v, strlen(v));
    if (e != WS_OK) die("ws_set_option", e);
}

static ws_handle listener(int tls) {
    if (listeners[tls]) return listeners[tls];
    ws_handle l;
    ws_error e = ws_listen(tls ? "wss://127.0.0.1:0/v" : "ws://127.0.0.1:0/v", &l);
    if (e != WS_OK) die("ws_listen", e);
    if (tls) {
        set_str(l, WS_OPTION_TLS_CERT_FILE, cert_file);
        set_str(l, WS_OPTION_TLS_KEY_FILE, key_file);
    }
    size_t len = sizeof listener_ports[tls];
    e = ws_query_option(l, WS_OPTION_LOCAL_PORT, &listener_ports[tls], &len);
    if (e != WS_OK) die("ws_query_option(LOCAL_PORT)", e);
    listeners[tls] = l;
    return l;
}

static void pair(int tls, ws_handle *client, ws_handle *server) {
    struct accept_arg a = {listener(tls), 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, accept_thread, &a);
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/v", tls ? "wss" : "ws", listener_ports[tls]);
    ws_error e = ws_open(url, client);
    if (e != WS_OK) die("ws_open", e);
    if (tls) set_str(*client, WS_OPTION_TLS_CA_FILE, ca_file);
    e = ws_connect(*client);
    if (e != WS_OK) die("ws_connect", e);
    pthread_join(t, NULL);
    if (a.rc != WS_OK) die("ws_accept", a.rc);
    *server = a.accepted;
}

/* The descriptor of the connected (not listening) TCP socket bound to local port `port`. */
static int socket_on_port(uint32_t port) {
    for (int fd = 0; fd < 4096; fd++) {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
        struct sockaddr_in a;
        len = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &len) != 0 || a.sin_family != AF_INET) continue;
        if (ntohs(a.sin_port) == port) return fd;
    }
    return -1;
}

/* Waits (bounded: 5 s) until the kernel has seen the peer's RST on `fd`: the socket is in
 * TCP_CLOSE, so the next write fails with EPIPE, which raises SIGPIPE without MSG_NOSIGNAL. */
static int wait_reset(int fd) {
    for (int i = 0; i < 5000; i++) {
        struct tcp_info info;
        socklen_t len = sizeof info;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
        if (info.tcpi_state == 7 /* TCP_CLOSE */) return 1;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL); /* polling a condition, with a bound; not a timing assumption */
    }
    return 0;
}

enum op { OP_SEND, OP_SHUTDOWN, OP_CLOSE, OP_CLOSE_HANDLE };
static const char *op_names[] = {"ws_send", "ws_shutdown", "ws_close", "ws_close_handle"};

/* The peer vanished before the call: it dropped its handle (FIN), our first write drew its
 * RST, and the call under test writes to a reset socket. */
static void vanished_before(int tls, int survivor_is_client, enum op op) {
    ws_handle c, s;
    pair(tls, &c, &s);
    ws_handle me = survivor_is_client ? c : s, peer = survivor_is_client ? s : c;
    uint32_t my_port = 0;
    size_t len = sizeof my_port;
    ws_query_option(survivor_is_client ? c : s, WS_OPTION_LOCAL_PORT, &my_port, &len);
    char what[160];
    snprintf(what, sizeof what, "%s %s, peer gone before %s", tls ? "wss" : "ws",
             survivor_is_client ? "client" : "server", op_names[op]);
    expect(ws_close_handle(peer), WS_OK, "peer drops its handle");
    int fd = -1;
    if (survivor_is_client) fd = socket_on_port(my_port);
    ws_error first = ws_send(me, WS_BUFFER_BINARY_MESSAGE, "x", 1);
    if (!survivor_is_client) fd = socket_on_port(listener_ports[tls]);
    if (first == WS_OK && fd >= 0 && !wait_reset(fd)) {
        printf("FAIL %s: the peer's RST never arrived\n", what);
        failed++;
    }
    if (first != WS_OK) {
        /* (wss: the peer's close_notify may already have been read; the reset then came first) */
        printf("note %s: the first write already failed (%s)\n", what, ws_error_name(first));
    }
    ws_error rc;
    switch (op) {
    case OP_SEND:
        rc = ws_send(me, WS_BUFFER_UTF8_MESSAGE, "hello", 5);
        break;
    case OP_SHUTDOWN:
        rc = ws_shutdown(me, 1000, "bye", 3);
        break;
    case OP_CLOSE:
        rc = ws_close(me, 1000, "bye", 3);
        break;
    default:
        expect(ws_close_handle(me), WS_OK, what);
        return;
    }
    if (first == WS_OK) {
        expect(rc, WS_ERROR_CONNECTION_ERROR, what);
    } else {
        /* the connection was already aborted by the failed first write */
        expect(rc, WS_ERROR_INVALID_OPERATION, what);
    }
    expect_state(me, WS_STATE_ABORTED, what);
    expect(ws_close_handle(me), WS_OK, what);
}

struct call { ws_handle h; enum op op; ws_error rc; size_t len; };

static void *call_thread(void *p) {
    struct call *c = p;
    if (c->op == OP_SEND) {
        void *big = calloc(1, c->len);
        c->rc = ws_send(c->h, WS_BUFFER_BINARY_MESSAGE, big, c->len);
        free(big);
    } else {
        c->rc = ws_close(c->h, 1000, "bye", 3);
    }
    return NULL;
}

/* The peer vanishes while the call is in progress: a 64 MiB send it never reads, or a
 * ws_close it never answers. Either way the peer closes with unread data (an RST). */
static void vanished_during(int tls, int survivor_is_client, enum op op) {
    ws_handle c, s;
    pair(tls, &c, &s);
    ws_handle me = survivor_is_client ? c : s, peer = survivor_is_client ? s : c;
    char what[160];
    snprintf(what, sizeof what, "%s %s, peer gone during %s", tls ? "wss" : "ws",
             survivor_is_client ? "client" : "server", op_names[op]);
    struct call call = {me, op, 0, 64u << 20};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &call);
    /* whether the call is already blocked or not yet started, it cannot finish: the peer
       never reads and never answers */
    expect(ws_close_handle(peer), WS_OK, "peer drops its handle");
    pthread_join(t, NULL);
    expect(call.rc, WS_ERROR_CONNECTION_ERROR, what);
    expect_state(me, WS_STATE_ABORTED, what);
    expect(ws_close_handle(me), WS_OK, what);
}

static int vanish(void) {
    for (int tls = 0; tls < 2; tls++)
        for (int client = 1; client >= 0; client--) {
            for (enum op op = OP_SEND; op <= OP_CLOSE_HANDLE; op++) vanished_before(tls, client, op);
            vanished_during(tls, client, OP_SEND);
            vanished_during(tls, client, OP_CLOSE);
        }
    for (int tls = 0; tls < 2; tls++)
        if (listeners[tls]) ws_close_handle(listeners[tls]);
    return 0;
}

/* ---- calls from a thread's exit destructors ---- */

static pthread_key_t key;
static ws_handle exit_client;
static ws_error in_destructor[3];
static size_t message_len_in_destructor = 12345;

static void destructor(void *unused) {
    (void)unused;
    /* by now the thread's Rust thread-locals are gone (glibc runs them before key destructors) */
    in_destructor[0] = ws_close_handle(0);                                   /* a failure */
    in_destructor[1] = ws_send(exit_client, WS_BUFFER_UTF8_MESSAGE, "bye", 3); /* masking key */
    char buf[64];
    message_len_in_destructor = ws_last_error_message(buf, sizeof buf);
    in_destructor[2] = ws_close_handle(exit_client);
}

static void *exiting_thread(void *unused) {
    (void)unused;
    pthread_setspecific(key, (void *)1);
    ws_close_handle(0); /* fails: the error detail's thread-local is now in use */
    char buf[8];
    ws_last_error_message(buf, sizeof buf);
    ws_send(exit_client, WS_BUFFER_UTF8_MESSAGE, "hi", 2); /* a masking key from this thread */
    return NULL;
}

static int thread_exit(void) {
    ca_file = cert_file = key_file = "";
    ws_handle server;
    pair(0, &exit_client, &server);
    pthread_key_create(&key, destructor);
    pthread_t t;
    pthread_create(&t, NULL, exiting_thread, NULL);
    pthread_join(t, NULL);
    expect(in_destructor[0], WS_ERROR_INVALID_HANDLE, "failing call in a key destructor");
    expect(in_destructor[1], WS_OK, "ws_send (client, masked) in a key destructor");
    expect(in_destructor[2], WS_OK, "ws_close_handle in a key destructor");
    printf("%s ws_last_error_message in a key destructor returned %zu\n",
           message_len_in_destructor != 12345 ? "ok  " : "FAIL", message_len_in_destructor);
    if (message_len_in_destructor != 12345) passed++; else failed++;
    /* the server got both messages */
    char buf[16];
    size_t n;
    uint32_t type;
    for (int i = 0; i < 2; i++) {
        ws_error e = ws_receive(server, buf, sizeof buf, &n, &type);
        int ok = e == WS_OK && type == WS_BUFFER_UTF8_MESSAGE && n == (size_t)(i ? 3 : 2) &&
                 memcmp(buf, i ? "bye" : "hi", n) == 0;
        check(ok, i ? "server got \"bye\"" : "server got \"hi\"", e, WS_OK);
    }
    ws_close_handle(server);
    ws_close_handle(listeners[0]);
    return 0;
}

/* ---- no descriptors left ---- */

static int emfile(void) {
    ws_handle l;
    ws_error e = ws_listen("ws://127.0.0.1:0/v", &l);
    if (e != WS_OK) die("ws_listen", e);
    ws_handle c;
    e = ws_open("ws://127.0.0.1:1/v", &c); /* opened while descriptors remain */
    if (e != WS_OK) die("ws_open", e);
    /* use up every descriptor below a lowered soft limit */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit", 0);
    int fds[64], nfds = 0;
    int fd;
    while (nfds < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0) fds[nfds++] = fd;
    /* a handle takes no descriptor until it connects (its socket) or first blocks (its
       wake-up descriptor) */
    ws_handle h = 0, l2 = 0;
    expect(ws_open("ws://127.0.0.1:1/v", &h), WS_OK, "ws_open at EMFILE");
    expect(ws_listen("ws://127.0.0.1:0/v", &l2), WS_ERROR_OUT_OF_HANDLES, "ws_listen at EMFILE");
    expect(ws_connect(h), WS_ERROR_OUT_OF_HANDLES, "ws_connect of a handle opened at EMFILE");
    expect_state(h, WS_STATE_NONE, "ws_connect of a handle opened at EMFILE");
    expect(ws_close_handle(h), WS_OK, "ws_close_handle of a handle opened at EMFILE");
    expect(ws_connect(c), WS_ERROR_OUT_OF_HANDLES, "ws_connect at EMFILE");
    expect_state(c, WS_STATE_NONE, "ws_connect at EMFILE");
    char detail[256];
    ws_last_error_message(detail, sizeof detail);
    int says = strstr(detail, "file descriptors") != NULL;
    printf("%s the detail says what ran out: %s\n", says ? "ok  " : "FAIL", detail);
    if (says) passed++; else failed++;
    while (nfds > 0) close(fds[--nfds]);
    expect(ws_close_handle(c), WS_OK, "ws_close_handle");
    expect(ws_close_handle(l), WS_OK, "ws_close_handle(listener)");
    return 0;
}

int main(int argc, char **argv) {
    /* Keep (restore) the default SIGPIPE disposition, whatever the parent left us: a write to
       a vanished peer must not kill this process. */
    signal(SIGPIPE, SIG_DFL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(argv[1], "vanish") == 0) {
        ca_file = argv[2];
        cert_file = argv[3];
        key_file = argv[4];
        vanish();
    } else if (argc == 2 && strcmp(argv[1], "thread-exit") == 0) {
        thread_exit();
    } else if (argc == 2 && strcmp(argv[1], "emfile") == 0) {
        emfile();
    } else {
        fprintf(stderr, "usage: %s vanish CA CERT KEY | thread-exit | emfile\n", argv[0]);
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
