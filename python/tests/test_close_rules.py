"""The close rules: which call is allowed in which state (README's table), call by call."""

from __future__ import annotations

from typing import Callable, Dict, Iterator

import pytest
from helpers import Server, drop, echo, server_close

import wshandle
from wshandle import State

# Calls that are refused with WS_ERROR_INVALID_OPERATION, per state; each must change nothing.
REFUSED = {
    State.NONE: ["send", "send_fragment", "recv", "recv_into", "shutdown", "close"],
    State.OPEN: ["connect"],
    State.CLOSE_SENT: ["connect", "send", "send_fragment", "shutdown"],
    State.CLOSE_RECEIVED: ["connect", "recv", "recv_into"],
    State.CLOSED: ["connect", "send", "send_fragment", "recv", "recv_into", "shutdown"],
    State.ABORTED: ["connect", "send", "send_fragment", "recv", "recv_into", "shutdown", "close"],
}

CALLS: Dict[str, Callable[[wshandle.WebSocket], object]] = {
    "connect": lambda ws: ws.connect(),
    "send": lambda ws: ws.send("x"),
    "send_fragment": lambda ws: ws.send_fragment(b"x"),
    "recv": lambda ws: ws.recv(),
    "recv_into": lambda ws: ws.recv_into(bytearray(16)),
    "shutdown": lambda ws: ws.shutdown(),
    "close": lambda ws: ws.close(),
}


@pytest.fixture
def in_state(make_server: Callable[..., Server]) -> Iterator[Callable[[State], wshandle.WebSocket]]:
    """in_state(State.X) -> a client WebSocket in that state."""
    opened = []

    def make(state: State) -> wshandle.WebSocket:
        if state is State.NONE:
            ws = wshandle.WebSocket(make_server(echo).url, receive_timeout=20)
        elif state is State.CLOSE_RECEIVED:
            ws = wshandle.connect(make_server(server_close(1001, "bye")).url, receive_timeout=20)
            assert ws.recv() is None
        elif state is State.ABORTED:
            ws = wshandle.connect(make_server(drop).url, receive_timeout=20)
            with pytest.raises(wshandle.ConnectionLost):
                ws.recv()
        else:
            ws = wshandle.connect(make_server(echo).url, receive_timeout=20)
            if state is State.CLOSE_SENT:
                ws.shutdown()
            elif state is State.CLOSED:
                ws.close()
        opened.append(ws)
        assert ws.state is state
        return ws

    yield make
    for ws in opened:
        ws.close_handle()


CASES = [(state, call) for state, calls in REFUSED.items() for call in calls]


@pytest.mark.parametrize("state,call", CASES, ids=[f"{s.name}-{c}" for s, c in CASES])
def test_refused_call_changes_nothing(in_state, state: State, call: str) -> None:
    ws = in_state(state)
    before = ws.close_status
    with pytest.raises(wshandle.InvalidOperation) as info:
        CALLS[call](ws)
    assert info.value.code == wshandle.ErrorCode.INVALID_OPERATION
    assert info.value.name == "WS_ERROR_INVALID_OPERATION"
    assert info.value.detail  # the library said why
    assert ws.state is state
    assert ws.close_status == before


def test_close_status_in_each_state(in_state) -> None:
    assert in_state(State.NONE).close_status is None
    assert in_state(State.OPEN).close_status is None
    assert in_state(State.CLOSE_SENT).close_status is None
    assert in_state(State.CLOSE_RECEIVED).close_status == (1001, "bye")
    assert in_state(State.CLOSED).close_status == (1000, "")  # the echo server answers 1000
    assert in_state(State.ABORTED).close_status == (1006, "")


def test_open_shutdown_then_receive_until_close(make_server) -> None:
    server = make_server(echo)
    ws = wshandle.connect(server.url, receive_timeout=20)
    ws.send("before")
    ws.shutdown(1000, "done sending")
    assert ws.state is State.CLOSE_SENT
    assert ws.recv() == "before"  # still delivered after our close frame
    assert ws.recv() is None
    assert ws.state is State.CLOSED
    assert ws.close_status == (1000, "")
    ws.close()  # CLOSED: nothing to do
    ws.close_handle()
    assert server.result() == {"echoed": 1, "client_close": (1000, "done sending")}


def test_close_in_close_sent_waits_for_the_peer(make_server) -> None:
    server = make_server(echo)
    with wshandle.connect(server.url, receive_timeout=20) as ws:
        ws.send("discarded by close")
        ws.shutdown()
        ws.close()  # reads and discards the echo, then the close frame
        assert ws.state is State.CLOSED
        assert ws.close_status == (1000, "")


