"""The Pythonic layer: `WebSocket`, `Listener`, `connect` and `listen`.

Every method is a thin wrapper around one C call (see include/wshandle.h for the states and
result codes of each); failures raise the `WsError` subclass for the code. Timeouts are in
seconds (``None`` = no timeout). All methods may be called from any thread: ctypes releases the
GIL during each call, and the library's own rules apply — per connection, one receiving call
and one sending call at a time; a second one raises `InvalidOperation` at once.
"""

from __future__ import annotations

import _thread
import math
import signal
import threading
import time
import weakref
from enum import Enum

from . import _bindings as _b
from ._constants import BufferType, CloseStatus, ErrorCode, Option, State
from ._errors import InvalidOperation, WsError, error_for, error_name

TYPE_CHECKING = False  # `typing` costs more to import than the rest of the package
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

    Data = Union[bytes, str]
    BytesLike = Union[bytes, bytearray, memoryview]
    Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]

__all__ = ["WebSocket", "Listener", "connect", "listen"]

# Hot-path globals: one module-global lookup each instead of attribute chains.
_ws_send = _b.ws_send
_ws_receive = _b.ws_receive
_string_at = _b.string_at
_writable_address = _b.writable_address
_send_argument = _b.send_argument
_BUFFER_TYPES = tuple(BufferType)  # index = WS_BUFFER_* value

_RECV_BUFFER_SIZE = 64 * 1024
_TIMEOUT = int(ErrorCode.TIMEOUT)
#: On the main thread, a receive waits in the library for at most this long at a time, so that
#: Python runs its signal handlers (Ctrl-C's KeyboardInterrupt) in between. A receive timeout
#: loses nothing (API.md), so the slices are invisible but for the signals they let through.
_SIGNAL_SLICE_MS = 25
_main_thread = threading.main_thread
_start_new_thread = _thread.start_new_thread
_get_ident = threading.get_ident
_monotonic = time.monotonic


class _Default(Enum):
    """The type of `FROM_OPTION`."""

    FROM_OPTION = 0


#: ``recv(timeout=FROM_OPTION)`` (the default): the connection's ``receive_timeout`` applies.
FROM_OPTION = _Default.FROM_OPTION

#: ``ws_receive``'s buffer-type out-parameter before the call: still there afterwards means no
#: piece arrived (the library writes out-parameters only on WS_OK).
_NO_PIECE = 0xFFFFFFFF
#: `WebSocket._ready` for a close frame that an interrupted `recv` got.
_CLOSE_READY: List[Any] = [False, None]


def _join(message: List[Any]) -> Optional[Data]:
    """A message kept as ``[is_text, pieces]`` (`_CLOSE_READY`: the close frame, None)."""
    if message is _CLOSE_READY:
        return None
    data = b"".join(message[1])
    return data.decode("utf-8") if message[0] else data
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF

# C defaults (API.md); options equal to them are not set at all.
_DEFAULT_CONNECT_TIMEOUT = 60.0
_DEFAULT_SEND_TIMEOUT = 30.0
_DEFAULT_CLOSE_TIMEOUT = 10.0
_DEFAULT_KEEPALIVE_INTERVAL = 30.0


def _check(rc: int) -> None:
    if rc:
        raise error_for(rc)


def _busy(what: str) -> InvalidOperation:
    code = ErrorCode.INVALID_OPERATION
    return InvalidOperation(
        code, error_name(code), f"another {what} is in progress on this handle (on another thread)"
    )


def _c_string(value: Any, what: str) -> bytes:
    """str (UTF-8) or bytes for a NUL-terminated C string; a NUL inside is a ValueError."""
    if isinstance(value, str):
        b = value.encode("utf-8")
    elif isinstance(value, bytes):
        b = value
    else:
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if b"\0" in b:
        raise ValueError(f"{what} must not contain NUL characters")
    return b


