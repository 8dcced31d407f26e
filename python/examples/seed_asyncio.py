#!/usr/bin/env python3
"""Closing a two-way WebSocket without hanging, with asyncio (wshandle.asyncio).

The scenario of "How to gracefully close a two-way WebSocket in .Net"
(seeds/003_708f1961e88b610b.txt), as seed_client.py runs it with threads, here with two tasks
on one event loop: the main task streams 1024 binary messages of 128 KiB (128 MiB) while a
receiver task reads the server's text replies, "Server got 4194304 bytes\\n" per 4 MiB. When
the client's close frame arrives, the server sends one last reply, "Server got <n> bytes\\n",
and then its own close frame (1000).

    python seed_asyncio.py client ws://127.0.0.1:PORT/seed [shutdown|close] [--uvloop]
    python seed_asyncio.py server ws://127.0.0.1:0/seed [CONNECTIONS] [--uvloop]

client shutdown (default) - the seed's accepted answer (CloseOutputAsync): ``await
    ws.shutdown()`` sends our close frame after the queued messages; the receiver task keeps
    iterating in CLOSE_SENT, gets the last reply, and its loop ends at the server's close frame.
    All 33 replies arrive.

client close - the full close while the receiver task waits in ``recv()``: that ``recv()``
    raises `wshandle.Cancelled`, and ``ws.close()`` reads (and discards) the last reply while
    it waits for the server's close frame. 32 replies.

server - the seed's server with `wshandle.asyncio.serve`: counts the bytes, replies per 4 MiB,
    and after the client's close frame (``recv()`` returns None: CLOSE_RECEIVED) sends the last
    reply and then closes. Serves CONNECTIONS clients (default: until Ctrl-C).

Also runs against python/examples/seed_server.py, c-examples/seed_server.c and
tests/peers/raw_server.py --mode seed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Dict, List

import wshandle
import wshandle.asyncio

MESSAGE_SIZE = 128 * 1024
MESSAGE_COUNT = 1024
REPLY_EVERY = 4194304
FULL_REPLIES = 32  # 128 MiB / 4 MiB
FULL_REPLY = "Server got 4194304 bytes\n"
LAST_REPLY = "Server got 0 bytes\n"


async def run_client(url: str, mode: str = "shutdown", *, quiet: bool = False) -> Dict[str, Any]:
    """Runs the client side and returns what happened."""
    if mode not in ("shutdown", "close"):
        raise ValueError(f"mode must be 'shutdown' or 'close', not {mode!r}")
    replies: List[str] = []
    got_all_full = asyncio.Event()

    async with wshandle.asyncio.connect(url, close_timeout=10) as ws:

        async def receive() -> str:
            try:
                async for message in ws:  # ends at the server's close frame
                    if not isinstance(message, str):
                        raise AssertionError(f"expected a text reply, got {type(message)}")
                    if not quiet:
                        print("client got:", message, end="")
                    replies.append(message)
                    if len(replies) == FULL_REPLIES:
                        got_all_full.set()
                return "close frame"
            except wshandle.Cancelled:  # ws.close() in the main task
                return "cancelled"

        receiver = asyncio.create_task(receive())
        data = bytes(MESSAGE_SIZE)
        for _ in range(MESSAGE_COUNT):
            await ws.send(data)  # waits only while 1 MiB is queued (flow control)
        if mode == "shutdown":
            await ws.shutdown(1000)  # our close frame follows the queued messages
        else:
            await got_all_full.wait()  # the receiver is back in recv() by now
            await ws.close(1000)
        outcome = await receiver
        return {
            "receiver": outcome,
            "replies": replies,
            "close_status": ws.close_status,
            "state": ws.state,
        }


async def seed_handler(ws: wshandle.asyncio.WebSocket) -> Dict[str, Any]:
    """The seed's server for one connection: returns (replies sent, bytes received, client's
    close status)."""
    total = 0
    since_reply = 0
    replies = 0
    buf = bytearray(64 * 1024)
    while True:
        n, kind = await ws.recv_into(buf)
        if kind is wshandle.BufferType.CLOSE:
            break
        total += n
        since_reply += n
        while since_reply >= REPLY_EVERY:
            since_reply -= REPLY_EVERY
            await ws.send(FULL_REPLY)
            replies += 1
    await ws.send(f"Server got {since_reply} bytes\n")  # allowed in CLOSE_RECEIVED
    replies += 1
    status = ws.close_status
    await ws.close(1000)
    return {"replies": replies, "bytes": total, "client_close": status}


async def run_server(url: str, connections: int = 0) -> None:
    """Serves ``connections`` seed clients (0: until cancelled), printing one line each."""
    done: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()

    async def handler(ws: wshandle.asyncio.WebSocket) -> None:
        await done.put(await seed_handler(ws))

    async with wshandle.asyncio.serve(handler, url) as server:
        print(f"listening on port {server.port}", flush=True)
        served = 0
        while connections == 0 or served < connections:
            r = await done.get()
            served += 1
            code = r["client_close"][0] if r["client_close"] else None
            print(f"server: {r['replies']} replies, {r['bytes']} bytes, client closed with {code}",
                  flush=True)


def main(argv: List[str]) -> int:
    use_uvloop = "--uvloop" in argv
    args = [a for a in argv if a != "--uvloop"]
    if len(args) < 2 or args[0] not in ("client", "server"):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "client":
        mode = args[2] if len(args) > 2 else "shutdown"
        coro: Any = run_client(args[1], mode)
    else:
        coro = run_server(args[1], int(args[2]) if len(args) > 2 else 0)
    if use_uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            r = runner.run(coro)
    else:
        r = asyncio.run(coro)
    if args[0] == "client":
        print(f"seed {mode} ok: {len(r['replies'])} replies, receiver ended by {r['receiver']}, "
              f"close status {r['close_status']}, state {r['state'].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
