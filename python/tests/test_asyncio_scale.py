"""wshandle.asyncio at scale and over whole programs: 1,000 connections from one loop with no
thread created, the seed scenario (python/examples/seed_asyncio.py) against wshandle's own
asyncio server, its blocking one and the raw seed peer, and the queue's life with its loop."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import resource
import subprocess
import sys
import threading
from types import ModuleType
from typing import Any, List

import pytest
from aio import LOOPS, fd_count, run, thread_count, wshandle_server
from conftest import require
from helpers import DEADLINE, EXAMPLES

import wshandle
import wshandle.asyncio as wa
from wshandle import _aqueue

N = 1000


@pytest.fixture(params=LOOPS)
def loop_kind(request: Any) -> str:
    if request.param == "uvloop":
        require("uvloop")
    return str(request.param)


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = load_example("seed_asyncio")


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_a_thousand_connections_from_one_loop_create_no_thread(loop_kind: str) -> None:
    """1,000 clients and their 1,000 server-side connections on one loop (one queue): every
    client sends, is echoed, and closes; not one thread is started, by Python or the library."""
    raise_fd_limit(4 * N + 256)
    threads_before = thread_count()
    python_threads_before = threading.active_count()
    peak: List[int] = []

    async def handler(ws: wa.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async def client(port: int, i: int, opened: asyncio.Event, go: asyncio.Event) -> Any:
        async with wa.connect(f"ws://127.0.0.1:{port}/") as ws:
            opened.set()
            await go.wait()  # all are open at once
            await ws.send(f"client {i}")
            return await ws.recv()

    async def main() -> List[Any]:
        async with wshandle_server(handler) as server:
            go = asyncio.Event()
            events = [asyncio.Event() for _ in range(N)]
            tasks = [
                asyncio.create_task(client(server.port, i, events[i], go)) for i in range(N)
            ]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), DEADLINE)
            assert len(server.connections) == N
            peak.append(thread_count())
            go.set()
            return await asyncio.gather(*tasks)

    answers = run(loop_kind, main())
    assert answers == [f"client {i}" for i in range(N)]
    assert peak == [threads_before]
    assert thread_count() == threads_before
    assert threading.active_count() == python_threads_before


def test_the_queue_lives_as_long_as_its_loop(loop_kind: str) -> None:
    """One queue per loop, shared by its handles, released when the loop ends (also with a
    connection left open) — no descriptor stays behind."""
    fds_before = fd_count()
    seen: List[Any] = []

    async def main() -> None:
        async with wa.listen("ws://127.0.0.1:0/") as listener:
            url = f"ws://127.0.0.1:{listener.port}/"
            # an upgrade completes while an accept is pending
            a, sa = await asyncio.gather(wa.connect(url), listener.accept())
            b, sb = await asyncio.gather(wa.connect(url), listener.accept())
            assert a._q is b._q is sa._q is _aqueue.queue_for_running_loop()
            seen.append(a._q)
            await asyncio.gather(a.close(), sa.close())
            a.close_handle()
            sa.close_handle()
            await b.send("left open")
            assert await sb.recv() == "left open"
            # b and sb are left open on purpose: the loop's end releases them and the queue

    run(loop_kind, main())
    (queue,) = seen
    assert queue.released
    assert len(_aqueue._queues) == 0
    assert fd_count() == fds_before


@pytest.fixture(params=["wshandle.asyncio", "wshandle", "raw"])
def seed_url(request: Any, make_server: Any, make_peer: Any) -> Any:
    """The seed's server: the asyncio example's (in a subprocess), the blocking example's, and
    tests/peers/raw_server.py --mode seed."""
    if request.param == "raw":
        peer = make_peer("raw_server.py", "--mode", "seed")
        yield peer.url
        assert peer.event("done") == {"event": "done", "replies": 33, "bytes": 128 << 20}
    elif request.param == "wshandle":
        blocking_seed = load_example("seed_server")
        server = make_server(blocking_seed.serve, path="/seed")
        yield server.url
        assert server.result() == (33, 128 << 20, (1000, ""))
    else:
        proc = start_example_server(1)
        try:
            first = proc.stdout.readline()
            assert first.startswith("listening on port "), first
            yield f"ws://127.0.0.1:{int(first.split()[-1])}/seed"
            rest = proc.communicate(timeout=DEADLINE)[0]
            assert rest.splitlines() == [
                "server: 33 replies, 134217728 bytes, client closed with 1000"
            ]
            assert proc.returncode == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def start_example_server(connections: int, *extra: str) -> "subprocess.Popen[str]":
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(wshandle.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "seed_asyncio.py"),
            "server",
            "ws://127.0.0.1:0/seed",
            str(connections),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_seed_shutdown_in_asyncio(seed_url: str, loop_kind: str) -> None:
    """128 MiB streamed by one task while another receives; shutdown, then all 33 replies."""
    r = run(loop_kind, seed.run_client(seed_url, "shutdown", quiet=True))
    assert r["receiver"] == "close frame"
    assert r["replies"] == [seed.FULL_REPLY] * 32 + [seed.LAST_REPLY]
    assert r["close_status"] == (1000, "")
    assert r["state"] is wshandle.State.CLOSED


def test_seed_close_in_asyncio(loop_kind: str) -> None:
    """close while the receiver task waits: its recv raises Cancelled, close discards the last
    reply (32 arrive), and ends at the server's close frame."""
    proc = start_example_server(1, "--uvloop") if loop_kind == "uvloop" else start_example_server(1)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on port "), first
        url = f"ws://127.0.0.1:{int(first.split()[-1])}/seed"
        r = run(loop_kind, seed.run_client(url, "close", quiet=True))
        assert r["receiver"] == "cancelled"
        assert r["replies"] == [seed.FULL_REPLY] * 32
        assert r["close_status"] == (1000, "")
        assert r["state"] is wshandle.State.CLOSED
        assert proc.communicate(timeout=DEADLINE)[0].splitlines() == [
            "server: 33 replies, 134217728 bytes, client closed with 1000"
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

