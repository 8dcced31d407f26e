"""wshandle.asyncio against Python websockets' asyncio server and client and against itself, on
the default loop and on uvloop: message kinds, close rules, cancellation, timeouts, errors."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, List

import pytest
from aio import LOOPS, echo, run, until, websockets_server, wshandle_server
from conftest import require

import wshandle
import wshandle.asyncio as wa
from wshandle import BufferType, State

MESSAGES: List[Any] = [
    "hello",
    "",
    "snowman \u2603 and \U0001f600",
    b"",
    b"\x00\x01\xfe\xff",
    bytes(range(256)) * 4096,  # 1 MiB: many pieces, several receives
    "t" * 200_000,
]


@pytest.fixture(params=LOOPS)
def loop_kind(request: Any) -> str:
    if request.param == "uvloop":
        require("uvloop")
    return str(request.param)


@pytest.fixture(params=["wshandle", "websockets"])
def server_kind(request: Any) -> str:
    if request.param == "websockets":
        require("websockets")
    return str(request.param)


def echo_server(kind: str, **options: Any) -> Any:
    """An async context manager yielding an echo server's URL."""
    import contextlib

    @contextlib.asynccontextmanager
    async def url() -> Any:
        if kind == "websockets":
            async with websockets_server() as u:
                yield u
        else:
            async with wshandle_server(echo, **options) as server:
                yield f"ws://127.0.0.1:{server.port}/"

    return url()


def test_every_message_kind_echoes(loop_kind: str, server_kind: str) -> None:
    async def main() -> None:
        async with echo_server(server_kind) as url:
            async with wa.connect(url) as ws:
                assert ws.state is State.OPEN
                for m in MESSAGES:
                    await ws.send(m)
                    got = await ws.recv()
                    assert type(got) is type(m) and got == m
                # bytes-likes as binary, str as binary on request, UTF-8 bytes as text
                await ws.send(bytearray(b"ba"))
                await ws.send(memoryview(b"mv"))
                await ws.send("as-binary", text=False)
                await ws.send("\u00e9".encode(), text=True)
                assert [await ws.recv() for _ in range(4)] == [b"ba", b"mv", b"as-binary", "\u00e9"]
                # a message in fragments (a text one split inside a code point)
                await ws.send_fragment(b"\xe2\x98", text=True)
                await ws.send_fragment(b"\x83!", final=True, text=True)
                await ws.send_fragment(b"ab")
                await ws.send_fragment(b"cd", final=True)
                assert await ws.recv() == "\u2603!"
                assert await ws.recv() == b"abcd"
                # many sends in a row before any receive
                for i in range(500):
                    await ws.send(f"m{i}")
                assert [await ws.recv() for _ in range(500)] == [f"m{i}" for i in range(500)]
            assert ws.state is State.CLOSED
            assert ws.close_status == (1000, "")

    run(loop_kind, main())


def test_recv_into_and_async_iteration(loop_kind: str) -> None:
    async def handler(ws: wa.WebSocket) -> None:
        await ws.send(b"0123456789")
        await ws.send("xyz")
        await ws.send("end")
        await ws.close(1000, "bye")

    async def main() -> None:
        async with wshandle_server(handler) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                buf = bytearray(4)
                assert await ws.recv_into(buf) == (4, BufferType.BINARY_FRAGMENT)
                assert buf == b"0123"
                assert await ws.recv_into(buf) == (4, BufferType.BINARY_FRAGMENT)
                assert await ws.recv_into(buf) == (2, BufferType.BINARY_MESSAGE)
                assert buf[:2] == b"89"
                assert [m async for m in ws] == ["xyz", "end"]
                assert ws.close_status == (1000, "bye")
                assert ws.state is State.CLOSE_RECEIVED
                await ws.close()
                assert ws.state is State.CLOSED

    run(loop_kind, main())


