// hello.cpp - wshandle's C API from C++: a small RAII owner for the handle, errors as
// exceptions, and one echo round trip.
//
//     c++ -std=c++17 -Wall -Wextra -Werror -I include hello.cpp -L target/release -lwshandle
//     ./a.out ws://127.0.0.1:9001/echo
//
// The header is plain C with extern "C" guards: nothing else is needed to use it from C++.
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "wshandle.h"

// A result code that is not WS_OK, with this thread's detail of the failure.
struct ws_failure : std::runtime_error {
    ws_error code;
    ws_failure(const char *call, ws_error c) : std::runtime_error(describe(call, c)), code(c) {}

    static std::string describe(const char *call, ws_error c) {
        char detail[512];
        ws_last_error_message(detail, sizeof detail);  // read on the failing thread, at once
        return std::string(call) + ": " + ws_error_name(c) + ": " + detail;
    }
};

static void check(ws_error e, const char *call) {
    if (e != WS_OK) throw ws_failure(call, e);
}

// Owns one handle: ws_close_handle on destruction, whatever happened (it drops an open
// connection without a handshake, so call close() first for a clean end).
class websocket {
  public:
    explicit websocket(const std::string &url) { check(ws_open(url.c_str(), &h_), "ws_open"); }
    ~websocket() { ws_close_handle(h_); }
    websocket(const websocket &) = delete;
    websocket &operator=(const websocket &) = delete;

    void set_u32(uint32_t option, uint32_t value) {
        check(ws_set_option(h_, option, &value, sizeof value), "ws_set_option");
    }
    void connect() { check(ws_connect(h_), "ws_connect"); }
    void send_text(const std::string &text) {
        check(ws_send(h_, WS_BUFFER_UTF8_MESSAGE, text.data(), text.size()), "ws_send");
    }
    // One whole message: ws_receive hands out pieces (*_FRAGMENT) until the last (*_MESSAGE).
    std::string receive(uint32_t &type) {
        std::string message;
        char piece[4096];
        do {
            size_t n = 0;
            check(ws_receive(h_, piece, sizeof piece, &n, &type), "ws_receive");
            message.append(piece, n);
        } while (type == WS_BUFFER_UTF8_FRAGMENT || type == WS_BUFFER_BINARY_FRAGMENT);
        return message;
    }
    void close(uint16_t status, const std::string &reason) {
        check(ws_close(h_, status, reason.data(), reason.size()), "ws_close");
    }
    uint16_t close_status(std::string &reason) {
        uint16_t status = 0;
        char buf[WS_MAX_CLOSE_REASON_LENGTH];
        size_t n = 0;
        check(ws_query_close_status(h_, &status, buf, sizeof buf, &n), "ws_query_close_status");
        reason.assign(buf, n);  // not NUL-terminated: n bytes
        return status;
    }

  private:
    ws_handle h_ = 0;
};

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s ws://host:port/path\n", argv[0]);
        return 2;
    }
    try {
        websocket ws(argv[1]);
        ws.set_u32(WS_OPTION_RECEIVE_TIMEOUT, 10000);  // ms: a silent server cannot hang us
        ws.connect();
        ws.send_text("hello from C++");
        uint32_t type = 0;
        std::string echo = ws.receive(type);
        std::printf("got \"%s\" (%s)\n", echo.c_str(),
                    type == WS_BUFFER_UTF8_MESSAGE ? "text" : "binary");
        ws.close(WS_CLOSE_STATUS_SUCCESS, "done");  // the whole handshake, bounded
        std::string reason;
        unsigned status = ws.close_status(reason);
        std::printf("server closed with %u \"%s\"\n", status, reason.c_str());
        return echo == "hello from C++" ? 0 : 1;
    } catch (const ws_failure &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
