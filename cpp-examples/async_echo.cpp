// async_echo.cpp - the C++ wrapper's asynchronous mode: one client bound to a completion
// queue, driven from this thread. It connects, sends a text message and a binary one while a
// receive is always pending, checks both echoes, closes, releases the handle and waits for its
// HANDLE_CLOSING, the last completion it will ever get.
//
// Usage: async_echo URL   (an echo server, e.g. c-examples/echo_server.c)
// Prints "cpp async echo ok" and exits 0 on success.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "wshandle.hpp"

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    try {
        wshandle::queue q = wshandle::queue::create();
        wshandle::websocket ws = wshandle::websocket::open(argv[1]);
        int tag = 7;
        ws.bind(q.native_handle());
        ws.set_context(&tag);
        ws.start_connect();

        const std::string text = "hello from C++, asynchronously";
        const std::vector<unsigned char> blob = {0, 1, 2, 254, 255};
        std::vector<std::string> echoes;
        std::string current;
        char piece[8];  // small on purpose: echoes arrive in several pieces
        std::vector<std::uint32_t> order;
        bool closing = false, released = false;
        wshandle::completion done[16];
        for (int turns = 0; turns < 1000; turns++) {
            std::size_t n = q.wait(done, 16, 10000);
            if (n == 0)
                throw std::runtime_error("no completion within 10 s");
            for (std::size_t i = 0; i < n; i++) {
                const wshandle::completion &c = done[i];
                if (c.context != &tag)
                    throw std::runtime_error("a completion without the handle's context");
                order.push_back(c.status);
                switch (c.status) {
                case WS_CALLBACK_STATUS_CONNECT_COMPLETE:
                    ws.start_receive(wshandle::mutable_bytes(piece, sizeof piece));
                    ws.start_send(WS_BUFFER_UTF8_MESSAGE, text);  // several sends may be pending
                    ws.start_send(WS_BUFFER_BINARY_MESSAGE, blob);
                    break;
                case WS_CALLBACK_STATUS_READ_COMPLETE:
                    current.append(piece, c.io.bytes_transferred);
                    if (c.io.buffer_type == WS_BUFFER_UTF8_MESSAGE ||
                        c.io.buffer_type == WS_BUFFER_BINARY_MESSAGE) {
                        echoes.push_back(current);
                        current.clear();
                    }
                    if (echoes.size() == 2 && !closing) {
                        closing = true;
                        ws.start_close(WS_CLOSE_STATUS_SUCCESS, "bye");
                    } else if (!closing) {
                        ws.start_receive(wshandle::mutable_bytes(piece, sizeof piece));
                    }
                    break;
                case WS_CALLBACK_STATUS_WRITE_COMPLETE:
                    break;
                case WS_CALLBACK_STATUS_CLOSE_COMPLETE:
                    if (ws.state() != WS_STATE_CLOSED)
                        throw std::runtime_error("not CLOSED after CLOSE_COMPLETE");
                    ws.close_handle();  // HANDLE_CLOSING follows, and then nothing
                    break;
                case WS_CALLBACK_STATUS_HANDLE_CLOSING:
                    released = true;
                    break;
                case WS_CALLBACK_STATUS_REQUEST_ERROR: {
                    wshandle::status st;
                    st.set(c.result.error);
                    throw wshandle::error(st);
                }
                default:
                    throw std::runtime_error("an unexpected completion");
                }
            }
            if (released)
                break;
        }
        if (!released)
            throw std::runtime_error("no HANDLE_CLOSING");
        const std::string blob_text(blob.begin(), blob.end());
        if (echoes.size() != 2 || echoes[0] != text || echoes[1] != blob_text)
            throw std::runtime_error("the echoes differ from what was sent");
        if (order.front() != WS_CALLBACK_STATUS_CONNECT_COMPLETE ||
            order.back() != WS_CALLBACK_STATUS_HANDLE_CLOSING)
            throw std::runtime_error("completions out of order");
        ws.release();  // already closed with close_handle(); nothing left to release
        std::printf("cpp async echo ok: %zu completions\n", order.size());
        return 0;
    } catch (const wshandle::error &e) {
        std::fprintf(stderr, "%s\n", e.what());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