def test_websockets_client_against_wshandle_serve(loop_kind: str) -> None:
    require("websockets")
    from websockets.asyncio.client import connect

    seen: List[Any] = []

    async def handler(ws: wa.WebSocket) -> None:
        seen.append((ws.subprotocol, ws.handshake_header("X-Test")))
        async for message in ws:
            await ws.send(message)
        seen.append(ws.close_status)

    async def main() -> None:
        async with wshandle_server(handler, path="/chat", subprotocols=["v2", "v1"]) as server:
            url = f"ws://127.0.0.1:{server.port}/chat"
            async with connect(
                url, subprotocols=["v1"], additional_headers={"X-Test": "yes"}, compression=None
            ) as client:
                assert client.subprotocol == "v1"
                for m in MESSAGES:
                    await client.send(m)
                    assert await client.recv() == m
            await until(lambda: len(seen) == 2, "the handler saw the close")
        assert seen == [("v1", "yes"), (1000, "")]

    run(loop_kind, main())


def test_shutdown_keeps_receiving(loop_kind: str) -> None:
    """shutdown: our close frame goes out, and what the peer sends after it still arrives."""

    async def handler(ws: wa.WebSocket) -> None:
        assert await ws.recv() is None  # the client's close
        assert ws.state is State.CLOSE_RECEIVED
        for i in range(3):
            await ws.send(f"late {i}")
        await ws.close(1000, "done")

    async def main() -> None:
        async with wshandle_server(handler) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.shutdown(1000)
                assert ws.state is State.CLOSE_SENT
                with pytest.raises(wshandle.InvalidOperation):
                    await ws.send("no more")
                assert [m async for m in ws] == ["late 0", "late 1", "late 2"]
                assert ws.state is State.CLOSED
                assert ws.close_status == (1000, "done")

    run(loop_kind, main())


def test_shutdown_while_a_recv_waits(loop_kind: str) -> None:
    async def main() -> None:
        async with websockets_server() as url:
            async with wa.connect(url) as ws:
                receiver = asyncio.create_task(ws.recv())
                await until(lambda: ws._rx_pending, "the receive is pending")
                await ws.shutdown(1000, "bye")
                assert await receiver is None  # websockets answered our close
                assert ws.close_status == (1000, "bye")
                assert ws.state is State.CLOSED

    run(loop_kind, main())


def test_close_discards_and_cancels_a_waiting_recv(loop_kind: str) -> None:
    async def handler(ws: wa.WebSocket) -> None:
        assert await ws.recv() is None
        for i in range(5):
            await ws.send(b"x" * 100_000)  # discarded by the client's close
        await ws.close(1000)

    async def main() -> None:
        async with wshandle_server(handler) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                receiver = asyncio.create_task(ws.recv())
                await until(lambda: ws._rx_pending, "the receive is pending")
                await ws.close(1000)
                with pytest.raises(wshandle.Cancelled):
                    await receiver
                assert ws.state is State.CLOSED
                assert ws.close_status == (1000, "")
                with pytest.raises(wshandle.InvalidOperation):
                    await ws.recv()

    run(loop_kind, main())


def test_close_is_bounded_by_close_timeout(loop_kind: str) -> None:
    """A peer that never answers our close frame: close() gives up after close_timeout."""
    answered = asyncio.Event

    async def main() -> None:
        release = asyncio.Event()

        async def silent(ws: wa.WebSocket) -> None:
            await release.wait()  # never reads: our close frame is never answered

        async with wshandle_server(silent) as server:
            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/", close_timeout=0.5)
            t0 = time.monotonic()
            with pytest.raises(wshandle.Timeout) as info:
                await ws.close()
            elapsed = time.monotonic() - t0
            assert 0.45 <= elapsed < 5, elapsed  # the contract bound, generously
            assert "close_timeout" in info.value.detail
            assert ws.state is State.ABORTED
            ws.close_handle()
            release.set()

    del answered
    run(loop_kind, main())


