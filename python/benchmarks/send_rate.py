#!/usr/bin/env python3
"""Small-message send rate from Python: wshandle vs websocket-client vs websockets (sync).

    python python/benchmarks/send_rate.py [--count N] [--size BYTES] [--rounds R]

Starts one sink server in a subprocess (raw sockets: completes the upgrade, then reads and
discards bytes in 1 MiB gulps, so it is never the bottleneck) and sends COUNT messages of SIZE
bytes (default 200,000 x 16) over one connection with each client in turn, in this process,
ROUNDS times; prints each client's best rate and the ratios. The last line is no client: a
prebuilt frame per `socket.send` on a TCP_NODELAY socket, the floor every client above pays
per message (one small TCP segment each). Needs `websocket-client` and
`websockets` (both in target/test-venv) and an importable `wshandle`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def sink_main(deadline: float) -> None:
    """The sink server (run as a subprocess with --sink)."""
    threading.Timer(deadline, lambda: os._exit(0)).start()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(f"PORT {srv.getsockname()[1]}", flush=True)

    def serve(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        key = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        buf = bytearray(1 << 20)
        while conn.recv_into(buf):
            pass
        conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _timed(send, payload: bytes, count: int):
    """(wall, user CPU, system CPU) seconds for `count` sends."""
    c0 = os.times()
    t0 = time.perf_counter()
    for _ in range(count):
        send(payload)
    wall = time.perf_counter() - t0
    c1 = os.times()
    return wall, c1.user - c0.user, c1.system - c0.system


def bench_wshandle(url: str, payload: bytes, count: int):
    import wshandle

    ws = wshandle.connect(url)
    try:
        send = ws.send
        for _ in range(1000):
            send(payload)
        return _timed(send, payload, count)
    finally:
        ws.close_handle()  # the sink never answers a close frame


def bench_websocket_client(url: str, payload: bytes, count: int):
    import websocket  # websocket-client

    ws = websocket.create_connection(url, enable_multithread=False)
    try:
        send = ws.send_binary
        for _ in range(1000):
            send(payload)
        return _timed(send, payload, count)
    finally:
        ws.sock.close()


def bench_websockets_sync(url: str, payload: bytes, count: int):
    from websockets.sync.client import connect

    ws = connect(url, compression=None, ping_interval=None, max_size=None, proxy=None)
    with ws:
        send = ws.send
        for _ in range(1000):
            send(payload)
        result = _timed(send, payload, count)
        ws.socket.close()  # the sink never answers a close frame
        return result


def bench_raw_socket(url: str, payload: bytes, count: int):
    """Not a client: the floor. One prebuilt masked frame per `socket.send` on a TCP_NODELAY
    socket, which is what each WebSocket client above does per message at the least."""
    host, port = url[len("ws://") :].rstrip("/").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    frame = bytes([0x82, 0x80 | len(payload)]) + mask + masked
    try:
        return _timed(sock.send, frame, count)
    finally:
        sock.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=300.0)
    args = p.parse_args()
    if args.sink:
        sink_main(args.deadline)
        return 0

    os.environ["no_proxy"] = "*"  # websocket-client and websockets honour proxy variables
    sink = subprocess.Popen(
        [sys.executable, __file__, "--sink", "--deadline", str(args.deadline)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = sink.stdout.readline()
        assert line.startswith("PORT "), line
        url = f"ws://127.0.0.1:{int(line.split()[1])}/"
        payload = os.urandom(args.size)
        import websocket
        import websockets

        import wshandle

        clients = [
            (f"wshandle {wshandle.__version__}", bench_wshandle),
            (f"websocket-client {websocket.__version__}", bench_websocket_client),
            (f"websockets {websockets.version.version} (sync)", bench_websockets_sync),
            ("floor: socket.send, TCP_NODELAY", bench_raw_socket),
        ]
        best = {}
        for _ in range(args.rounds):
            for name, fn in clients:
                r = fn(url, payload, args.count)
                if name not in best or r[0] < best[name][0]:
                    best[name] = r
        print(
            f"{args.count} messages of {args.size} bytes, best of {args.rounds} rounds, "
            f"Python {sys.version.split()[0]}, one connection each to the same sink:"
        )
        print(
            f"  {'client':32s} {'msg/s':>10s} {'us/msg':>7s} {'ratio':>6s}  "
            f"{'user us/msg':>11s} {'sys us/msg':>10s}"
        )
        base = best[clients[0][0]][0]
        for name, _ in clients:
            wall, user, system = best[name]
            n = args.count
            print(
                f"  {name:32s} {n / wall:10,.0f} {1e6 * wall / n:7.2f} {wall / base:5.1f}x  "
                f"{1e6 * user / n:11.2f} {1e6 * system / n:10.2f}"
            )
        print(
            "  ratio: this client's time per message / wshandle's; user/sys: this process's "
            "CPU time (os.times) per message"
        )
        return 0
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    sys.exit(main())
