"""wshandle: WebSockets in the style of WinHTTP, over ctypes and libwshandle.

Blocking calls that are safe from any thread, result codes as exceptions, and both of WinHTTP's
ways to close: `WebSocket.shutdown` (send your close frame, keep receiving until the peer's)
and `WebSocket.close` (the whole handshake under one deadline)::

    import wshandle

    with wshandle.connect("ws://127.0.0.1:9001/echo", receive_timeout=5) as ws:
        ws.send("hello")
        print(ws.recv())
    # leaving the block closes (bounded by close_timeout) and releases the handle

The native library is loaded from this package's directory (where ``pip install ./python`` puts
it), else from ``$WSHANDLE_LIBRARY``.
"""

from __future__ import annotations

from . import _bindings
from ._constants import (
    MAX_CLOSE_REASON_LENGTH,
    BufferType,
    CloseStatus,
    ErrorCode,
    Option,
    State,
)
from ._errors import (
    Cancelled,
    CannotConnect,
    ConnectionLost,
    IncorrectHandleState,
    InvalidHandle,
    InvalidOperation,
    InvalidOption,
    InvalidParameter,
    InvalidUrl,
    OutOfHandles,
    ProtocolError,
    SecureFailure,
    Timeout,
    WsError,
    error_name,
)
from ._websocket import Listener, WebSocket, connect, listen

#: The version of libwshandle that was loaded (``ws_version()``); the package has the same.
__version__: str = _bindings.version()
#: Where the native library was loaded from.
library_path: str = _bindings.library_path
LibraryNotFoundError = _bindings.LibraryNotFoundError


def version() -> str:
    """``ws_version()``: the loaded library's version, ``"MAJOR.MINOR.PATCH"``."""
    return _bindings.version()


__all__ = [
    "BufferType",
    "Cancelled",
    "CannotConnect",
    "CloseStatus",
    "ConnectionLost",
    "ErrorCode",
    "IncorrectHandleState",
    "InvalidHandle",
    "InvalidOperation",
    "InvalidOption",
    "InvalidParameter",
    "InvalidUrl",
    "LibraryNotFoundError",
    "Listener",
    "MAX_CLOSE_REASON_LENGTH",
    "Option",
    "OutOfHandles",
    "ProtocolError",
    "SecureFailure",
    "State",
    "Timeout",
    "WebSocket",
    "WsError",
    "connect",
    "error_name",
    "library_path",
    "listen",
    "version",
]
