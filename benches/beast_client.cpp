// The C++ peer of the benchmarks: Boost.Beast's synchronous WebSocket client (Debian's boost
// headers), doing the client side of the same scenarios as wshandle.
//
//   beast_client bulk-up PORT TOTAL MSG      -> {"gib_per_s": ...}
//   beast_client small-send PORT SIZE N      -> {"msgs_per_s": ...}   (server must read N)
//   beast_client pingpong PORT SIZE ITERS    -> {"p50_us": ..., "p99_us": ...}
//
// The server is wshandle's (started by the bench driver); "bulk-up" and "small-send" end
// when the server, having received everything, sends a 1-byte text message back.
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

int main(int argc, char **argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s bulk-up|small-send|pingpong PORT A B\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    std::string port = argv[2];
    size_t a = std::strtoull(argv[3], nullptr, 10), b = std::strtoull(argv[4], nullptr, 10);

    net::io_context ioc;
    tcp::resolver resolver{ioc};
    websocket::stream<tcp::socket> ws{ioc};
    net::connect(ws.next_layer(), resolver.resolve("127.0.0.1", port));
    ws.next_layer().set_option(tcp::no_delay(true));
    ws.handshake("127.0.0.1:" + port, "/");
    ws.binary(true);
    beast::flat_buffer reply;

    if (mode == "bulk-up") {
        std::vector<char> msg(b, 'x');
        auto t0 = Clock::now();
        for (size_t sent = 0; sent < a; sent += b) ws.write(net::buffer(msg));
        ws.read(reply); // the server's "done"
        auto t1 = Clock::now();
        std::printf("{\"gib_per_s\": %.6f}\n", double(a) / double(1ull << 30) / seconds(t0, t1));
    } else if (mode == "small-send") {
        std::vector<char> msg(a, 'x');
        auto t0 = Clock::now();
        for (size_t i = 0; i < b; i++) ws.write(net::buffer(msg));
        ws.read(reply);
        auto t1 = Clock::now();
        std::printf("{\"msgs_per_s\": %.1f}\n", double(b) / seconds(t0, t1));
    } else if (mode == "pingpong") {
        std::vector<char> msg(a, 'x');
        std::vector<double> lat;
        lat.reserve(b);
        for (size_t i = 0; i < b; i++) {
            auto t0 = Clock::now();
            ws.write(net::buffer(msg));
            reply.clear();
            ws.read(reply);
            lat.push_back(seconds(t0, Clock::now()) * 1e6);
        }
        std::sort(lat.begin(), lat.end());
        std::printf("{\"p50_us\": %.2f, \"p99_us\": %.2f}\n", lat[lat.size() / 2],
                    lat[(lat.size() - 1) * 99 / 100]);
    } else {
        std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
        return 2;
    }
    beast::error_code ec;
    ws.close(websocket::close_code::normal, ec);
    return 0;
}
