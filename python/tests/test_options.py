"""Options as keyword arguments and properties, timeouts in seconds. Timing is asserted only for
the contract's timeouts, with generous bounds."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import EVENT_WAIT, echo

import wshandle
from wshandle import State


def test_defaults_and_setters(echo_server) -> None:
    ws = wshandle.WebSocket(echo_server.url)
    assert ws.state is State.NONE
    assert ws.connect_timeout == 60.0
    assert ws.send_timeout == 30.0
    assert ws.receive_timeout is None
    assert ws.close_timeout == 10.0
    assert ws.keepalive_interval == 30.0
    assert ws.keepalive_timeout is None
    assert ws.max_message_size is None
    ws.receive_timeout = 1.5
    ws.close_timeout = 0.0001  # rounds up to 1 ms, never to "none"
    ws.keepalive_interval = None
    assert (ws.receive_timeout, ws.close_timeout, ws.keepalive_interval) == (1.5, 0.001, None)
    ws.connect()
    ws.receive_timeout = None  # timeouts may change in any state
    assert ws.receive_timeout is None
    ws.close_handle()


def test_keyword_options_reach_the_handle(echo_server) -> None:
    with wshandle.connect(
        echo_server.url,
        connect_timeout=5,
        send_timeout=6,
        receive_timeout=7,
        close_timeout=8,
        keepalive_interval=9,
        keepalive_timeout=11,
        max_message_size=1 << 20,
    ) as ws:
        assert ws.connect_timeout == 5.0
        assert ws.send_timeout == 6.0
        assert ws.receive_timeout == 7.0
        assert ws.close_timeout == 8.0
        assert ws.keepalive_interval == 9.0
        assert ws.keepalive_timeout == 11.0
        assert ws.max_message_size == 1 << 20
        assert ws.http_status == 101
        assert ws.local_port > 0


def test_receive_timeout_is_not_fatal(make_server) -> None:
    def reply_on_request(ws: wshandle.WebSocket) -> None:
        assert ws.recv() == "now"
        ws.send("here")
        echo(ws)

    server = make_server(reply_on_request)
    with wshandle.connect(server.url, receive_timeout=0.2) as ws:
        t0 = time.monotonic()
        with pytest.raises(wshandle.Timeout):
            ws.recv()
        elapsed = time.monotonic() - t0
        assert 0.15 <= elapsed < 5.0
        assert ws.state is State.OPEN
        ws.send("now")
        ws.receive_timeout = EVENT_WAIT
        assert ws.recv() == "here"


def test_receive_timeout_mid_message_loses_nothing(make_server) -> None:
    go_on = threading.Event()

    def slow_fragments(ws: wshandle.WebSocket) -> None:
        ws.send_fragment(b"a" * 100_000)  # more than recv's 64 KiB buffer
        go_on.wait(EVENT_WAIT)
        ws.send_fragment(b"b", final=True)
        echo(ws)

    server = make_server(slow_fragments)
    with wshandle.connect(server.url, receive_timeout=0.2) as ws:
        with pytest.raises(wshandle.Timeout):
            ws.recv()  # read the first fragment, then timed out waiting for the rest
        with pytest.raises(wshandle.InvalidOperation, match="call recv"):
            ws.recv_into(bytearray(10))  # would hand out the rest without the start
        go_on.set()
        ws.receive_timeout = EVENT_WAIT
        assert ws.recv() == b"a" * 100_000 + b"b"


def test_close_timeout_against_a_silent_peer(make_peer) -> None:
    peer = make_peer("raw_server.py", "--mode", "silent")
    ws = wshandle.connect(peer.url, close_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(wshandle.Timeout):
        ws.close()
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 5.0  # "never longer than the close timeout plus scheduling noise"
    assert ws.state is State.ABORTED
    assert ws.close_status == (1006, "")
    ws.close_handle()


def test_connect_timeout_against_a_peer_that_never_answers(make_peer) -> None:
    peer = make_peer("raw_server.py", "--mode", "no-upgrade")
    t0 = time.monotonic()
    with pytest.raises(wshandle.Timeout):
        wshandle.connect(peer.url, connect_timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 5.0


def test_send_timeout_aborts(make_peer) -> None:
    peer = make_peer("raw_server.py", "--mode", "stall")
    ws = wshandle.connect(peer.url, send_timeout=0.3)
    big = bytes(4 << 20)
    with pytest.raises(wshandle.Timeout):
        for _ in range(1000):  # the socket buffers fill up within a few messages
            ws.send(big)
    assert ws.state is State.ABORTED
    ws.close_handle()


def test_keepalive_timeout_detects_a_dead_peer(make_server) -> None:
    stop = threading.Event()

    def never_reads(ws: wshandle.WebSocket) -> None:
        stop.wait(EVENT_WAIT)  # pings go unanswered: pongs are sent by recv

    server = make_server(never_reads)
    try:
        ws = wshandle.connect(server.url, keepalive_interval=0.1, keepalive_timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(wshandle.Timeout):
            ws.recv()
        assert 0.25 <= time.monotonic() - t0 < 5.0
        assert ws.state is State.ABORTED
        ws.close_handle()
    finally:
        stop.set()


def test_keepalive_pings_are_answered_by_a_reading_peer(echo_server) -> None:
    with wshandle.connect(
        echo_server.url, keepalive_interval=0.05, keepalive_timeout=2, receive_timeout=0.5
    ) as ws:
        with pytest.raises(wshandle.Timeout):
            ws.recv()  # the receive timeout, not the keepalive one: the peer answered
        assert ws.state is State.OPEN


def test_max_message_size(make_server) -> None:
    def send_big(ws: wshandle.WebSocket) -> object:
        ws.send(b"x" * 100)
        assert ws.recv() is None  # the client's close frame
        return ws.close_status

    server = make_server(send_big)
    with wshandle.connect(server.url, max_message_size=10, receive_timeout=EVENT_WAIT) as ws:
        with pytest.raises(wshandle.ProtocolError):
            ws.recv()
        assert ws.state is State.ABORTED
    assert server.result()[0] == 1009


def test_listener_max_message_size_and_1009(make_server) -> None:
    server = make_server(echo, max_message_size=10)
    with wshandle.connect(server.url, receive_timeout=EVENT_WAIT) as ws:
        ws.send(b"y" * 100)
        assert ws.recv() is None
        assert ws.close_status == (1009, ws.close_status[1])


def test_subprotocols(make_server) -> None:
    server = make_server(subprotocols=["chat.v2", "chat"])
    with wshandle.connect(server.url, subprotocols=["chat", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"  # the listener's preference wins
    with wshandle.connect(server.url, subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
    with wshandle.connect(server.url) as ws:
        assert ws.subprotocol is None


def test_request_headers_reach_websockets(make_peer) -> None:
    peer = make_peer("ws_server.py", "--mode", "echo")
    with wshandle.connect(
        peer.url + "path?q=1", headers={"X-Token": "abc", "Origin": "http://example"}
    ):
        pass
    request = peer.event("request")
    assert request["path"] == "/path?q=1"
    assert request["headers"]["x-token"] == "abc"
    assert request["headers"]["origin"] == "http://example"
    with wshandle.connect(peer.url, headers=[("X-Twice", "1"), ("X-Twice", "2")]):
        pass
    assert peer.event("request")["headers"]["x-twice"] == "1, 2"


def test_accept_timeout_and_inherited_timeouts() -> None:
    with wshandle.listen("ws://127.0.0.1:0/", receive_timeout=0.2, close_timeout=3) as listener:
        t0 = time.monotonic()
        with pytest.raises(wshandle.Timeout):
            listener.accept()
        assert 0.15 <= time.monotonic() - t0 < 5.0
        assert listener.receive_timeout == 0.2
        client = wshandle.WebSocket(f"ws://127.0.0.1:{listener.port}/")
        connecting = threading.Thread(target=client.connect)
        connecting.start()
        listener.receive_timeout = EVENT_WAIT
        server_side = listener.accept()
        try:
            connecting.join()
            assert server_side.close_timeout == 3.0
            assert server_side.local_port == listener.port
            assert client.state is State.OPEN
        finally:
            server_side.close_handle()
            client.close_handle()


def test_handshake_headers_both_ways(make_server) -> None:
    def request_headers(ws: wshandle.WebSocket) -> object:
        seen = (ws.handshake_header("origin"), ws.handshake_header("X-Absent"))
        echo(ws)
        return seen

    server = make_server(request_headers)
    with wshandle.connect(server.url, headers={"Origin": "http://example"}) as ws:
        assert ws.handshake_header("UPGRADE").lower() == "websocket"  # the server's response
        assert ws.handshake_header("X-Not-There") is None
    assert server.result() == ("http://example", None)  # the client's request