@pytest.mark.parametrize("answer", ["shutdown", "close"])
def test_close_received_answered(make_server, answer: str) -> None:
    server = make_server(server_close(1001, "bye"))
    with wshandle.connect(server.url, receive_timeout=20) as ws:
        assert ws.recv() is None
        assert ws.state is State.CLOSE_RECEIVED
        ws.send("reply after the peer's close")
        getattr(ws, answer)(1000, "ok")
        assert ws.state is State.CLOSED
        assert ws.close_status == (1001, "bye")
    result = server.result()
    assert result["received"] == ["reply after the peer's close"]
    assert result["client_close"] == (1000, "ok")


def test_open_close_full_handshake(make_server) -> None:
    server = make_server(echo)
    ws = wshandle.connect(server.url, receive_timeout=20)
    ws.close(1001, "leaving")
    assert ws.state is State.CLOSED
    with pytest.raises(wshandle.InvalidOperation):
        ws.recv()  # only close_status, state and close_handle remain useful
    ws.close_handle()
    assert server.result()["client_close"] == (1001, "leaving")


def test_context_manager_closes_and_releases(make_server) -> None:
    server = make_server(echo)
    with wshandle.connect(server.url) as ws:
        ws.send("x")
    assert ws.released
    assert server.result() == {"echoed": 1, "client_close": (1000, "")}
    # the last state and close status stay readable (as websockets keeps close_code) ...
    assert ws.state is wshandle.State.CLOSED
    assert ws.close_status == (1000, "")
    # ... while the calls that need the handle say it is gone
    with pytest.raises(wshandle.InvalidHandle):
        ws.send("late")


def test_close_handle_of_an_open_connection_keeps_aborted(make_server) -> None:
    server = make_server(echo)
    ws = wshandle.connect(server.url)
    assert ws.close_status is None
    ws.close_handle()
    assert ws.state is wshandle.State.ABORTED
    assert ws.close_status == (1006, "")
    assert isinstance(server.result(), wshandle.ConnectionLost)


def test_context_manager_on_error_closes_with_1011(make_server) -> None:
    server = make_server(echo)
    with pytest.raises(KeyError):
        with wshandle.connect(server.url):
            raise KeyError("boom")
    assert server.result()["client_close"] == (1011, "")


@pytest.mark.parametrize("peer_mode", ["drop-fin", "drop-rst"])
def test_peer_drops_tcp(make_peer, peer_mode: str) -> None:
    peer = make_peer("raw_server.py", "--mode", peer_mode)
    with wshandle.connect(peer.url, receive_timeout=20) as ws:
        ws.send("first")
        with pytest.raises(wshandle.ConnectionLost) as info:
            while True:
                ws.recv()
        assert isinstance(info.value, ConnectionError)
        assert ws.state is State.ABORTED
        assert ws.close_status == (1006, "")


def test_protocol_violation(make_peer) -> None:
    peer = make_peer("raw_server.py", "--mode", "invalid-utf8")
    with wshandle.connect(peer.url, receive_timeout=20) as ws:
        with pytest.raises(wshandle.ProtocolError):
            ws.recv()
        assert ws.state is State.ABORTED
    assert peer.event("close")["code"] == 1007  # it was told why


ALL_CALLS: Dict[str, Callable[[wshandle.WebSocket], object]] = dict(
    CALLS,
    subprotocol=lambda ws: ws.subprotocol,
    receive_timeout=lambda ws: ws.receive_timeout,
    set_receive_timeout=lambda ws: setattr(ws, "receive_timeout", 1.0),
)


@pytest.mark.parametrize("call", sorted(ALL_CALLS))
def test_every_call_after_close_handle_is_invalid_handle(make_server, call: str) -> None:
    """All but `state` and `close_status`, which keep their last values."""
    ws = wshandle.connect(make_server(echo).url)
    ws.close_handle()
    ws.close_handle()  # idempotent in Python
    with pytest.raises(wshandle.InvalidHandle) as info:
        ALL_CALLS[call](ws)
    assert info.value.code == 6


def test_listener_calls_after_close(make_server) -> None:
    listener = wshandle.listen("ws://127.0.0.1:0/")
    listener.close()
    with pytest.raises(wshandle.InvalidHandle):
        listener.accept()
    with pytest.raises(wshandle.InvalidHandle):
        listener.port
    assert "released" in repr(listener)
