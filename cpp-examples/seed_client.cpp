// seed_client.cpp - the two-way stream of seeds/003 with wshandle.hpp: the main thread sends
// COUNT binary messages of 128 KiB (1024 = 128 MiB) while a receiver thread reads the server's
// text replies, then closes either way:
//   shutdown: ws_shutdown, the receiver reads on until the server's close frame (33 replies);
//   close:    ws_close while the receiver is blocked in receive(), which throws
//             WS_ERROR_OPERATION_CANCELLED (or, if it had not re-entered yet, is refused with
//             WS_ERROR_INVALID_OPERATION); the server's last reply is discarded (32 replies).
// Against c-examples/seed_server.c (or any server that replies "Server got N bytes\n" per
// 4 MiB and once more after the client's close).
//
// Usage: seed_client ws://host:port/path [shutdown|close] [COUNT]
#include <wshandle.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t message_size = 128 * 1024;
constexpr unsigned long long reply_every = 4194304;

[[noreturn]] void fail(const std::string &what) {
    std::fprintf(stderr, "seed_client: %s\n", what.c_str());
    std::exit(1);
}

struct receiver_state {
    std::mutex lock;
    std::condition_variable changed;
    unsigned replies = 0;
    bool done = false;
    ws_error result = WS_OK; // how the receiver ended
};

} // namespace

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4)
        fail("usage: seed_client ws://host:port/path [shutdown|close] [COUNT]");
    const std::string mode = argc >= 3 ? argv[2] : "shutdown";
    const long count = argc == 4 ? std::atol(argv[3]) : 1024;
    if (count <= 0 || (mode != "shutdown" && mode != "close"))
        fail("expected shutdown or close and a positive COUNT");
    const unsigned long long total = static_cast<unsigned long long>(count) * message_size;
    const unsigned full_replies = static_cast<unsigned>(total / reply_every);
    const std::string full_reply = "Server got 4194304 bytes\n";
    const std::string last_reply = "Server got " + std::to_string(total % reply_every) + " bytes\n";

    try {
        wshandle::websocket ws = wshandle::websocket::open(argv[1]);
        ws.connect();

        receiver_state st;
        std::thread receiver([&] {
            std::string reply;
            ws_error result = WS_OK;
            try {
                for (;;) {
                    if (ws.receive_message(reply) == WS_BUFFER_CLOSE)
                        break;
                    std::lock_guard<std::mutex> g(st.lock);
                    const std::string &want = st.replies < full_replies ? full_reply : last_reply;
                    if (reply != want)
                        fail("unexpected reply: " + reply);
                    st.replies++;
                    st.changed.notify_all();
                }
            } catch (const wshandle::error &e) {
                result = e.code();
            }
            std::lock_guard<std::mutex> g(st.lock);
            st.result = result;
            st.done = true;
            st.changed.notify_all();
        });

        auto start = std::chrono::steady_clock::now();
        std::vector<std::uint8_t> data(message_size);
        for (long i = 0; i < count; i++)
            ws.send_binary(data);

        if (mode == "shutdown") {
            ws.shutdown();
            receiver.join();
            if (st.result != WS_OK || st.replies != full_replies + 1)
                fail("the receiver did not end with the close frame after every reply");
        } else {
            {
                std::unique_lock<std::mutex> g(st.lock);
                st.changed.wait(g, [&] { return st.replies >= full_replies || st.done; });
            }
            ws.close();
            receiver.join();
            if (st.result != WS_ERROR_OPERATION_CANCELLED && st.result != WS_ERROR_INVALID_OPERATION)
                fail(std::string("the receiver ended with ") + wshandle::error_name(st.result));
            if (st.replies != full_replies)
                fail("the last reply went to the receiver, not to close()");
        }
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start).count();

        if (ws.state() != WS_STATE_CLOSED)
            fail("not CLOSED");
        wshandle::close_status cs = ws.close_status();
        if (cs.code != WS_CLOSE_STATUS_SUCCESS)
            fail("the server closed with " + std::to_string(cs.code));

        std::printf("seed time: %lld ms\n", static_cast<long long>(ms));
        if (mode == "shutdown")
            std::printf("seed shutdown ok: %u replies, close %u\n", st.replies, cs.code);
        else
            std::printf("seed close ok: %u replies, receive %s, close %u\n", st.replies,
                        st.result == WS_ERROR_OPERATION_CANCELLED ? "cancelled"
                                                                  : "refused (it began after ws_close)",
                        cs.code);
    } catch (const wshandle::error &e) {
        fail(e.what());
    }
    return 0;
}