def _timeout_ms(value: Optional[float], what: str) -> int:
    """Seconds (int or float; None = no timeout) to the library's u32 milliseconds (0 = none).
    Rounds up, so a tiny positive timeout never turns into "none"."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {type(value).__name__}")
    if not value > 0 or math.isinf(value):
        raise ValueError(
            f"{what} must be a positive, finite number of seconds (None for no limit), "
            f"not {value!r}"
        )
    ms = math.ceil(value * 1000)
    if ms > _U32_MAX:
        raise ValueError(f"{what} is too long: at most {_U32_MAX / 1000} s")
    return ms


def _status_and_reason(code: Any, reason: Any) -> Tuple[int, Optional[bytes], int]:
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if not 0 <= code <= 0xFFFF:
        raise ValueError(
            f"close code {code} is out of range (sendable: 1000-1003, 1007-1014, 3000-4999)"
        )
    if isinstance(reason, str):
        r = reason.encode("utf-8")
    elif isinstance(reason, bytes):
        r = reason
    else:
        raise TypeError(f"close reason must be str or bytes, not {type(reason).__name__}")
    return int(code), (r or None), len(r)


def _subprotocol_list(subprotocols: Any) -> Optional[bytes]:
    if subprotocols is None:
        return None
    if isinstance(subprotocols, (str, bytes)):
        raise TypeError("subprotocols must be a list of str, e.g. ['chat'], not a single string")
    names = []
    for p in subprotocols:
        if not isinstance(p, str):
            raise TypeError(f"subprotocols must be str, not {type(p).__name__}")
        if not p or "," in p or "\0" in p:
            raise ValueError(f"invalid subprotocol name {p!r}")
        names.append(p)
    return ",".join(names).encode("utf-8") if names else None


def _header_pairs(headers: Any) -> List[Tuple[bytes, bytes]]:
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    if isinstance(items, (str, bytes)):
        raise TypeError("headers must be a mapping or an iterable of (name, value) pairs")
    out = []
    for pair in items:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                "headers must be a mapping or an iterable of (name, value) pairs"
            ) from None
        out.append((_c_string(name, "header name"), _c_string(value, "header value")))
    return out


def _apply_deflate(
    h: int,
    permessage_deflate: bool,
    window_bits: Optional[int],
    context_takeover: Optional[bool],
    level: Optional[int],
    threshold: Optional[int],
) -> None:
    """WS_OPTION_PERMESSAGE_DEFLATE and its tuning options; None keeps the library's default
    (the library checks the ranges: ValueError for a number out of range)."""
    flag: Any
    for flag, what in (
        (permessage_deflate, "permessage_deflate"),
        (context_takeover, "deflate_context_takeover"),
    ):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"{what} must be a bool, not {type(flag).__name__}")
    number: Any
    for number, what in (
        (window_bits, "deflate_window_bits"),
        (level, "deflate_level"),
        (threshold, "deflate_threshold"),
    ):
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise TypeError(f"{what} must be an int or None, not {type(number).__name__}")
        if number is not None and not 0 <= number <= 0xFFFFFFFF:
            raise ValueError(f"{what} is out of range: {number}")
    if permessage_deflate:
        _check(_b.set_u32(h, Option.PERMESSAGE_DEFLATE, 1))
    for option, value in (
        (Option.DEFLATE_WINDOW_BITS, window_bits),
        (Option.DEFLATE_CONTEXT_TAKEOVER, context_takeover),
        (Option.DEFLATE_LEVEL, level),
        (Option.DEFLATE_THRESHOLD, threshold),
    ):
        if value is not None:
            _check(_b.set_u32(h, option, int(value)))


def _release(h: int) -> None:
    _b.ws_close_handle(h)


class _Handle:
    """What connections and listeners share: the handle, its release, timeouts."""

    __slots__ = ("_h", "_finalizer", "_rto_user", "_rto_lib", "__weakref__")

    _h: int
    #: receive_timeout in ms (0 = none) as the user set it, and as the library has it now
    #: (they differ while a main-thread receive waits in slices, see `_SIGNAL_SLICE_MS`)
    _rto_user: int
    _rto_lib: int

    def _adopt(self, h: int, rto: int = 0) -> None:
        self._h = h
        self._rto_user = self._rto_lib = rto
        self._finalizer = weakref.finalize(self, _release, h)

    @property
    def handle(self) -> int:
        """The raw ``ws_handle`` (for passing to C code; it stays owned by this object)."""
        return self._h

    @property
    def released(self) -> bool:
        """True once `close_handle` released the handle (later calls raise `InvalidHandle`)."""
        return not self._finalizer.alive

    def close_handle(self) -> None:
        """``ws_close_handle``: releases the handle at once, in any state, from any thread. An
        open connection is dropped without a close handshake (call `close` first for a clean
        close); calls blocked on the handle in other threads raise `Cancelled` within 100 ms.
        Idempotent here (the C call's second-call WS_ERROR_INVALID_HANDLE is not raised); every
        other method raises `InvalidHandle` afterwards."""
        self._finalizer()

    # ---- options ----------------------------------------------------------------------

    def _set_timeout(self, option: int, seconds: Optional[float], what: str) -> None:
        _check(_b.set_u32(self._h, option, _timeout_ms(seconds, what)))

    def _get_timeout(self, option: int) -> Optional[float]:
        rc, ms = _b.query_u32(self._h, option)
        _check(rc)
        return ms / 1000 if ms else None

    def _apply_common(
        self,
        connect_timeout: Optional[float],
        send_timeout: Optional[float],
        receive_timeout: Optional[float],
        close_timeout: Optional[float],
        keepalive_interval: Optional[float],
        keepalive_timeout: Optional[float],
        max_message_size: Optional[int],
        subprotocols: Optional[Sequence[str]],
        tls_cert_file: Optional[str],
        tls_key_file: Optional[str],
    ) -> None:
        h = self._h
        for option, value, default, what in (
            (Option.CONNECT_TIMEOUT, connect_timeout, _DEFAULT_CONNECT_TIMEOUT, "connect_timeout"),
            (Option.SEND_TIMEOUT, send_timeout, _DEFAULT_SEND_TIMEOUT, "send_timeout"),
            (Option.RECEIVE_TIMEOUT, receive_timeout, None, "receive_timeout"),
            (Option.CLOSE_TIMEOUT, close_timeout, _DEFAULT_CLOSE_TIMEOUT, "close_timeout"),
            (
                Option.KEEPALIVE_INTERVAL,
                keepalive_interval,
                _DEFAULT_KEEPALIVE_INTERVAL,
                "keepalive_interval",
            ),
            (Option.KEEPALIVE_TIMEOUT, keepalive_timeout, None, "keepalive_timeout"),
        ):
            ms = _timeout_ms(value, what)  # type and range checks even for the default
            if value != default:
                _check(_b.set_u32(h, option, ms))
            if option == Option.RECEIVE_TIMEOUT:
                self._rto_user = self._rto_lib = ms
        if max_message_size is not None:
            if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
                raise TypeError(
                    "max_message_size must be an int or None, "
                    f"not {type(max_message_size).__name__}"
                )
            if not 0 < max_message_size <= _U64_MAX:
                raise ValueError(
                    "max_message_size must be a positive number of bytes (None for no limit), "
                    f"not {max_message_size}"
                )
            _check(_b.set_u64(h, Option.MAX_MESSAGE_SIZE, max_message_size))
        protocols = _subprotocol_list(subprotocols)
        if protocols is not None:
            _check(_b.set_string(h, Option.SUBPROTOCOLS, protocols))
        for option, path, what in (
            (Option.TLS_CERT_FILE, tls_cert_file, "tls_cert_file"),
            (Option.TLS_KEY_FILE, tls_key_file, "tls_key_file"),
        ):
            if path is not None:
                _check(_b.set_string(h, option, _c_string(_fspath(path), what)))

    connect_timeout = property(
        lambda self: self._get_timeout(Option.CONNECT_TIMEOUT),
        lambda self, v: self._set_timeout(Option.CONNECT_TIMEOUT, v, "connect_timeout"),
        doc="WS_OPTION_CONNECT_TIMEOUT in seconds (None = none): DNS, TCP and upgrade.",
    )
    send_timeout = property(
        lambda self: self._get_timeout(Option.SEND_TIMEOUT),
        lambda self, v: self._set_timeout(Option.SEND_TIMEOUT, v, "send_timeout"),
        doc="WS_OPTION_SEND_TIMEOUT in seconds (None = none): a blocked send raises `Timeout` "
        "and aborts the connection.",
    )
    def _get_receive_timeout(self) -> Optional[float]:
        if not self._finalizer.alive:
            return self._get_timeout(Option.RECEIVE_TIMEOUT)  # raises InvalidHandle
        return self._rto_user / 1000 if self._rto_user else None

    def _set_receive_timeout(self, seconds: Optional[float]) -> None:
        ms = _timeout_ms(seconds, "receive_timeout")
        _check(_b.set_u32(self._h, Option.RECEIVE_TIMEOUT, ms))
        self._rto_user = self._rto_lib = ms

    receive_timeout = property(
        _get_receive_timeout,
        _set_receive_timeout,
        doc="WS_OPTION_RECEIVE_TIMEOUT in seconds (None = wait forever): `recv` raises `Timeout`; "
        "the connection stays usable and nothing is lost. On a listener it also bounds `accept`.",
    )
    close_timeout = property(
        lambda self: self._get_timeout(Option.CLOSE_TIMEOUT),
        lambda self, v: self._set_timeout(Option.CLOSE_TIMEOUT, v, "close_timeout"),
        doc="WS_OPTION_CLOSE_TIMEOUT in seconds (None = none): one deadline for all of `close`.",
    )
    keepalive_interval = property(
        lambda self: self._get_timeout(Option.KEEPALIVE_INTERVAL),
        lambda self, v: self._set_timeout(Option.KEEPALIVE_INTERVAL, v, "keepalive_interval"),
        doc="WS_OPTION_KEEPALIVE_INTERVAL in seconds (None = off): ping while `recv` waits idle.",
    )
    keepalive_timeout = property(
        lambda self: self._get_timeout(Option.KEEPALIVE_TIMEOUT),
        lambda self, v: self._set_timeout(Option.KEEPALIVE_TIMEOUT, v, "keepalive_timeout"),
        doc="WS_OPTION_KEEPALIVE_TIMEOUT in seconds (None = off): no frame from the peer this "
        "long after a keepalive ping aborts the connection and `recv` raises `Timeout`.",
    )

    @property
    def max_message_size(self) -> Optional[int]:
        """WS_OPTION_MAX_MESSAGE_SIZE in bytes (None = no limit)."""
        rc, n = _b.query_u64(self._h, Option.MAX_MESSAGE_SIZE)
        _check(rc)
        return n or None

    @property
    def local_port(self) -> int:
        """WS_OPTION_LOCAL_PORT: a listener's bound port (and its connections'), or a client
        connection's local port."""
        rc, port = _b.query_u32(self._h, Option.LOCAL_PORT)
        _check(rc)
        return port


