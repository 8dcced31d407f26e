#!/usr/bin/env python3
"""asyncio contenders: wshandle.asyncio against picows, websockets (asyncio) and aiohttp, on
the default event loop and on uvloop, on 127.0.0.1, alternating round by round.

    python benches/asyncio_bench.py WSBENCH_BINARY ROUNDS OUT.json

The servers are the Rust bench binary's (`wsbench serve ws-echo|ws-sink`), the same for every
contender. Two scenarios, each one connection:

- echo 256 B: send a 256-byte binary message, await its echo; round trips per second.
- send 16 B: 16-byte binary messages as fast as the client's send API takes them, to a sink,
  then one echo-less flush (the time until the library or transport has written all of them
  is included); messages per second.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import aiohttp
import picows
import uvloop
from websockets.asyncio.client import connect as websockets_connect

import wshandle.asyncio as wa

RTT_N = int(__import__("os").environ.get("RTT_N", 20_000))
SEND_N = int(__import__("os").environ.get("SEND_N", 200_000))
ECHO_MSG = b"e" * 256
SEND_MSG = b"s" * 16


def server(binary: str, kind: str) -> Tuple["subprocess.Popen[str]", int]:
    p = subprocess.Popen([binary, "serve", kind, "16"], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    return p, int(p.stdout.readline())


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


# ---- wshandle.asyncio ---------------------------------------------------------------------
async def echo_wshandle(port: int) -> float:
    async with wa.connect(url(port)) as ws:
        t = time.perf_counter()
        for _ in range(RTT_N):
            await ws.send(ECHO_MSG)
            await ws.recv()
        return RTT_N / (time.perf_counter() - t)


async def send_wshandle(port: int) -> float:
    async with wa.connect(url(port)) as ws:
        t = time.perf_counter()
        for _ in range(SEND_N):
            await ws.send(SEND_MSG)
        await ws.shutdown()  # written once the shutdown's close frame (after them) is
        r = SEND_N / (time.perf_counter() - t)
        await ws.recv()
        return r


# ---- websockets (asyncio) -----------------------------------------------------------------
async def echo_websockets(port: int) -> float:
    async with websockets_connect(url(port), compression=None, max_size=None) as ws:
        t = time.perf_counter()
        for _ in range(RTT_N):
            await ws.send(ECHO_MSG)
            await ws.recv()
        return RTT_N / (time.perf_counter() - t)


async def send_websockets(port: int) -> float:
    async with websockets_connect(url(port), compression=None, max_size=None) as ws:
        t = time.perf_counter()
        for _ in range(SEND_N):
            await ws.send(SEND_MSG)
        transport = ws.transport
        while transport.get_write_buffer_size():  # flushed to the OS
            await asyncio.sleep(0)
        return SEND_N / (time.perf_counter() - t)


# ---- aiohttp ------------------------------------------------------------------------------
async def echo_aiohttp(port: int) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url(port), compress=0, autoping=False) as ws:
            t = time.perf_counter()
            for _ in range(RTT_N):
                await ws.send_bytes(ECHO_MSG)
                await ws.receive()
            return RTT_N / (time.perf_counter() - t)


async def send_aiohttp(port: int) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url(port), compress=0, autoping=False) as ws:
            t = time.perf_counter()
            for _ in range(SEND_N):
                await ws.send_bytes(SEND_MSG)
            transport = session.connector._conns  # noqa: F841 - flushing below
            conn_transport = ws._writer.transport  # type: ignore[attr-defined]
            while conn_transport.get_write_buffer_size():
                await asyncio.sleep(0)
            return SEND_N / (time.perf_counter() - t)


# ---- picows -------------------------------------------------------------------------------
class _EchoListener(picows.WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.waiter: "asyncio.Future[None] | None" = None

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def echo_picows(port: int) -> float:
    transport, listener = await picows.ws_connect(_EchoListener, url(port))
    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    for _ in range(RTT_N):
        listener.waiter = loop.create_future()
        transport.send(picows.WSMsgType.BINARY, ECHO_MSG)
        await listener.waiter
    r = RTT_N / (time.perf_counter() - t)
    transport.disconnect()
    await transport.wait_disconnected()
    return r


async def send_picows(port: int) -> float:
    transport, _ = await picows.ws_connect(picows.WSListener, url(port))
    t = time.perf_counter()
    for _ in range(SEND_N):
        transport.send(picows.WSMsgType.BINARY, SEND_MSG)
    under = transport.underlying_transport
    while under.get_write_buffer_size():
        await asyncio.sleep(0)
    r = SEND_N / (time.perf_counter() - t)
    transport.disconnect()
    await transport.wait_disconnected()
    return r


CONTENDERS: List[Tuple[str, Callable[[int], Awaitable[float]], Callable[[int], Awaitable[float]]]] = [
    ("wshandle.asyncio", echo_wshandle, send_wshandle),
    ("picows", echo_picows, send_picows),
    ("websockets asyncio", echo_websockets, send_websockets),
    ("aiohttp", echo_aiohttp, send_aiohttp),
]


def run_on(loop_kind: str, coro: Awaitable[float]) -> float:
    if loop_kind == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def main() -> None:
    binary, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    echo_proc, echo_port = server(binary, "ws-echo")
    sink_proc, sink_port = server(binary, "ws-sink")
    samples: Dict[Tuple[str, str, str, bool], List[float]] = {}
    try:
        for r in range(rounds):
            order = CONTENDERS if r % 2 == 0 else list(reversed(CONTENDERS))
            for loop_kind in ("asyncio", "uvloop"):
                for name, echo, send in order:
                    for scenario, unit, fn, port in (
                        (f"asyncio echo 256 B ({loop_kind})", "round trips/s", echo, echo_port),
                        (f"asyncio send 16 B ({loop_kind})", "msg/s", send, sink_port),
                    ):
                        v = run_on(loop_kind, fn(port))
                        print(f"  {scenario:<32} {name:<20} {v:>12.0f} {unit}", file=sys.stderr)
                        samples.setdefault((scenario, name, unit, True), []).append(v)
    finally:
        for p in (echo_proc, sink_proc):
            p.kill()
            p.wait()
    rows = [
        {
            "scenario": scenario,
            "contender": name,
            "unit": unit,
            "median": statistics.median(vals),
            "min": min(vals),
            "max": max(vals),
        }
        for (scenario, name, unit, _), vals in samples.items()
    ]
    with open(out, "w") as f:
        json.dump({"rounds": rounds, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
