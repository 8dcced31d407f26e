"""Every wrong call raises the documented exception: TypeError/ValueError from Python before any
C call, the WsError subclass for the library's result code otherwise."""

from __future__ import annotations

import pickle
import socket

import pytest

import wshandle
from wshandle import ErrorCode, State


@pytest.fixture
def ws(echo_server):
    with wshandle.connect(echo_server.url, receive_timeout=20) as ws:
        yield ws


# ---- the exception classes ------------------------------------------------------------


def test_exception_hierarchy() -> None:
    assert issubclass(wshandle.Timeout, wshandle.WsError)
    assert issubclass(wshandle.Timeout, TimeoutError)
    assert issubclass(wshandle.ConnectionLost, ConnectionError)
    assert issubclass(wshandle.CannotConnect, ConnectionError)
    assert issubclass(wshandle.InvalidParameter, ValueError)
    assert issubclass(wshandle.InvalidUrl, ValueError)
    assert issubclass(wshandle.IncorrectHandleState, wshandle.InvalidOperation)
    for cls in (
        wshandle.InvalidOperation,
        wshandle.Cancelled,
        wshandle.ProtocolError,
        wshandle.InvalidHandle,
        wshandle.InvalidOption,
    ):
        assert issubclass(cls, wshandle.WsError)


def test_error_carries_code_name_and_detail() -> None:
    with pytest.raises(wshandle.InvalidUrl) as info:
        wshandle.connect("ws://exa mple/")
    e = info.value
    assert e.code == ErrorCode.INVALID_URL == 12005
    assert e.name == "WS_ERROR_INVALID_URL"
    assert e.detail and e.detail in str(e)
    assert str(e).startswith("WS_ERROR_INVALID_URL (12005)")
    again = pickle.loads(pickle.dumps(e))
    assert (type(again), again.code, again.detail) == (type(e), e.code, e.detail)


def test_timeout_is_a_builtin_timeout_error_with_its_own_fields(echo_server) -> None:
    with wshandle.connect(echo_server.url, receive_timeout=0.05) as ws:
        with pytest.raises(TimeoutError) as info:
            ws.recv()
    assert isinstance(info.value, wshandle.Timeout)
    assert info.value.code == 12002 and info.value.name == "WS_ERROR_TIMEOUT"
    assert info.value.errno is None  # not mistaken for an OS errno


def test_error_names() -> None:
    assert wshandle.error_name(12002) == "WS_ERROR_TIMEOUT"
    assert wshandle.error_name(0) == "WS_OK"
    assert wshandle.error_name(424242) == "WS_ERROR_UNKNOWN"
    for code in ErrorCode:
        assert wshandle.error_name(code) == ("WS_OK" if code == 0 else f"WS_ERROR_{code.name}")


# ---- wrong types and values: Python errors before any C call ----------------------------


