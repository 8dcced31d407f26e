#!/usr/bin/env python3
"""Python contenders: the wshandle package against websocket-client, the websockets sync
client, and a raw Python socket, on 127.0.0.1, alternating round by round.

    python benches/python_bench.py WSBENCH_BINARY ROUNDS OUT.json

The servers are the Rust bench binary's (`wsbench serve ...`), the same for every contender:
a WebSocket sink, a frame blaster (16-byte frames as fast as a client reads), echo servers.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

import websocket  # websocket-client
from websockets.sync.client import connect as websockets_connect

import wshandle

SEND_N = 100_000
RECV_N = 200_000
RTT_N = 5_000
MSG = b"x" * 16


def server(binary: str, kind: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([binary, "serve", kind, "16"], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


# --- sends: one call per 16-byte message -----------------------------------------------
def send_wshandle(port):
    with wshandle.connect(ws_url(port)) as ws:
        t = time.perf_counter()
        for _ in range(SEND_N):
            ws.send(MSG)
        return SEND_N / (time.perf_counter() - t)


BATCH = 64  # messages per send_many call


def send_many_wshandle(port):
    batch = [MSG] * BATCH
    with wshandle.connect(ws_url(port)) as ws:
        t = time.perf_counter()
        for _ in range(SEND_N // BATCH):
            ws.send_many(batch)
        return SEND_N // BATCH * BATCH / (time.perf_counter() - t)


def send_wsclient(port):
    ws = websocket.create_connection(ws_url(port), enable_multithread=False)
    ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.perf_counter()
    for _ in range(SEND_N):
        ws.send_binary(MSG)
    r = SEND_N / (time.perf_counter() - t)
    ws.close()
    return r


def send_websockets(port):
    with websockets_connect(ws_url(port), compression=None, max_size=None) as ws:
        t = time.perf_counter()
        for _ in range(SEND_N):
            ws.send(MSG)
        return SEND_N / (time.perf_counter() - t)


def send_raw(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.perf_counter()
    for _ in range(SEND_N):
        s.sendall(MSG)
    r = SEND_N / (time.perf_counter() - t)
    s.close()
    return r


# --- receives of 16-byte messages that arrive as fast as the client reads ----------------
def recv_wshandle(port):
    buf = bytearray(65536)
    with wshandle.connect(ws_url(port)) as ws:
        t = time.perf_counter()
        for _ in range(RECV_N):
            ws.recv_into(buf)
        r = RECV_N / (time.perf_counter() - t)
        ws.close_handle()
        return r


def recv_wsclient(port):
    ws = websocket.create_connection(ws_url(port))
    t = time.perf_counter()
    for _ in range(RECV_N):
        ws.recv()
    r = RECV_N / (time.perf_counter() - t)
    ws.sock.close()
    return r


def recv_websockets(port):
    ws = websockets_connect(ws_url(port), compression=None, max_size=None, max_queue=None)
    t = time.perf_counter()
    for _ in range(RECV_N):
        ws.recv()
    r = RECV_N / (time.perf_counter() - t)
    ws.socket.close()
    return r


# --- round trips of 16 bytes: p50 in microseconds ---------------------------------------
def p50(lat):
    return statistics.median(lat) * 1e6


def rtt_wshandle(port):
    buf = bytearray(64)
    with wshandle.connect(ws_url(port)) as ws:
        lat = []
        for _ in range(RTT_N):
            t = time.perf_counter()
            ws.send(MSG)
            ws.recv_into(buf)
            lat.append(time.perf_counter() - t)
        return p50(lat)


def rtt_wsclient(port):
    ws = websocket.create_connection(ws_url(port))
    ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    for _ in range(RTT_N):
        t = time.perf_counter()
        ws.send_binary(MSG)
        ws.recv()
        lat.append(time.perf_counter() - t)
    ws.close()
    return p50(lat)


def rtt_websockets(port):
    with websockets_connect(ws_url(port), compression=None) as ws:
        lat = []
        for _ in range(RTT_N):
            t = time.perf_counter()
            ws.send(MSG)
            ws.recv()
            lat.append(time.perf_counter() - t)
        return p50(lat)


def rtt_raw(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(16)
    lat = []
    for _ in range(RTT_N):
        t = time.perf_counter()
        s.sendall(MSG)
        got = 0
        while got < 16:
            got += s.recv_into(memoryview(buf)[got:])
        lat.append(time.perf_counter() - t)
    s.close()
    return p50(lat)


def main():
    binary, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    procs = {}
    ports = {}
    for kind in ("ws-sink", "raw-sink", "ws-blast", "ws-echo", "raw-echo"):
        procs[kind], ports[kind] = server(binary, kind)
    plan = [
        ("Python send 16 B", "msg/s", True, [
            ("wshandle", send_wshandle, "ws-sink"), ("websocket-client", send_wsclient, "ws-sink"),
            ("websockets sync", send_websockets, "ws-sink"), ("raw socket", send_raw, "raw-sink")]),
        ("Python send 16 B, 64 per call", "msg/s", True, [
            ("wshandle send_many", send_many_wshandle, "ws-sink"),
            ("websocket-client (one call each)", send_wsclient, "ws-sink")]),
        ("Python recv 16 B", "msg/s", True, [
            ("wshandle", recv_wshandle, "ws-blast"), ("websocket-client", recv_wsclient, "ws-blast"),
            ("websockets sync", recv_websockets, "ws-blast")]),
        ("Python round trip 16 B p50", "µs", False, [
            ("wshandle", rtt_wshandle, "ws-echo"), ("websocket-client", rtt_wsclient, "ws-echo"),
            ("websockets sync", rtt_websockets, "ws-echo"), ("raw socket", rtt_raw, "raw-echo")]),
    ]
    samples = {}
    try:
        for r in range(rounds):
            for scenario, unit, higher, contenders in plan:
                order = contenders if r % 2 == 0 else list(reversed(contenders))
                for name, fn, srv in order:
                    v = fn(ports[srv])
                    print(f"  {scenario:<28} {name:<18} {v:>14.1f} {unit}", file=sys.stderr)
                    samples.setdefault((scenario, name, unit, higher), []).append(v)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    rows = []
    for (scenario, name, unit, higher), vals in samples.items():
        rows.append({"scenario": scenario, "contender": name, "unit": unit,
                     "higher_is_better": higher, "median": statistics.median(vals),
                     "min": min(vals), "max": max(vals), "samples": vals})
    with open(out, "w") as f:
        json.dump({"rounds": rounds, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
