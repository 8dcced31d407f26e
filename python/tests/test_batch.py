"""`WebSocket.send_many`: one ws_send_batch call, echoed by wshandle's own server and by Python
`websockets`."""

from __future__ import annotations

import pytest

import wshandle


def test_send_many_sends_each_message_whole_and_in_order(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send_many(["héllo", b"\x00\x01", "", b"", bytearray(b"ba"), memoryview(b"xmvx")[1:3]])
        assert [ws.recv() for _ in range(6)] == ["héllo", b"\x00\x01", "", b"", b"ba", b"mv"]
        many = [f"m{i}" for i in range(500)]
        ws.send_many(iter(many))  # any iterable
        assert [ws.recv() for _ in range(500)] == many
        ws.send_many([])
        ws.send("after")
        assert ws.recv() == "after"


def test_send_many_is_all_or_nothing(echo_url: str) -> None:
    with wshandle.connect(echo_url, receive_timeout=20) as ws:
        ws.send_fragment("ab")  # a text message is open
        with pytest.raises(wshandle.InvalidParameter) as e:
            ws.send_many([b"binary inside a text message", "c"])
        assert e.value.code == wshandle.ErrorCode.INVALID_PARAMETER
        assert "element 0" in str(e.value)
        with pytest.raises(TypeError):
            ws.send_many(["c", 5])  # type: ignore[list-item]
        ws.send_many(["c", b"d"])  # ends the open message, then a binary one
        assert ws.recv() == "abc"
        assert ws.recv() == b"d"
        ws.close()
        with pytest.raises(wshandle.InvalidOperation):
            ws.send_many(["late"])