@pytest.mark.parametrize(
    "call,exc",
    [
        (lambda ws: ws.send(123), TypeError),
        (lambda ws: ws.send(None), TypeError),
        (lambda ws: ws.send(["list"]), TypeError),
        (lambda ws: ws.send("\ud800"), UnicodeEncodeError),  # a lone surrogate is no UTF-8
        (lambda ws: ws.send_fragment(1.5), TypeError),
        (lambda ws: ws.send(memoryview(b"abcdef")[::2]), ValueError),  # not contiguous
        (lambda ws: ws.recv_into(b"read-only"), TypeError),
        (lambda ws: ws.recv_into(memoryview(b"read-only")), TypeError),
        (lambda ws: ws.recv_into("str"), TypeError),
        (lambda ws: ws.recv_into(bytearray()), ValueError),
        (lambda ws: ws.recv_into(memoryview(bytearray(4))[::2]), ValueError),
        (lambda ws: ws.close("1000"), TypeError),
        (lambda ws: ws.close(True), TypeError),
        (lambda ws: ws.close(70000), ValueError),
        (lambda ws: ws.close(-1), ValueError),
        (lambda ws: ws.close(1000, 42), TypeError),
        (lambda ws: ws.shutdown(1000.0), TypeError),
        (lambda ws: setattr(ws, "receive_timeout", "5"), TypeError),
        (lambda ws: setattr(ws, "receive_timeout", -1), ValueError),
        (lambda ws: setattr(ws, "receive_timeout", 0), ValueError),
        (lambda ws: setattr(ws, "receive_timeout", float("nan")), ValueError),
        (lambda ws: setattr(ws, "receive_timeout", float("inf")), ValueError),
        (lambda ws: setattr(ws, "receive_timeout", 5e6), ValueError),  # > u32 ms
    ],
)
def test_wrong_python_arguments(ws, call, exc) -> None:
    with pytest.raises(exc):
        call(ws)
    assert ws.state is State.OPEN  # nothing happened
    ws.send("still usable")
    assert ws.recv() == "still usable"


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        ({"subprotocols": "chat"}, TypeError),  # a bare string, not a list
        ({"subprotocols": [1]}, TypeError),
        ({"subprotocols": ["a,b"]}, ValueError),
        ({"headers": "X-A: 1"}, TypeError),
        ({"headers": [("X-A",)]}, TypeError),
        ({"headers": {"X-A": 1}}, TypeError),
        ({"headers": {"X-A": "a\0b"}}, ValueError),
        ({"connect_timeout": -5}, ValueError),
        ({"close_timeout": "10"}, TypeError),
        ({"max_message_size": 0}, ValueError),
        ({"max_message_size": 1.5}, TypeError),
        ({"tls_insecure_skip_verify": 1}, TypeError),
    ],
)
def test_wrong_connect_arguments(echo_server, kwargs, exc) -> None:
    with pytest.raises(exc):
        wshandle.connect(echo_server.url, **kwargs)


@pytest.mark.parametrize(
    "url,exc", [(b"ws://127.0.0.1/", None), (123, TypeError), ("ws://a\0b/", ValueError)]
)
def test_url_types(url, exc) -> None:
    if exc is None:
        wshandle.WebSocket(url).close_handle()  # bytes are accepted as UTF-8
    else:
        with pytest.raises(exc):
            wshandle.connect(url)


# ---- the library's result codes ------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda ws: ws.close(1004),
        lambda ws: ws.close(1006),
        lambda ws: ws.close(1015),
        lambda ws: ws.close(999),
        lambda ws: ws.close(2000),
        lambda ws: ws.close(5000),
        lambda ws: ws.close(1000, "x" * 124),
        lambda ws: ws.close(1000, b"\xff"),
        lambda ws: ws.close(1005, "reason with an empty status"),
        lambda ws: ws.shutdown(1004),
        lambda ws: ws.send(b"\xff\xfe", text=True),
    ],
)
def test_invalid_parameter_sends_nothing(ws, call) -> None:
    with pytest.raises(wshandle.InvalidParameter) as info:
        call(ws)
    assert isinstance(info.value, ValueError)
    assert info.value.code == 87
    assert ws.state is State.OPEN
    ws.send("nothing was sent before this")
    assert ws.recv() == "nothing was sent before this"


def test_longest_reason_is_fine(echo_server) -> None:
    ws = wshandle.connect(echo_server.url)
    ws.close(1000, "é" * 61 + "x")  # 123 bytes
    ws.close_handle()
    assert echo_server.result()["client_close"] == (1000, "é" * 61 + "x")


def test_mixed_fragment_types_keep_the_message_open(ws) -> None:
    ws.send_fragment("text ")
    with pytest.raises(wshandle.InvalidParameter):
        ws.send_fragment(b"binary")
    with pytest.raises(wshandle.InvalidParameter):
        ws.send(b"whole binary")
    with pytest.raises(wshandle.InvalidParameter):
        ws.send_fragment(b"\xe2\x98", final=True, text=True)  # ends inside a code point
    ws.send_fragment(b"\xe2\x98", text=True)  # may end inside a code point mid-message
    ws.send_fragment(b"\x83", final=True, text=True)
    assert ws.recv() == "text ☃"


