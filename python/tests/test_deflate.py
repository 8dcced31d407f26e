"""permessage-deflate from Python: the keyword arguments, what was agreed, echoes through
wshandle's own listener and through Python `websockets`, and the size limit on inflated
bytes."""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List

import pytest

import wshandle


def echo_one(listener: wshandle.Listener, seen: Dict[str, Any]) -> None:
    """Accepts one connection and echoes until the client closes (a thread's body)."""
    with listener.accept() as ws:
        seen["extensions"] = ws.extensions
        try:
            for msg in ws:
                ws.send(msg)
        except wshandle.ProtocolError as e:
            seen["error"] = e
        if ws.state is not wshandle.State.ABORTED:
            ws.close()


def serve_once(**kwargs: Any) -> tuple:
    listener = wshandle.listen("ws://127.0.0.1:0/", receive_timeout=20, **kwargs)
    seen: Dict[str, Any] = {}
    t = threading.Thread(target=echo_one, args=(listener, seen))
    t.start()
    return listener, t, seen


MESSAGES: List[Any] = [
    json.dumps({"type": "trade", "seq": i, "price": 43000 + i, "symbol": "BTC-USD"})
    for i in range(10)
] + ["", b"", "hi", b"\x00" * (1 << 20), "☃" * 100_000]


@pytest.mark.parametrize(
    "client_kwargs, server_kwargs, agreed",
    [
        ({}, {}, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        (
            {"deflate_context_takeover": False, "deflate_window_bits": 15},
            {"deflate_level": 9},
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
        ),
        (
            {"deflate_window_bits": 9, "deflate_threshold": 0, "deflate_level": 0},
            {"deflate_context_takeover": False, "deflate_threshold": 1000},
            "permessage-deflate; server_max_window_bits=9; server_no_context_takeover; "
            "client_no_context_takeover; client_max_window_bits=12",
        ),
    ],
)
def test_echo_with_compression(client_kwargs: dict, server_kwargs: dict, agreed: str) -> None:
    listener, t, seen = serve_once(permessage_deflate=True, **server_kwargs)
    with listener:
        url = f"ws://127.0.0.1:{listener.port}/"
        with wshandle.connect(url, receive_timeout=20, permessage_deflate=True, **client_kwargs) as ws:
            assert ws.extensions == agreed
            for m in MESSAGES:
                ws.send(m)
                assert ws.recv() == m
            ws.send_fragment("frag")
            ws.send_fragment("ment", final=True)
            assert ws.recv() == "fragment"
            ws.close()
        t.join(20)
    assert seen == {"extensions": agreed}


def test_no_compression_unless_both_sides_want_it() -> None:
    listener, t, seen = serve_once()  # the listener does not accept compression
    with listener:
        with wshandle.connect(
            f"ws://127.0.0.1:{listener.port}/", receive_timeout=20, permessage_deflate=True
        ) as ws:
            assert ws.extensions == ""
            ws.send("plain")
            assert ws.recv() == "plain"
            ws.close()
        t.join(20)
    assert seen == {"extensions": ""}


def test_the_size_limit_counts_inflated_bytes() -> None:
    # 4 MiB of zeros compress to about 4 KiB (one frame); the listener's 1 MiB limit applies
    listener, t, seen = serve_once(permessage_deflate=True, max_message_size=1 << 20)
    with listener:
        with wshandle.connect(
            f"ws://127.0.0.1:{listener.port}/",
            receive_timeout=20,
            permessage_deflate=True,
            deflate_level=9,
        ) as ws:
            ws.send(b"\x00" * (1 << 20))
            assert ws.recv() == b"\x00" * (1 << 20)
            ws.send(b"\x00" * (4 << 20))
            assert ws.recv() is None  # the server's close
            assert ws.close_status == (1009, "")
        t.join(20)
    assert isinstance(seen["error"], wshandle.ProtocolError)


def test_compression_against_python_websockets() -> None:
    websockets_server = pytest.importorskip("websockets.sync.server")
    with websockets_server.serve(
        lambda ws: [ws.send(m) for m in ws], "127.0.0.1", 0, max_size=None
    ) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        with wshandle.connect(
            f"ws://127.0.0.1:{port}/", receive_timeout=20, permessage_deflate=True
        ) as ws:
            assert ws.extensions == (
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
            )
            for m in MESSAGES:
                ws.send(m)
                assert ws.recv() == m
            ws.close()
        server.shutdown()


def test_keyword_argument_checks() -> None:
    with pytest.raises(TypeError):
        wshandle.WebSocket("ws://127.0.0.1:1/", permessage_deflate=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wshandle.WebSocket("ws://127.0.0.1:1/", deflate_level="9")  # type: ignore[arg-type]
    # ranges are the library's: 8-bit windows cannot be compressed with
    for kwargs in ({"deflate_window_bits": 8}, {"deflate_level": 10}, {"deflate_window_bits": 16}):
        with pytest.raises(wshandle.InvalidParameter):
            wshandle.WebSocket("ws://127.0.0.1:1/", **kwargs)
    ws = wshandle.WebSocket("ws://127.0.0.1:1/", permessage_deflate=True)
    with pytest.raises(wshandle.IncorrectHandleState):
        ws.extensions  # known only after connect
    ws.close_handle()
