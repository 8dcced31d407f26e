"""Threads really overlap: ctypes releases the GIL, and the library's per-connection rules
(one receiving and one sending call at a time) hold from Python. A thread is known to be
blocked inside the library when /proc says it sits in poll (helpers.wait_blocked)."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import EVENT_WAIT, Worker, echo, spawn_blocked

import wshandle
from wshandle import State


def count_then_reply(n: int):
    """Receives n messages, then sends "done" and echoes until the close."""

    def handler(ws: wshandle.WebSocket) -> int:
        for _ in range(n):
            assert ws.recv() is not None
        ws.send("done")
        return echo(ws)["echoed"]

    return handler


def test_blocked_receiver_does_not_stall_the_sender(make_server) -> None:
    n = 2000
    server = make_server(count_then_reply(n))
    with wshandle.connect(server.url, receive_timeout=EVENT_WAIT) as ws:
        receiver = spawn_blocked(ws.recv, "receiver")
        for i in range(n):  # this thread runs Python and sends while the other waits in C
            ws.send(b"%d" % i)
        # All sent while the receiver is still inside ws_receive: the server has not
        # answered yet, because it answers only after the last of these messages.
        assert receiver.join() == "done"


def test_gil_is_released_while_blocked_in_recv(make_server) -> None:
    server = make_server(count_then_reply(1))
    with wshandle.connect(server.url, receive_timeout=EVENT_WAIT) as ws:
        receiver = spawn_blocked(ws.recv, "receiver")
        # A pure-Python loop makes progress while the receiver is blocked in C.
        spins = sum(1 for _ in range(200_000))
        assert spins == 200_000 and not receiver.done.is_set()
        ws.send("go")
        assert receiver.join() == "done"


def test_close_from_another_thread_unblocks_recv_promptly(echo_server) -> None:
    ws = wshandle.connect(echo_server.url)
    receiver = spawn_blocked(ws.recv, "receiver")
    t0 = time.monotonic()
    ws.close(1000, "bye")
    err = receiver.exception()
    assert isinstance(err, wshandle.Cancelled)
    assert err.code == wshandle.ErrorCode.OPERATION_CANCELLED
    # API.md: the blocked receive returns "promptly"; the bound here is generous.
    assert receiver.ended_at - t0 < 2.0
    assert ws.state is State.CLOSED
    with pytest.raises(wshandle.InvalidOperation):
        ws.recv()  # after ws_close: refused
    ws.close_handle()
    assert echo_server.result()["client_close"] == (1000, "bye")


def test_close_handle_cancels_blocked_recv_within_100ms_contract(echo_server) -> None:
    ws = wshandle.connect(echo_server.url)
    receiver = spawn_blocked(ws.recv, "receiver")
    t0 = time.monotonic()
    ws.close_handle()
    assert isinstance(receiver.exception(), wshandle.Cancelled)
    assert receiver.ended_at - t0 < 1.0  # contract: 100 ms; generous bound
    with pytest.raises(wshandle.InvalidHandle):
        ws.recv()


def test_shutdown_lets_a_blocked_recv_carry_on(make_server) -> None:
    def last_words(ws: wshandle.WebSocket) -> None:
        assert ws.recv() is None  # the client's close
        ws.send("after your close")
        ws.close()

    server = make_server(last_words)
    with wshandle.connect(server.url, receive_timeout=EVENT_WAIT) as ws:
        receiver = spawn_blocked(lambda: list(ws), "receiver")
        ws.shutdown()
        assert receiver.join() == ["after your close"]
        assert ws.state is State.CLOSED


def test_second_recv_is_refused_while_one_is_blocked(echo_server) -> None:
    with wshandle.connect(echo_server.url, receive_timeout=EVENT_WAIT) as ws:
        receiver = spawn_blocked(ws.recv, "receiver")
        with pytest.raises(wshandle.InvalidOperation):
            ws.recv()
        with pytest.raises(wshandle.InvalidOperation):
            ws.recv_into(bytearray(10))
        ws.send("still fine")
        assert receiver.join() == "still fine"


def test_second_send_is_refused_while_one_is_blocked(make_server) -> None:
    stop = threading.Event()

    def mute(ws: wshandle.WebSocket) -> None:
        stop.wait(EVENT_WAIT * 3)  # never reads: the client's sends fill the socket buffers

    server = make_server(mute)
    ws = wshandle.connect(server.url, send_timeout=EVENT_WAIT * 3)
    big = bytes(4 << 20)

    def send_forever() -> None:
        while True:
            ws.send(big)

    sender = spawn_blocked(send_forever, "sender")  # blocked in poll for writability
    with pytest.raises(wshandle.InvalidOperation):
        ws.send("x")
    with pytest.raises(wshandle.InvalidOperation):
        ws.shutdown()
    assert ws.state is State.OPEN
    ws.close_handle()
    assert isinstance(sender.exception(), wshandle.Cancelled)
    stop.set()


def test_listener_close_cancels_accept_and_second_accept_is_refused() -> None:
    listener = wshandle.listen("ws://127.0.0.1:0/")
    acceptor = spawn_blocked(listener.accept, "acceptor")
    with pytest.raises(wshandle.InvalidOperation):
        listener.accept()
    t0 = time.monotonic()
    listener.close()
    assert isinstance(acceptor.exception(), wshandle.Cancelled)
    assert acceptor.ended_at - t0 < 1.0  # contract: 100 ms; generous bound


def test_many_threads_many_connections(make_server) -> None:
    server = make_server(echo)

    def client(i: int) -> int:
        with wshandle.connect(server.url, receive_timeout=EVENT_WAIT) as ws:
            for j in range(50):
                ws.send(f"{i}:{j}")
                assert ws.recv() == f"{i}:{j}"
        return i

    workers = [Worker(lambda i=i: client(i), f"client-{i}") for i in range(8)]
    assert sorted(w.join() for w in workers) == list(range(8))


def test_close_handle_cancels_a_blocked_close_and_recv_during_close_is_refused(make_peer) -> None:
    peer = make_peer("raw_server.py", "--mode", "silent")  # never answers our close frame
    ws = wshandle.connect(peer.url, close_timeout=EVENT_WAIT * 3)
    closer = spawn_blocked(ws.close, "closer")  # waiting for the peer's close frame
    with pytest.raises(wshandle.InvalidOperation):
        ws.recv()  # a receive started while ws_close runs
    with pytest.raises(wshandle.InvalidOperation):
        ws.shutdown()  # another sending call
    t0 = time.monotonic()
    ws.close_handle()
    assert isinstance(closer.exception(), wshandle.Cancelled)
    assert closer.ended_at - t0 < 1.0  # contract: 100 ms; generous bound