@pytest.mark.parametrize(
    "url,exc,code",
    [
        ("http://127.0.0.1/", wshandle.InvalidUrl, ErrorCode.UNRECOGNIZED_SCHEME),
        ("ws://", wshandle.InvalidUrl, ErrorCode.INVALID_URL),
        ("ws://user@127.0.0.1/", wshandle.InvalidUrl, ErrorCode.INVALID_URL),
        ("ws://no-such-host.invalid/", wshandle.CannotConnect, ErrorCode.NAME_NOT_RESOLVED),
    ],
)
def test_connect_errors(url, exc, code) -> None:
    with pytest.raises(exc) as info:
        wshandle.connect(url, connect_timeout=10)
    assert info.value.code == code


def test_connection_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused
    port = s.getsockname()[1]
    try:
        with pytest.raises(wshandle.CannotConnect) as info:
            wshandle.connect(f"ws://127.0.0.1:{port}/")
        assert isinstance(info.value, ConnectionError)
        assert info.value.code == ErrorCode.CANNOT_CONNECT
    finally:
        s.close()


def test_wrong_path_reports_the_http_status(make_server) -> None:
    server = make_server(path="/chat")
    with pytest.raises(wshandle.ProtocolError) as info:
        wshandle.connect(f"ws://127.0.0.1:{server.port}/other")
    assert info.value.http_status == 404


def test_failed_connect_leaves_a_reusable_handle(make_server) -> None:
    server = make_server(path="/chat")
    ws = wshandle.WebSocket(f"ws://127.0.0.1:{server.port}/other")
    with pytest.raises(wshandle.ProtocolError):
        ws.connect()
    assert ws.state is State.NONE
    assert ws.http_status == 404
    ws.close_handle()


def test_bind_conflict() -> None:
    with wshandle.listen("ws://127.0.0.1:0/") as first:
        with pytest.raises(wshandle.CannotConnect):
            wshandle.listen(f"ws://127.0.0.1:{first.port}/")


def test_connect_time_option_after_connect(ws) -> None:
    with pytest.raises(wshandle.IncorrectHandleState) as info:
        ws._apply_common(60.0, 30.0, None, 10.0, 30.0, None, 1024, None, None, None)
    assert info.value.code == ErrorCode.INCORRECT_HANDLE_STATE


def test_tls_and_proxy_options_surface_the_librarys_answer(echo_server) -> None:
    # This build has no TLS/proxy: ws_set_option answers WS_ERROR_INVALID_OPTION. Once it
    # has, setting them on a ws:// handle may succeed; either way the library decides.
    for kwargs in (
        {"tls_ca_file": "/nonexistent/ca.pem"},
        {"tls_insecure_skip_verify": True},
        {"tls_cert_file": "/nonexistent/cert.pem"},
        {"tls_key_file": "/nonexistent/key.pem"},
        {"proxy": "http://127.0.0.1:1"},
    ):
        try:
            ws = wshandle.WebSocket(echo_server.url, **kwargs)
        except wshandle.InvalidOption as e:
            assert e.code == ErrorCode.INVALID_OPTION and e.detail
        else:
            ws.close_handle()
    for kwargs in ({"tls_cert_file": "/nonexistent/cert.pem"}, {"tls_key_file": "/x.pem"}):
        try:
            wshandle.listen("ws://127.0.0.1:0/", **kwargs).close()
        except wshandle.InvalidOption as e:
            assert e.code == ErrorCode.INVALID_OPTION


def test_reserved_request_headers(echo_server) -> None:
    for name in ("Host", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Protocol", "Bad Name"):
        with pytest.raises(wshandle.InvalidParameter):
            wshandle.connect(echo_server.url, headers={name: "x"})
