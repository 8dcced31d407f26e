// noexcept_echo.cpp - wshandle.hpp without exceptions (built with -fno-exceptions): every call
// takes a wshandle::status& and returns whether it succeeded. An echo client against any
// echo server (c-examples/echo_server.c), then a connect to a port nobody listens on.
//
// Usage: noexcept_echo ws://host:port/path         prints "cpp noexcept echo ok"
#include <wshandle.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void check(bool ok, const wshandle::status &st, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "noexcept_echo: %s: %s (%u): %s\n", what, st.name(),
                     static_cast<unsigned>(st.code()), st.detail());
        std::exit(1);
    }
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: noexcept_echo ws://host:port/path\n");
        return 2;
    }
    wshandle::status st;
    wshandle::websocket ws = wshandle::websocket::open(argv[1], st);
    check(st.ok(), st, "open");
    check(ws.set_receive_timeout(std::chrono::seconds(10), st), st, "set_receive_timeout");
    check(ws.connect(st), st, "connect");
    check(ws.send_text("no exceptions here", st), st, "send_text");

    char buf[64];
    std::size_t len = 0;
    wshandle::received r;
    do {
        r = ws.receive(wshandle::mutable_bytes(buf + len, sizeof buf - len), st);
        check(st.ok(), st, "receive");
        len += r.size;
    } while (!r.message_end() && len < sizeof buf);
    check(r.type == WS_BUFFER_UTF8_MESSAGE && len == 18 && std::memcmp(buf, "no exceptions here", 18) == 0,
          st, "the echo");

    check(ws.close(WS_CLOSE_STATUS_SUCCESS, "done", st), st, "close");
    std::uint16_t code = 0;
    char reason[WS_MAX_CLOSE_REASON_LENGTH + 1];
    check(ws.close_status(code, reason, st), st, "close_status");
    check(code == WS_CLOSE_STATUS_SUCCESS && std::strcmp(reason, "done") == 0, st,
          "the server echoed our close status");

    // a failure: the code, its name and a detail, and no exception
    check(!ws.send_text("after close", st) && st.code() == WS_ERROR_INVALID_OPERATION, st,
          "send after close fails with WS_ERROR_INVALID_OPERATION");
    wshandle::listener l = wshandle::listener::listen("ws://127.0.0.1:0/", st);
    check(st.ok(), st, "listen");
    char url[64];
    std::snprintf(url, sizeof url, "ws://127.0.0.1:%u/", static_cast<unsigned>(l.local_port(st)));
    l.reset(); // the port is free again: nobody listens
    wshandle::websocket lost = wshandle::websocket::open(url, st);
    check(st.ok(), st, "open");
    check(!lost.connect(st) && st.code() == WS_ERROR_CANNOT_CONNECT && st.detail()[0] != '\0' &&
              std::strcmp(st.name(), "WS_ERROR_CANNOT_CONNECT") == 0,
          st, "connect to a closed port fails with WS_ERROR_CANNOT_CONNECT and a detail");
    std::printf("expected failure: %s: %s\n", st.name(), st.detail());
    std::printf("cpp noexcept echo ok\n");
    return 0;
}