class WebSocket(_Handle):
    """A WebSocket connection handle (client from `connect`, server side from
    `Listener.accept`).

    Use it as a context manager: on exit it calls `close` (the full, bounded handshake) if the
    connection is still open and always releases the handle. One thread may receive while
    another sends; `close` from any thread cancels a blocked `recv` (`Cancelled`).
    """

    __slots__ = ("_slot", "_rbuf", "_recv_lock", "_partial", "_ready", "_last")

    _slot: _b.OutSlot
    _rbuf: Optional[_b.ReceiveBuffer]
    _recv_lock: threading.Lock
    #: [is_text, pieces] of a message whose rest a failed `recv` has not read yet
    _partial: Optional[List[Any]]

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Optional[Sequence[str]] = None,
        headers: Optional[Headers] = None,
        connect_timeout: Optional[float] = _DEFAULT_CONNECT_TIMEOUT,
        send_timeout: Optional[float] = _DEFAULT_SEND_TIMEOUT,
        receive_timeout: Optional[float] = None,
        close_timeout: Optional[float] = _DEFAULT_CLOSE_TIMEOUT,
        keepalive_interval: Optional[float] = _DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: Optional[float] = None,
        max_message_size: Optional[int] = None,
        permessage_deflate: bool = False,
        deflate_window_bits: Optional[int] = None,
        deflate_context_takeover: Optional[bool] = None,
        deflate_level: Optional[int] = None,
        deflate_threshold: Optional[int] = None,
        tls_ca_file: Optional[str] = None,
        tls_insecure_skip_verify: Optional[bool] = None,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
        proxy: Optional[str] = None,
    ) -> None:
        """``ws_open`` plus options and request headers: a client handle in `State.NONE`, no
        I/O yet; call `connect`. Most code wants the module's `connect` function instead.
        Arguments as for `wshandle.connect`."""
        rc, h = _b.open_handle(_c_string(url, "url"))
        _check(rc)
        self._init_connection(h)
        try:
            self._apply_common(
                connect_timeout,
                send_timeout,
                receive_timeout,
                close_timeout,
                keepalive_interval,
                keepalive_timeout,
                max_message_size,
                subprotocols,
                tls_cert_file,
                tls_key_file,
            )
            _apply_deflate(
                h,
                permessage_deflate,
                deflate_window_bits,
                deflate_context_takeover,
                deflate_level,
                deflate_threshold,
            )
            if tls_ca_file is not None:
                _check(
                    _b.set_string(
                        h, Option.TLS_CA_FILE, _c_string(_fspath(tls_ca_file), "tls_ca_file")
                    )
                )
            if tls_insecure_skip_verify is not None:
                if not isinstance(tls_insecure_skip_verify, bool):
                    raise TypeError("tls_insecure_skip_verify must be a bool")
                _check(
                    _b.set_u32(h, Option.TLS_INSECURE_SKIP_VERIFY, int(tls_insecure_skip_verify))
                )
            if proxy is not None:
                _check(_b.set_string(h, Option.PROXY, _c_string(proxy, "proxy")))
            for name, value in _header_pairs(headers):
                _check(_b.ws_add_request_header(h, name, value))
        except BaseException:
            self.close_handle()
            raise

    @classmethod
    def _from_handle(cls, h: int, rto: int = 0) -> "WebSocket":
        """A connection handle from ``ws_accept`` (``rto``: the receive timeout in ms it
        inherited from its listener)."""
        self = cls.__new__(cls)
        self._init_connection(h, rto)
        return self

    def _init_connection(self, h: int, rto: int = 0) -> None:
        self._adopt(h, rto)
        self._slot = _b.OutSlot()
        self._rbuf = None
        self._recv_lock = threading.Lock()
        self._partial = None
        #: a whole message (as `_partial`) that an interrupted `recv` got: the next returns it
        self._ready: Optional[List[Any]] = None
        #: (state, close status) kept by `close_handle`
        self._last: Optional[Tuple[State, Optional[Tuple[int, str]]]] = None

    def close_handle(self) -> None:
        """``ws_close_handle``: releases the handle at once, in any state, from any thread. An
        open connection is dropped without a close handshake (call `close` first for a clean
        close); calls blocked on the handle in other threads raise `Cancelled` within 100 ms.
        Idempotent. Afterwards `state` and `close_status` keep their last values (a connection
        dropped while still open reads ABORTED and ``(1006, "")``); the other methods raise
        `InvalidHandle`."""
        if self._finalizer.alive and self._last is None:
            rc, state = _b.query_state(self._h)
            if rc == 0:
                status = self.close_status
                state = State(state)
                if state in (State.CONNECTING, State.OPEN, State.CLOSE_SENT, State.CLOSE_RECEIVED):
                    state = State.ABORTED
                    if status is None:
                        status = (int(CloseStatus.ABORTED), "")
                self._last = (state, status)
        self._finalizer()

    def __repr__(self) -> str:
        try:
            state = self.state.name
        except WsError:
            state = "?"
        released = " released" if self.released else ""
        return f"<wshandle.WebSocket handle={self._h:#x} state={state}{released}>"

    # ---- connecting -------------------------------------------------------------------

    def connect(self) -> "WebSocket":
        """``ws_connect``: DNS, TCP (through the proxy, if set), TLS for ``wss://`` and the HTTP
        upgrade, within `connect_timeout`. Allowed in
        `State.NONE`; after a failure the handle is back in NONE (the exception's
        ``http_status`` tells a non-101 response's status). Returns self."""
        rc = _b.ws_connect(self._h)
        if rc:
            err = error_for(rc)
            qrc, status = _b.query_u32(self._h, Option.HTTP_STATUS)
            if qrc == 0:
                err.http_status = status
            raise err
        return self

    # ---- sending ----------------------------------------------------------------------

    def send(self, data: Union[str, BytesLike], *, text: Optional[bool] = None) -> None:
        """Sends one whole message: ``str`` as text, bytes-like as binary (``text=True`` sends
        UTF-8 bytes as text without a decode; ``text=False`` sends a str as binary). Returns
        when every byte is handed to the OS. Allowed in OPEN and CLOSE_RECEIVED.

        Raises `InvalidOperation` in other states or while another send runs, `InvalidParameter`
        for invalid UTF-8 in a text message or while a fragmented message of the other type is
        open, `Timeout` (send timeout; aborted), `ConnectionLost`, `Cancelled`."""
        if type(data) is bytes:
            rc = _ws_send(self._h, 2 if text else 0, data, len(data))
        elif type(data) is str:
            b = data.encode("utf-8")
            rc = _ws_send(self._h, 0 if text is False else 2, b, len(b))
        else:
            rc = self._send_other(data, 2 if text else 0)
        if rc:
            raise error_for(rc)

    def send_fragment(
        self, data: Union[str, BytesLike], final: bool = False, *, text: Optional[bool] = None
    ) -> None:
        """Sends one piece of a fragmented message: ``final=False`` starts or continues it,
        ``final=True`` ends it. The type follows ``data`` as for `send` (a text message may be
        split anywhere, even inside a code point, by passing UTF-8 bytes with ``text=True``);
        every piece must have the message's type, else `InvalidParameter` and nothing is sent."""
        if type(data) is str:
            data = data.encode("utf-8")
            kind = 0 if text is False else 2
        elif text:
            kind = 2
        else:
            kind = 0
        if not final:
            kind += 1  # *_MESSAGE -> *_FRAGMENT
        if type(data) is bytes:
            rc = _ws_send(self._h, kind, data, len(data))
        else:
            rc = self._send_other(data, kind)
        if rc:
            raise error_for(rc)

    def send_many(self, messages: Iterable[Union[str, BytesLike]]) -> None:
        """Sends many whole messages with one ``ws_send_batch`` call (few system calls, one
        for a batch of small messages): each ``str`` as text, each bytes-like as binary, in
        order, as if by `send` for each. Returns when every byte is handed to the OS.

        All or nothing: if the library refuses one message (e.g. a binary one while a text
        message started with `send_fragment` is open), it raises `InvalidParameter` naming the
        message's index and sends none of them. Raises `TypeError` (nothing sent) for other
        objects, and otherwise what `send` raises. Blocking handles only."""
        addr, n, keep = _b.batch_argument(messages)
        rc = _b.ws_send_batch(self._h, addr, n)
        del keep  # the payloads live until the call returned
        if rc:
            raise error_for(rc)

    def _send_other(self, data: Any, kind: int) -> int:
        try:
            arg, n, keep = _send_argument(data)
        except TypeError:
            raise TypeError(
                f"send needs str or a bytes-like object, not {type(data).__name__}"
            ) from None
        rc: int = _ws_send(self._h, kind, arg, n)
        del keep  # the buffer export lives until the call returned
        return rc

    # ---- receiving --------------------------------------------------------------------

    def _deadline(self, timeout: Union[float, None, _Default]) -> Optional[float]:
        """The monotonic deadline of one receiving call (None: none)."""
        if timeout is FROM_OPTION:
            ms = self._rto_user
        else:
            ms = _timeout_ms(timeout, "timeout")
        return _monotonic() + ms / 1000 if ms else None

    def _receive(self, addr: int, size: int, deadline: Optional[float]) -> int:
        """``ws_receive`` until ``deadline``. On the main thread the library waits in slices of
        `_SIGNAL_SLICE_MS` (a receive timeout loses nothing), so that Ctrl-C's
        KeyboardInterrupt is raised between two of them, and the next call resumes."""
        slot = self._slot
        main = _get_ident() == _main_thread().ident
        while True:
            want = 0
            if deadline is not None:
                want = max(1, math.ceil((deadline - _monotonic()) * 1000))
            if main and (want == 0 or want > _SIGNAL_SLICE_MS):
                want = _SIGNAL_SLICE_MS
            if want != self._rto_lib:
                rc = _b.set_u32(self._h, Option.RECEIVE_TIMEOUT, want)
                if rc:
                    return int(rc)
                self._rto_lib = want
            rc = _ws_receive(self._h, addr, size, slot.size_addr, slot.u32_addr)
            if rc != _TIMEOUT or not main:
                return int(rc)
            if deadline is not None and _monotonic() >= deadline:
                return int(rc)
            if _b.query_state(self._h)[1] == State.ABORTED:  # a keepalive timeout: fatal
                return int(rc)

    def recv(self, timeout: Union[float, None, _Default] = FROM_OPTION) -> Optional[Data]:
        """Receives the next whole message: ``bytes`` for binary, ``str`` for text, or ``None``
        when the peer's close frame arrived (then `close_status` tells its code and reason, and
        the state is CLOSE_RECEIVED — answer with `close` or `shutdown` — or CLOSED after your
        own `shutdown`). Blocks until then, the timeout, or cancellation. Allowed in OPEN
        and CLOSE_SENT; one receiving call at a time per connection.

        ``timeout``: seconds for this call (``None``: wait forever); by default the
        connection's `receive_timeout`. On the main thread, Ctrl-C raises KeyboardInterrupt
        within 100 ms and loses nothing: the next `recv` returns the message (also one
        half-read).

        Raises `Timeout` (nothing is lost, a message half-read is kept and the
        next `recv` returns all of it), `Cancelled` (`close`/`close_handle` on another thread),
        `InvalidOperation` (other states, another `recv` running, or after `close` started),
        `ConnectionLost` (TCP ended without a close frame), `ProtocolError`."""
        if not self._recv_lock.acquire(False):
            raise _busy("recv")
        try:
            ready = self._ready
            if ready is not None:  # a message rescued from an interrupted call
                self._ready = None
                return _join(ready)
            buf = self._rbuf
            if buf is None:
                buf = self._rbuf = _b.ReceiveBuffer(_RECV_BUFFER_SIZE)
            slot = self._slot
            deadline = None if timeout is None else self._deadline(timeout)
            slot.u32.value = _NO_PIECE
            try:
                if self._partial is not None:
                    return self._recv_rest(buf, self._partial, deadline)
                if (
                    deadline is None
                    and self._rto_lib == 0
                    and _get_ident() != _main_thread().ident
                ):
                    # the fast path: one C call
                    rc = _ws_receive(self._h, buf.addr, buf.size, slot.size_addr, slot.u32_addr)
                else:
                    rc = self._receive(buf.addr, buf.size, deadline)
                if rc:
                    raise error_for(rc)
                t = slot.u32.value
                if t == 0:
                    return _string_at(buf.addr, slot.size.value)
                if t == 2:
                    return _string_at(buf.addr, slot.size.value).decode("utf-8")
                if t == 4:
                    return None
                data = _string_at(buf.addr, slot.size.value)
                partial = [t == 3, [data]]
                self._partial = partial  # (no Python call between these two lines, so no
                slot.u32.value = _NO_PIECE  # signal handler can run in between)
                return self._recv_rest(buf, partial, deadline)
            except BaseException:
                self._rescue(buf.addr)
                raise
        finally:
            self._recv_lock.release()

    def _rescue(self, addr: int) -> None:
        """A call raised (KeyboardInterrupt from a signal handler, which Python runs right after
        any call returns) after ``ws_receive`` delivered a piece that was not recorded yet: it
        is still in the buffer at ``addr``, and `_NO_PIECE` in the slot says whether it was
        taken. Record it, so that the next `recv` returns it."""
        slot = self._slot
        t = slot.u32.value
        if t == _NO_PIECE:
            return
        slot.u32.value = _NO_PIECE
        data = _string_at(addr, slot.size.value)
        partial = self._partial
        if t == 4:
            self._ready = _CLOSE_READY
        elif partial is None:
            if t in (0, 2):
                self._ready = [t == 2, [data]]
            else:
                self._partial = [t == 3, [data]]
        else:
            partial[1].append(data)
            if t in (0, 2):
                self._partial = None
                self._ready = partial

    def _recv_rest(
        self, buf: _b.ReceiveBuffer, partial: List[Any], deadline: Optional[float]
    ) -> Data:
        """The rest of a message whose first pieces are in ``partial`` (``self._partial``)."""
        slot = self._slot
        parts = partial[1]
        while True:
            slot.u32.value = _NO_PIECE
            rc = self._receive(buf.addr, buf.size, deadline)
            if rc:
                raise error_for(rc)  # _partial stays: the next recv resumes
            t = slot.u32.value
            data = _string_at(buf.addr, slot.size.value)
            parts += (data,)  # (no call between these lines: see recv)
            slot.u32.value = _NO_PIECE
            if t == 0 or t == 2:
                break
        self._ready = partial  # complete: if the join below is interrupted, the next recv
        self._partial = None  # returns it
        message = _join(partial)
        self._ready = None
        assert message is not None
        return message

    def recv_into(
        self, buffer: Any, timeout: Union[float, None, _Default] = FROM_OPTION
    ) -> Tuple[int, BufferType]:
        """Receives the next piece of the next message into a writable buffer (bytearray,
        memoryview, array, mmap, ...) without copying, as ``ws_receive``: returns
        ``(count, buffer_type)`` — ``*_FRAGMENT`` when more of the message follows,
        ``*_MESSAGE`` for its last piece (possibly 0 bytes), `BufferType.CLOSE` (0 bytes) for
        the peer's close frame. States and exceptions as for `recv`; after a `recv` that raised
        in the middle of a message (e.g. a receive timeout), `InvalidOperation` until `recv`
        has returned that message. ``timeout`` as for `recv`."""
        addr, size, keep = _writable_address(buffer)
        if not self._recv_lock.acquire(False):
            raise _busy("recv")
        try:
            if self._partial is not None or self._ready is not None:
                code = ErrorCode.INVALID_OPERATION
                raise InvalidOperation(
                    code,
                    error_name(code),
                    "recv() raised in the middle of a message and holds its first pieces; "
                    "call recv() to get the whole message",
                )
            slot = self._slot
            deadline = None if timeout is None else self._deadline(timeout)
            slot.u32.value = _NO_PIECE
            try:
                rc = self._receive(addr, size, deadline)
                if rc:
                    raise error_for(rc)
                return slot.size.value, _BUFFER_TYPES[slot.u32.value]
            except BaseException:
                self._rescue(addr)  # recv() then returns the message it began
                raise
        finally:
            self._recv_lock.release()
            del keep

    def __iter__(self) -> Iterator[Data]:
        """Yields messages (`recv`) until the peer's close frame arrives."""
        while True:
            message = self.recv()
            if message is None:
                return
            yield message

    # ---- closing ----------------------------------------------------------------------

    def shutdown(self, code: int = 1000, reason: Union[str, bytes] = "") -> None:
        """``ws_shutdown``: sends a close frame and returns without waiting (.NET's
        CloseOutputAsync). OPEN → CLOSE_SENT: keep calling `recv` (or iterating) for what the
        peer still sends, until it returns ``None``. CLOSE_RECEIVED → CLOSED. A `recv` blocked
        on another thread carries on. Sendable codes: 1000-1003, 1007-1014, 3000-4999, or 1005
        (no payload; reason must be empty); the reason is at most 123 bytes of UTF-8.

        Raises `InvalidParameter` (bad code or reason; nothing sent), `InvalidOperation` (other
        states, a second shutdown, another send running), `Timeout`, `ConnectionLost`."""
        status, r, n = _status_and_reason(code, reason)
        _check(_b.ws_shutdown(self._h, status, r, n))

    def close(self, code: int = 1000, reason: Union[str, bytes] = "") -> None:
        """``ws_close``: the full close handshake under one deadline (`close_timeout`): sends a
        close frame unless one was sent, cancels a `recv` blocked on another thread (it raises
        `Cancelled`), reads and discards data until the peer's close frame, tears TCP down.
        Allowed in OPEN, CLOSE_SENT, CLOSE_RECEIVED; in CLOSED it does nothing. Afterwards only
        `close_status`, `state` and `close_handle` are useful. Codes and reasons as for
        `shutdown`.

        Raises `Timeout` when the deadline passed (aborted), `ConnectionLost`/`ProtocolError`
        (aborted), `InvalidParameter`, `InvalidOperation` (NONE, CONNECTING, ABORTED, or another
        send running), `Cancelled` (`close_handle` meanwhile)."""
        status, r, n = _status_and_reason(code, reason)
        _check(_b.ws_close(self._h, status, r, n))

    @property
    def close_status(self) -> Optional[Tuple[int, str]]:
        """``(code, reason)`` of the peer's close frame once it arrived (1005 when it had no
        payload), ``(1006, "")`` once the connection ended without one; ``None`` before. Kept
        after `close_handle` (and so after a ``with`` block)."""
        if self._last is not None:
            return self._last[1]
        rc, status, reason = _b.query_close_status(self._h)
        if rc == ErrorCode.INVALID_OPERATION:
            return None
        _check(rc)
        return status, reason.decode("utf-8", "replace")

    @property
    def state(self) -> State:
        """The connection's `State` (``ws_query_state``); after `close_handle` (and so after a
        ``with`` block) the last state."""
        if self._last is not None:
            return self._last[0]
        rc, v = _b.query_state(self._h)
        _check(rc)
        return State(v)

    # ---- what the handshake agreed -----------------------------------------------------

    @property
    def subprotocol(self) -> Optional[str]:
        """The subprotocol the handshake agreed, or None (after `connect`/`accept`)."""
        rc, value = _b.query_string(self._h, Option.SELECTED_SUBPROTOCOL)
        _check(rc)
        return value.decode("utf-8") or None

    @property
    def extensions(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value the handshake agreed ("" for none), e.g.
        ``permessage-deflate; client_max_window_bits=12``."""
        rc, value = _b.query_string(self._h, Option.EXTENSIONS)
        _check(rc)
        return value.decode("utf-8")

    @property
    def http_status(self) -> int:
        """The HTTP status of the upgrade response (101 once connected)."""
        rc, status = _b.query_u32(self._h, Option.HTTP_STATUS)
        _check(rc)
        return status

    def handshake_header(self, name: str) -> Optional[str]:
        """A header of the upgrade handshake by case-insensitive name
        (``ws_query_response_header``): on a client, of the server's response (also after a
        failed `connect` that got one, e.g. a 401's ``WWW-Authenticate``); on an accepted
        connection, of the client's request (``Origin``, ``Authorization``, ...). Repeated
        headers are joined with ", ". None when absent."""
        rc, value = _b.query_handshake_header(self._h, _c_string(name, "header name"))
        if rc == ErrorCode.HEADER_NOT_FOUND:
            return None
        _check(rc)
        return value.decode("utf-8", "replace")

    # ---- context manager --------------------------------------------------------------

    def __enter__(self) -> "WebSocket":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Closes with 1000 (1011 when an exception is propagating, whose close errors are then
        not raised) if the connection is still open, then releases the handle."""
        try:
            if not self._finalizer.alive:
                return
            rc, state = _b.query_state(self._h)
            if rc == 0 and state in (State.OPEN, State.CLOSE_SENT, State.CLOSE_RECEIVED):
                if exc_type is None:
                    self.close(1000)
                else:
                    _b.ws_close(self._h, 1011, None, 0)
        finally:
            self.close_handle()


class Listener(_Handle):
    """A listening socket (``ws_listen``) that hands out server-side `WebSocket` objects with
    `accept`. A context manager: releases the handle on exit. `close` (or `close_handle`) from
    another thread cancels a waiting `accept` (`Cancelled`); accepted connections live on."""

    __slots__ = ("_slot", "_accept_lock", "_accept_job")

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Optional[Sequence[str]] = None,
        connect_timeout: Optional[float] = _DEFAULT_CONNECT_TIMEOUT,
        send_timeout: Optional[float] = _DEFAULT_SEND_TIMEOUT,
        receive_timeout: Optional[float] = None,
        close_timeout: Optional[float] = _DEFAULT_CLOSE_TIMEOUT,
        keepalive_interval: Optional[float] = _DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: Optional[float] = None,
        max_message_size: Optional[int] = None,
        permessage_deflate: bool = False,
        deflate_window_bits: Optional[int] = None,
        deflate_context_takeover: Optional[bool] = None,
        deflate_level: Optional[int] = None,
        deflate_threshold: Optional[int] = None,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
    ) -> None:
        """See `wshandle.listen`."""
        rc, h = _b.listen_handle(_c_string(url, "url"))
        _check(rc)
        self._adopt(h)
        self._slot = _b.OutSlot()
        self._accept_lock = threading.Lock()
        self._accept_job: Optional[_AcceptJob] = None
        try:
            self._apply_common(
                connect_timeout,
                send_timeout,
                receive_timeout,
                close_timeout,
                keepalive_interval,
                keepalive_timeout,
                max_message_size,
                subprotocols,
                tls_cert_file,
                tls_key_file,
            )
            _apply_deflate(
                self._h,
                permessage_deflate,
                deflate_window_bits,
                deflate_context_takeover,
                deflate_level,
                deflate_threshold,
            )
        except BaseException:
            self.close_handle()
            raise

    def __repr__(self) -> str:
        if self.released:
            return f"<wshandle.Listener handle={self._h:#x} released>"
        return f"<wshandle.Listener handle={self._h:#x} port={self.port}>"

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0)."""
        return self.local_port

    def accept(self) -> WebSocket:
        """``ws_accept``: waits for one client to complete a valid upgrade on the listener's
        path and returns its connection (state OPEN; it inherits the listener's timeouts).
        Raises `Timeout` after the listener's `receive_timeout` (not fatal), `Cancelled` when the
        listener is closed meanwhile, `InvalidOperation` while another `accept` runs."""
        if _get_ident() == _main_thread().ident:
            return self._accept_interruptibly()
        if not self._accept_lock.acquire(False):
            raise _busy("accept")
        try:
            return self._accept()
        finally:
            self._accept_lock.release()

    def _accept(self) -> WebSocket:
        rc, h = _b.accept_handle(self._h, self._slot)
        if rc:
            raise error_for(rc)
        return WebSocket._from_handle(h, self._rto_user)

    def _accept_interruptibly(self) -> WebSocket:
        """`accept` on the main thread: ``ws_accept`` runs on a helper thread while the main
        thread waits for it in slices of 25 ms, between which Python runs its signal handlers
        (Ctrl-C's KeyboardInterrupt). The helper's accept stays pending: the connection it gets
        goes to the next `accept` call, so nothing is lost. (Waiting in slices of the
        listener's receive timeout, as `recv` does, would also cut short the deadline of each
        client's upgrade request, which that timeout sets.)"""
        job = self._accept_job
        if job is None:
            job = _AcceptJob()
            self._accept_job = job
        if not job.started:
            job.start(self)
        while not job.done.wait(_SIGNAL_SLICE_MS / 1000):
            pass
        self._accept_job = None
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        """Stops listening and releases the handle (the same as `close_handle`); idempotent."""
        self.close_handle()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close_handle()


class _AcceptJob:
    """One ``ws_accept`` on a helper thread for `Listener._accept_interruptibly`. Written so
    that a KeyboardInterrupt, which Python may raise after any call returns, never leaves a
    half-made job: the thread is started (at most once) by a plain C call after ``started``
    is set, with every signal blocked so that the kernel hands signals to the main thread."""

    __slots__ = ("started", "done", "result", "error")

    def __init__(self) -> None:
        self.started = False
        self.done = threading.Event()
        self.result: Optional[WebSocket] = None
        self.error: Optional[BaseException] = None

    def start(self, listener: Listener) -> None:
        current = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        extra = signal.valid_signals() - current
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, extra)
            self.started = True
            _start_new_thread(self._run, (listener,))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, extra)

    def _run(self, listener: Listener) -> None:
        try:
            if not listener._accept_lock.acquire(False):
                raise _busy("accept")
            try:
                self.result = listener._accept()
            finally:
                listener._accept_lock.release()
        except BaseException as e:  # noqa: BLE001 - raised by the waiting accept()
            self.error = e
        finally:
            self.done.set()


def _fspath(value: Any) -> Any:
    return str(value) if hasattr(value, "__fspath__") else value


def connect(
    url: str,
    *,
    subprotocols: Optional[Sequence[str]] = None,
    headers: Optional[Headers] = None,
    connect_timeout: Optional[float] = _DEFAULT_CONNECT_TIMEOUT,
    send_timeout: Optional[float] = _DEFAULT_SEND_TIMEOUT,
    receive_timeout: Optional[float] = None,
    close_timeout: Optional[float] = _DEFAULT_CLOSE_TIMEOUT,
    keepalive_interval: Optional[float] = _DEFAULT_KEEPALIVE_INTERVAL,
    keepalive_timeout: Optional[float] = None,
    max_message_size: Optional[int] = None,
    permessage_deflate: bool = False,
    deflate_window_bits: Optional[int] = None,
    deflate_context_takeover: Optional[bool] = None,
    deflate_level: Optional[int] = None,
    deflate_threshold: Optional[int] = None,
    tls_ca_file: Optional[str] = None,
    tls_insecure_skip_verify: Optional[bool] = None,
    tls_cert_file: Optional[str] = None,
    tls_key_file: Optional[str] = None,
    proxy: Optional[str] = None,
) -> WebSocket:
    """Opens a client connection to a ``ws://`` or ``wss://host[:port]/path?query`` URL and
    returns the connected `WebSocket` (state OPEN). Timeouts are in seconds, ``None`` for none/off:

    - ``subprotocols``: offered, e.g. ``["chat"]``; `WebSocket.subprotocol` tells the choice.
    - ``headers``: extra upgrade-request headers, a mapping or (name, value) pairs.
    - ``connect_timeout`` (60): DNS + TCP + upgrade. ``send_timeout`` (30): a blocked send
      fails and aborts. ``receive_timeout`` (None): `recv` raises `Timeout`, nothing is lost.
      ``close_timeout`` (10): one deadline for `close`. ``keepalive_interval`` (30): ping while
      `recv` waits idle. ``keepalive_timeout`` (None): abort when a keepalive ping goes
      unanswered this long.
    - ``max_message_size`` (None): a longer incoming message fails the connection (1009).
    - ``permessage_deflate`` (False): offer compression (RFC 7692); `WebSocket.extensions` tells
      what was agreed. ``max_message_size`` then counts inflated bytes. Tuning (None = the
      library's default): ``deflate_window_bits`` (9-15, default 12), ``deflate_context_takeover``
      (default True; False keeps no compression state between messages),
      ``deflate_level`` (0-9, default 3), ``deflate_threshold`` (bytes, default 64: smaller
      messages sent whole go uncompressed).
    - ``tls_ca_file``: a PEM bundle that replaces the system's trust store for ``wss://``.
      ``tls_insecure_skip_verify``: skip certificate and host-name checks (tests only).
      ``tls_cert_file``/``tls_key_file``: a client certificate and its key.
      ``proxy``: ``http://host:port``, an HTTP CONNECT proxy. All are passed to the library as
      given; a library built without TLS/proxy support raises `InvalidOption`.

    Raises `InvalidUrl`, `CannotConnect`, `Timeout`, `ConnectionLost`, `ProtocolError` (the
    exception's ``http_status`` holds a non-101 response's status), `SecureFailure` (TLS),
    `TypeError`/`ValueError` for wrong arguments. The handle is released when connecting fails.
    """
    ws = WebSocket(
        url,
        subprotocols=subprotocols,
        headers=headers,
        connect_timeout=connect_timeout,
        send_timeout=send_timeout,
        receive_timeout=receive_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
        permessage_deflate=permessage_deflate,
        deflate_window_bits=deflate_window_bits,
        deflate_context_takeover=deflate_context_takeover,
        deflate_level=deflate_level,
        deflate_threshold=deflate_threshold,
        tls_ca_file=tls_ca_file,
        tls_insecure_skip_verify=tls_insecure_skip_verify,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        proxy=proxy,
    )
    try:
        return ws.connect()
    except BaseException:
        ws.close_handle()
        raise


def listen(
    url: str,
    *,
    subprotocols: Optional[Sequence[str]] = None,
    connect_timeout: Optional[float] = _DEFAULT_CONNECT_TIMEOUT,
    send_timeout: Optional[float] = _DEFAULT_SEND_TIMEOUT,
    receive_timeout: Optional[float] = None,
    close_timeout: Optional[float] = _DEFAULT_CLOSE_TIMEOUT,
    keepalive_interval: Optional[float] = _DEFAULT_KEEPALIVE_INTERVAL,
    keepalive_timeout: Optional[float] = None,
    max_message_size: Optional[int] = None,
    permessage_deflate: bool = False,
    deflate_window_bits: Optional[int] = None,
    deflate_context_takeover: Optional[bool] = None,
    deflate_level: Optional[int] = None,
    deflate_threshold: Optional[int] = None,
    tls_cert_file: Optional[str] = None,
    tls_key_file: Optional[str] = None,
) -> Listener:
    """Binds a listener on a ``ws://host:port/path`` (or ``wss://``) URL at once (port 0 picks
    a free port: read `Listener.port`). Requests for another path get HTTP 404, malformed ones 400.

    - ``subprotocols``: accepted, in order of preference.
    - ``permessage_deflate`` (False): accept compression when a client offers it, with the
      ``deflate_*`` tuning of `wshandle.connect`.
    - The timeouts and ``max_message_size`` are inherited by accepted connections;
      ``receive_timeout`` also bounds `Listener.accept` and each pending upgrade request.
    - ``tls_cert_file``/``tls_key_file``: the PEM certificate chain and key of a ``wss://``
      listener (required there).

    Raises `InvalidUrl`, `CannotConnect` (cannot bind), `TypeError`/`ValueError`.
    """
    return Listener(
        url,
        subprotocols=subprotocols,
        connect_timeout=connect_timeout,
        send_timeout=send_timeout,
        receive_timeout=receive_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
        permessage_deflate=permessage_deflate,
        deflate_window_bits=deflate_window_bits,
        deflate_context_takeover=deflate_context_takeover,
        deflate_level=deflate_level,
        deflate_threshold=deflate_threshold,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
    )
