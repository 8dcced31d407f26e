"""Shared machinery of the wshandle.asyncio tests: running a coroutine on the default loop or on
uvloop with a deadline, and in-loop servers (wshandle's own and Python websockets')."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Optional, TypeVar

from helpers import DEADLINE

import wshandle
import wshandle.asyncio as wa

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, coro: Coroutine[Any, Any, T], deadline: float = DEADLINE) -> T:
    """Runs ``coro`` to completion on a new loop of the given kind, within ``deadline``."""
    bounded = asyncio.wait_for(coro, deadline)
    if loop_kind == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(bounded)
    return asyncio.run(bounded)


async def echo(ws: wa.WebSocket) -> None:
    """wshandle.asyncio echo handler: every message back with its type, until the close."""
    async for message in ws:
        await ws.send(message)


@contextlib.asynccontextmanager
async def wshandle_server(
    handler: Callable[[wa.WebSocket], Awaitable[Any]] = echo, path: str = "/", **options: Any
) -> AsyncIterator[wa.Server]:
    """`wshandle.asyncio.serve` on 127.0.0.1, a free port."""
    options.setdefault("close_timeout", 5)
    async with wa.serve(handler, f"ws://127.0.0.1:0{path}", **options) as server:
        yield server


@contextlib.asynccontextmanager
async def websockets_server(
    handler: Optional[Callable[[Any], Awaitable[Any]]] = None, **options: Any
) -> AsyncIterator[str]:
    """A Python `websockets` asyncio server in the same loop; yields its URL."""
    from websockets.asyncio.server import serve

    async def ws_echo(conn: Any) -> None:
        async for message in conn:
            await conn.send(message)

    options.setdefault("compression", None)
    options.setdefault("max_size", None)
    async with serve(handler or ws_echo, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def until(predicate: Callable[[], bool], what: str, limit: int = 100_000) -> None:
    """Yields to the loop until ``predicate()`` holds (bounded; no sleeping)."""
    for _ in range(limit):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def thread_count() -> int:
    """Threads of this process, as the kernel counts them."""
    return len(os.listdir("/proc/self/task"))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


__all__ = [
    "LOOPS",
    "run",
    "echo",
    "wshandle_server",
    "websockets_server",
    "until",
    "thread_count",
    "fd_count",
    "wshandle",
]
