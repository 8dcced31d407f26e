// echo.cpp - wshandle.hpp in both roles: a listener in a thread echoes every message (and the
// client's close status), the main thread is the client. Or, with a URL, only the client,
// against any echo server (c-examples/echo_server.c).
//
// Usage: echo [ws://host:port/path]        prints "cpp echo ok"
#include <wshandle.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "echo: %s\n", what);
    std::exit(1);
}

void expect(bool ok, const char *what) {
    if (!ok)
        fail(what);
}

// The server side of one connection: echo each message with its type until the client's
// close, then answer the close with the client's own status and reason.
void serve(wshandle::websocket ws) try {
    std::string msg;
    for (;;) {
        std::uint32_t type = ws.receive_message(msg);
        if (type == WS_BUFFER_CLOSE)
            break;
        ws.send(type, msg);
    }
    wshandle::close_status cs = ws.close_status();
    ws.close(cs.code, cs.reason); // CLOSE_RECEIVED -> CLOSED
} catch (const wshandle::error &e) {
    std::fprintf(stderr, "echo server: %s\n", e.what());
    std::exit(1);
}

// A port nobody listens on: bind one, read it, release it.
std::uint16_t closed_port() {
    wshandle::listener l = wshandle::listener::listen("ws://127.0.0.1:0/");
    return l.local_port();
}

} // namespace

int main(int argc, char **argv) {
    try {
        wshandle::listener server;
        std::thread server_thread;
        std::string url;
        if (argc == 2) {
            url = argv[1];
        } else {
            server = wshandle::listener::listen("ws://127.0.0.1:0/echo");
            url = "ws://127.0.0.1:" + std::to_string(server.local_port()) + "/echo";
            server_thread = std::thread([&server] { serve(server.accept()); });
        }

        wshandle::websocket ws = wshandle::websocket::open(url);
        ws.set_receive_timeout(std::chrono::seconds(10));
        ws.set_timeout(WS_OPTION_CLOSE_TIMEOUT, std::chrono::milliseconds(5000));
        ws.set_option_string(WS_OPTION_SUBPROTOCOLS, "chat, superchat");
        ws.add_request_header("X-Example", "echo.cpp");
        ws.connect();
        expect(ws.state() == WS_STATE_OPEN, "state OPEN after connect");
        expect(ws.query_u32(WS_OPTION_HTTP_STATUS) == 101, "HTTP 101 Switching Protocols");
        std::string upgrade = ws.response_header("Upgrade");
        expect(upgrade == "websocket" || upgrade == "WebSocket", "the response's Upgrade header");

        std::string reply;
        ws.send_text("hello from C++");
        expect(ws.receive_message(reply) == WS_BUFFER_UTF8_MESSAGE, "a text echo");
        expect(reply == "hello from C++", "the text echoed");

        std::vector<std::uint8_t> big(1 << 20);
        for (std::size_t i = 0; i < big.size(); i++)
            big[i] = static_cast<std::uint8_t>(i * 7);
        ws.send_binary(big);
        expect(ws.receive_message(reply) == WS_BUFFER_BINARY_MESSAGE, "a binary echo");
        expect(reply.size() == big.size() &&
                   std::equal(big.begin(), big.end(), reinterpret_cast<const std::uint8_t *>(reply.data())),
               "1 MiB echoed byte for byte");

        // a message in two fragments, received through a small buffer
        ws.send(WS_BUFFER_UTF8_FRAGMENT, std::string_view("frag"));
        ws.send(WS_BUFFER_UTF8_MESSAGE, std::string_view("ment"));
        char small[3];
        std::string pieces;
        wshandle::received r;
        do {
            r = ws.receive(small);
            pieces.append(small, r.size);
        } while (!r.message_end());
        expect(pieces == "fragment" && r.is_text(), "fragments reassembled");

        ws.close(4000, "bye");
        expect(ws.state() == WS_STATE_CLOSED, "state CLOSED after close");
        wshandle::close_status cs = ws.close_status();
        expect(cs.code == 4000 && cs.reason == "bye", "the server echoed our close status");

        // failures are exceptions with code, name and detail
        try {
            ws.send_text("too late");
            fail("send after close must throw");
        } catch (const wshandle::error &e) {
            expect(e.code() == WS_ERROR_INVALID_OPERATION, "send after close: INVALID_OPERATION");
            expect(std::string(e.name()) == "WS_ERROR_INVALID_OPERATION", "the code's name");
        }
        try {
            wshandle::websocket::open("ws://127.0.0.1:" + std::to_string(closed_port()) + "/").connect();
            fail("connect to a closed port must throw");
        } catch (const wshandle::error &e) {
            expect(e.code() == WS_ERROR_CANNOT_CONNECT, "closed port: CANNOT_CONNECT");
            expect(e.detail()[0] != '\0', "a detail text");
            std::printf("expected failure: %s\n", e.what());
        }

        // move-only ownership: the moved-from object is empty, the handle is released once
        wshandle::websocket moved = std::move(ws);
        expect(!ws && moved, "moved");
        moved.reset();
        expect(!moved, "reset releases");

        if (server_thread.joinable())
            server_thread.join();
    } catch (const wshandle::error &e) {
        std::fprintf(stderr, "echo: %s (code %u)\n", e.what(), static_cast<unsigned>(e.code()));
        return 1;
    }
    std::printf("cpp echo ok\n");
    return 0;
}
