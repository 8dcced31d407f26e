"""Every kind of message, echoed by wshandle's own server and by Python `websockets`."""

from __future__ import annotations

import array
import os

import pytest

import wshandle
from wshandle import BufferType


def test_text_and_binary_keep_their_type(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01\x02")
        assert ws.recv() == b"\x00\x01\x02"
        ws.send("")
        assert ws.recv() == ""
        ws.send(b"")
        assert ws.recv() == b""
        ws.send("grüße, 世界, 🎉")
        assert ws.recv() == "grüße, 世界, 🎉"


def test_bytes_like_and_explicit_types(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send(bytearray(b"from a bytearray"))
        assert ws.recv() == b"from a bytearray"
        ws.send(memoryview(b"xxfrom a memoryviewxx")[2:-2])
        assert ws.recv() == b"from a memoryview"
        ws.send(array.array("I", [1, 2, 3]))
        assert ws.recv() == array.array("I", [1, 2, 3]).tobytes()
        ws.send("é".encode(), text=True)  # UTF-8 bytes sent as text
        assert ws.recv() == "é"
        ws.send("as binary", text=False)
        assert ws.recv() == b"as binary"
        ws.send(memoryview(bytearray(b"text view")), text=True)
        assert ws.recv() == "text view"


def test_fragmented_messages(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send_fragment("frag")
        ws.send_fragment("ment")
        ws.send_fragment("ed", final=True)
        assert ws.recv() == "fragmented"
        ws.send_fragment(b"\xde\xad")
        ws.send_fragment(bytearray(b"\xbe\xef"), final=True)
        assert ws.recv() == b"\xde\xad\xbe\xef"
        # A text message may be split inside a code point when sent as UTF-8 bytes.
        snowman = "☃".encode()  # 3 bytes
        ws.send_fragment(b"a" + snowman[:1], text=True)
        ws.send_fragment(snowman[1:2], text=True)
        ws.send_fragment(snowman[2:] + b"z", final=True, text=True)
        assert ws.recv() == "a☃z"
        # An empty final piece ends the message.
        ws.send_fragment(b"only")
        ws.send_fragment(b"", final=True)
        assert ws.recv() == b"only"


def test_large_message_whole_and_in_pieces(echo_url: str) -> None:
    big = os.urandom(1 << 20)
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send(big)
        assert ws.recv() == big  # more than the 64 KiB receive buffer: joined pieces

        ws.send(big)
        buf = bytearray(100_000)
        got = bytearray()
        while True:
            n, kind = ws.recv_into(buf)
            assert kind in (BufferType.BINARY_FRAGMENT, BufferType.BINARY_MESSAGE)
            got += buf[:n]
            if kind is BufferType.BINARY_MESSAGE:
                break
        assert got == big

        text = "ü" * 300_000  # 600,000 bytes of UTF-8
        ws.send(text)
        assert ws.recv() == text


def test_recv_into_other_buffers(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send("0123456789")
        target = bytearray(20)
        n, kind = ws.recv_into(memoryview(target)[5:])
        assert (n, kind) == (10, BufferType.UTF8_MESSAGE)
        assert target[5:15] == b"0123456789"

        ws.send(b"\x01\x00\x00\x00\x02\x00\x00\x00")
        ints = array.array("I", [0, 0, 0])
        n, kind = ws.recv_into(ints)
        assert (n, kind) == (8, BufferType.BINARY_MESSAGE)
        assert ints.tobytes()[:8] == b"\x01\x00\x00\x00\x02\x00\x00\x00"

        ws.send(b"")
        n, kind = ws.recv_into(bytearray(1))
        assert (n, kind) == (0, BufferType.BINARY_MESSAGE)


def test_iteration_ends_at_the_close(make_server) -> None:
    def talk_then_close(ws: wshandle.WebSocket) -> None:
        for i in range(3):
            ws.send(f"message {i}")
        ws.send(b"last")
        ws.close(1000, "that's all")

    server = make_server(talk_then_close)
    with wshandle.connect(server.url, receive_timeout=20) as ws:
        assert list(ws) == ["message 0", "message 1", "message 2", b"last"]
        assert ws.close_status == (1000, "that's all")
        assert ws.state == wshandle.State.CLOSE_RECEIVED
    assert server.result() is None


def test_close_code_and_reason_reach_websockets(make_peer) -> None:
    peer = make_peer("ws_server.py", "--mode", "echo")
    with wshandle.connect(peer.url, receive_timeout=20) as ws:
        ws.send("x")
        assert ws.recv() == "x"
        ws.close(4000, "done here")
        assert ws.state == wshandle.State.CLOSED
        assert ws.close_status[0] == 4000
    closed = peer.event("closed")
    assert (closed["rcvd_code"], closed["rcvd_reason"]) == (4000, "done here")


@pytest.mark.parametrize("peer_kind", ["websockets", "raw"])
def test_server_closes_first(make_peer, peer_kind: str) -> None:
    script = "ws_server.py" if peer_kind == "websockets" else "raw_server.py"
    peer = make_peer(script, "--mode", "server-close", "--code", "1001", "--reason", "going away")
    with wshandle.connect(peer.url, receive_timeout=20) as ws:
        assert ws.recv() is None
        assert ws.state == wshandle.State.CLOSE_RECEIVED
        assert ws.close_status == (1001, "going away")
        ws.send("last words are allowed in CLOSE_RECEIVED")
        ws.shutdown(1000, "bye")
        assert ws.state == wshandle.State.CLOSED
    if peer_kind == "websockets":
        assert peer.event("closed")["rcvd_code"] == 1000
    else:
        assert peer.event("close")["code"] == 1000


def test_pings_are_answered(make_peer) -> None:
    peer = make_peer("ws_server.py", "--mode", "ping")
    with wshandle.connect(peer.url, receive_timeout=20) as ws:
        ws.send("after the ping")
        assert ws.recv() == "after the ping"  # the pong went out while recv waited
    assert peer.event("pong")["ok"] is True