def test_cancelled_recv_loses_nothing(loop_kind: str) -> None:
    """Cancelling a waiting recv, also in the middle of a fragmented message: the next recv
    returns the whole message."""

    async def main() -> None:
        go = asyncio.Event()
        go2 = asyncio.Event()

        async def handler(ws: wa.WebSocket) -> None:
            await go.wait()
            await ws.send("whole")
            await ws.send_fragment(b"first-")
            await go2.wait()
            await ws.send_fragment(b"second", final=True)
            assert await ws.recv() is None
            await ws.close()

        async with wshandle_server(handler) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                # 1. cancelled while nothing had arrived
                t = asyncio.create_task(ws.recv())
                await until(lambda: ws._rx_pending, "the receive is pending")
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
                go.set()
                assert await ws.recv() == "whole"
                # 2. cancelled with the first piece of a message read
                t = asyncio.create_task(ws.recv())
                await until(lambda: ws._rx_parts is not None and ws._rx_pending, "a piece")
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
                with pytest.raises(wshandle.InvalidOperation):
                    await ws.recv_into(bytearray(10))  # recv() holds the first piece
                go2.set()
                assert await ws.recv() == b"first-second"
                # 3. asyncio.timeout around recv: the per-call timeout of asyncio code
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await ws.recv()
                assert ws.state is State.OPEN

    run(loop_kind, main())


def test_cancelled_send_is_written_whole(loop_kind: str) -> None:
    """A send that waits for buffer space (the peer does not read) and is cancelled: the
    message still goes out whole. A fragmented message interrupted so refuses further sends."""

    async def main() -> None:
        reading = asyncio.Event()
        got: List[Any] = []

        async def handler(ws: wa.WebSocket) -> None:
            await reading.wait()
            got.append(await ws.recv())
            got.append(await ws.recv())

        big = bytes(range(256)) * (16 * 4096)  # 16 MiB: more than the sockets hold
        async with wshandle_server(handler) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                t = asyncio.create_task(ws.send(big))
                await until(lambda: ws._drain_waiter is not None, "send waits for space")
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
                reading.set()
                await ws.send("after")  # waits until the big one is mostly written
                await until(lambda: len(got) == 2, "the server got both", limit=10_000_000)
                assert got[0] == big and got[1] == "after"
                # a fragment whose wait is cancelled: the message cannot be finished (the
                # handler has returned: nobody reads)
                t = asyncio.create_task(ws.send_fragment(big))
                await until(lambda: ws._drain_waiter is not None, "fragment waits")
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
                with pytest.raises(wshandle.InvalidOperation) as info:
                    await ws.send_fragment(b"end", final=True)
                assert "interrupted" in info.value.detail
                ws.close_handle()

    run(loop_kind, main())


def test_cancelled_accept_loses_no_client(loop_kind: str) -> None:
    async def main() -> None:
        async with wa.listen("ws://127.0.0.1:0/") as listener:
            t = asyncio.create_task(listener.accept())
            await until(lambda: listener._pending, "the accept is pending")
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            client, server_side = await asyncio.gather(
                wa.connect(f"ws://127.0.0.1:{listener.port}/"), listener.accept()
            )
            await client.send("hi")
            assert await server_side.recv() == "hi"
            second = asyncio.create_task(listener.accept())
            await until(lambda: listener._pending, "the accept is pending")
            with pytest.raises(wshandle.InvalidOperation):
                await listener.accept()  # one at a time
            listener.close()
            with pytest.raises(wshandle.Cancelled):
                await second
            await asyncio.gather(client.close(), server_side.close())
            assert client.close_status == server_side.close_status == (1000, "")
            client.close_handle()
            server_side.close_handle()

    run(loop_kind, main())


def test_receive_timeout_keeps_the_connection(loop_kind: str) -> None:
    async def main() -> None:
        async with echo_server("websockets") as url:
            async with wa.connect(url, receive_timeout=0.2) as ws:
                t0 = time.monotonic()
                with pytest.raises(wshandle.Timeout) as info:
                    await ws.recv()
                assert 0.15 <= time.monotonic() - t0 < 5
                assert "receive_timeout" in info.value.detail
                assert isinstance(info.value, TimeoutError)
                await ws.send("still open")
                assert await ws.recv() == "still open"

    run(loop_kind, main())


def test_listener_receive_timeout_ends_accept(loop_kind: str) -> None:
    async def main() -> None:
        async with wa.listen("ws://127.0.0.1:0/", receive_timeout=0.2) as listener:
            with pytest.raises(wshandle.Timeout):
                await listener.accept()

    run(loop_kind, main())


def test_connect_errors(loop_kind: str) -> None:
    async def main() -> None:
        with pytest.raises(wshandle.InvalidUrl):
            await wa.connect("http://127.0.0.1:1/")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(wshandle.CannotConnect):
            await wa.connect(f"ws://127.0.0.1:{port}/")  # bound, not listening: refused
        s.listen(1)  # accepts TCP, never answers the upgrade
        with pytest.raises(wshandle.Timeout) as info:
            await wa.connect(f"ws://127.0.0.1:{port}/", connect_timeout=0.3)
        assert "connect_timeout" in info.value.detail
        s.close()
        async with wshandle_server(echo, path="/right") as server:
            with pytest.raises(wshandle.ProtocolError) as perr:
                await wa.connect(f"ws://127.0.0.1:{server.port}/wrong")
            assert perr.value.http_status == 404
        with pytest.raises(TypeError):
            await wa.connect("ws://127.0.0.1:1/", receive_timeout="soon")

    run(loop_kind, main())


def test_call_errors(loop_kind: str) -> None:
    async def main() -> None:
        async with echo_server("wshandle") as url:
            ws = await wa.connect(url)
            receiver = asyncio.create_task(ws.recv())
            await until(lambda: ws._rx_pending, "the receive is pending")
            with pytest.raises(wshandle.InvalidOperation):
                await ws.recv()  # a second one
            with pytest.raises(wshandle.InvalidParameter):
                await ws.send(b"\xff", text=True)  # invalid UTF-8
            with pytest.raises(wshandle.InvalidParameter):
                await ws.close(1005, "reason with 1005")
            with pytest.raises(TypeError):
                await ws.send(12)  # type: ignore[arg-type]
            await ws.send("x")
            assert await receiver == "x"
            await ws.close()
            with pytest.raises(wshandle.InvalidOperation):
                await ws.send("closed")
            ws.close_handle()
            await ws.wait_closed()
            with pytest.raises(wshandle.InvalidHandle):
                await ws.send("released")
            assert ws.state is State.CLOSED  # kept after the release

    run(loop_kind, main())


def test_peer_drops_connection(loop_kind: str) -> None:
    async def dropper(ws: wa.WebSocket) -> None:
        ws.close_handle()

    async def main() -> None:
        async with wshandle_server(dropper) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(wshandle.ConnectionLost):
                    await ws.recv()
                assert ws.close_status == (1006, "")
                assert ws.state is State.ABORTED

    run(loop_kind, main())


def test_serve_closes_connections_on_exit(loop_kind: str) -> None:
    """Leaving serve's block sends every open connection 1001; handlers end, the clients see
    the close."""
    ended: List[Any] = []

    async def handler(ws: wa.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)
        ended.append(ws.close_status)

    async def main() -> None:
        async def client(port: int) -> Any:
            async with wa.connect(f"ws://127.0.0.1:{port}/") as c:
                await c.send("ping")
                assert await c.recv() == "ping"
                connected.append(c)
                assert await c.recv() is None  # the server's close: answered on exit
                return c.close_status

        connected: List[Any] = []
        async with wshandle_server(handler) as server:
            clients = [asyncio.create_task(client(server.port)) for _ in range(3)]
            await until(lambda: len(connected) == 3, "three clients echoed")
        assert ended == [(1000, "")] * 3  # each handler saw its client's answer
        assert await asyncio.gather(*clients) == [(1001, "server shutting down")] * 3

    run(loop_kind, main())
