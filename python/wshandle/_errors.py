"""Result codes as exceptions.

Every failing C call becomes a `WsError` (or the subclass for its code) carrying ``.code``,
``.name`` and ``.detail``, the text of ``ws_last_error_message`` read on the same thread right
after the call. Subclasses also derive from the built-in exception people already catch:
`Timeout` is a `TimeoutError`, `CannotConnect` and `ConnectionLost` are each a `ConnectionError`,
`InvalidParameter` and `InvalidUrl` each a `ValueError`.
"""

from __future__ import annotations

import re

from . import _bindings
from ._constants import ErrorCode, Option

TYPE_CHECKING = False  # `typing` costs more to import than the rest of the package
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple, Type

__all__ = [
    "WsError",
    "InvalidHandle",
    "InvalidParameter",
    "InvalidOperation",
    "IncorrectHandleState",
    "Timeout",
    "InvalidUrl",
    "InvalidOption",
    "Cancelled",
    "CannotConnect",
    "ConnectionLost",
    "ProtocolError",
    "OutOfHandles",
    "SecureFailure",
]


class WsError(Exception):
    """A wshandle call failed. ``code`` is the WS_ERROR_* number, ``name`` its name
    (``"WS_ERROR_TIMEOUT"``), ``detail`` the library's explanation for this failure."""

    code: int
    name: str
    detail: str
    #: For a failed `connect`: the HTTP status of the upgrade response, when one arrived.
    http_status: Optional[int] = None

    def __init__(self, code: int, name: str, detail: str = "") -> None:
        self.code = int(code)
        self.name = name
        self.detail = detail
        message = f"{name} ({self.code})" + (f": {detail}" if detail else "")
        # One positional argument: OSError-derived subclasses then take it as the message,
        # not as (errno, strerror).
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0] if self.args else self.name

    def __reduce__(self) -> Tuple[Any, ...]:  # keeps exceptions picklable across processes
        return (self.__class__, (self.code, self.name, self.detail))


class InvalidHandle(WsError):
    """WS_ERROR_INVALID_HANDLE: the handle was released (`close_handle`) or never valid."""


class InvalidParameter(WsError, ValueError):
    """WS_ERROR_INVALID_PARAMETER: a bad status or reason, mixed fragment types, invalid
    UTF-8 in a text send, a header the handshake owns, ... Nothing was sent."""


class InvalidOperation(WsError):
    """WS_ERROR_INVALID_OPERATION: not allowed in the connection's state, or a conflicting
    call (a second `recv`, a second sending call) is in progress. Nothing changed."""


class IncorrectHandleState(InvalidOperation):
    """WS_ERROR_INCORRECT_HANDLE_STATE: e.g. a connect-time option after `connect`."""


class Timeout(WsError, TimeoutError):
    """WS_ERROR_TIMEOUT: a timeout option expired. After a receive timeout the connection is
    still usable and nothing is lost; after a send, close or keepalive timeout it is aborted."""


class InvalidUrl(WsError, ValueError):
    """WS_ERROR_INVALID_URL or WS_ERROR_UNRECOGNIZED_SCHEME."""


class InvalidOption(WsError):
    """WS_ERROR_INVALID_OPTION: the option does not apply to this handle (or, in a build of the
    library without TLS/proxy support, a TLS or proxy option)."""


class Cancelled(WsError):
    """WS_ERROR_OPERATION_CANCELLED: `close` or `close_handle` on another thread ended the call."""


class CannotConnect(WsError, ConnectionError):
    """WS_ERROR_CANNOT_CONNECT (refused, unreachable, cannot bind) or
    WS_ERROR_NAME_NOT_RESOLVED."""


class ConnectionLost(WsError, ConnectionError):
    """WS_ERROR_CONNECTION_ERROR: the transport failed or the peer dropped TCP without a close
    frame. The connection is aborted; `close_status` reports 1006."""


class ProtocolError(WsError):
    """WS_ERROR_INVALID_SERVER_RESPONSE: the peer broke the protocol (bad handshake response,
    bad frame, invalid UTF-8, oversized message). It was sent 1002/1007/1009; aborted."""


class OutOfHandles(WsError, OSError):
    """WS_ERROR_OUT_OF_HANDLES: the process has no file descriptors left (EMFILE/ENFILE);
    close connections or raise the open-files limit (``ulimit -n``)."""


class SecureFailure(WsError):
    """WS_ERROR_SECURE_FAILURE: the TLS handshake or a certificate check failed (the detail
    says why: unknown issuer, expired, wrong name, ...)."""


_CLASSES: Dict[int, Type[WsError]] = {
    ErrorCode.INVALID_HANDLE: InvalidHandle,
    ErrorCode.INVALID_PARAMETER: InvalidParameter,
    ErrorCode.INVALID_OPERATION: InvalidOperation,
    ErrorCode.INCORRECT_HANDLE_STATE: IncorrectHandleState,
    ErrorCode.TIMEOUT: Timeout,
    ErrorCode.OUT_OF_HANDLES: OutOfHandles,
    ErrorCode.INVALID_URL: InvalidUrl,
    ErrorCode.UNRECOGNIZED_SCHEME: InvalidUrl,
    ErrorCode.INVALID_OPTION: InvalidOption,
    ErrorCode.OPERATION_CANCELLED: Cancelled,
    ErrorCode.CANNOT_CONNECT: CannotConnect,
    ErrorCode.NAME_NOT_RESOLVED: CannotConnect,
    ErrorCode.CONNECTION_ERROR: ConnectionLost,
    ErrorCode.INVALID_SERVER_RESPONSE: ProtocolError,
    ErrorCode.SECURE_FAILURE: SecureFailure,
}
_CLASSES = {int(k): v for k, v in _CLASSES.items()}
_NAMES: Dict[int, str] = {}


def error_name(code: int) -> str:
    """``ws_error_name``: ``"WS_ERROR_TIMEOUT"`` for 12002; ``"WS_ERROR_UNKNOWN"`` otherwise."""
    name = _NAMES.get(code)
    if name is None:
        name = _NAMES[code] = _bindings.error_name(code)
    return name


#: WS_OPTION_* names whose Python keyword is not simply the name in lower case.
_KEYWORDS: Dict[str, str] = {"SELECTED_SUBPROTOCOL": "subprotocol"}
_OPTION_NAME = re.compile(r"WS_OPTION_([A-Z_]+)")


def _with_keywords(detail: str) -> str:
    """Names the Python keyword next to each C option the library's detail mentions:
    ``WS_OPTION_RECEIVE_TIMEOUT`` becomes ``receive_timeout (WS_OPTION_RECEIVE_TIMEOUT)``."""
    if "WS_OPTION_" not in detail:
        return detail

    def keyword(m: "re.Match[str]") -> str:
        name = m.group(1)
        if name not in Option.__members__:
            return m.group(0)
        return f"{_KEYWORDS.get(name, name.lower())} ({m.group(0)})"

    return _OPTION_NAME.sub(keyword, detail)


def error_for(code: int) -> WsError:
    """The exception for a failed call's result code. Call it on the failing thread right after
    the call: it reads that thread's ``ws_last_error_message``."""
    detail = _with_keywords(_bindings.last_error_message())
    return _CLASSES.get(code, WsError)(code, error_name(code), detail)


#: WS_OPERATION_* -> (what the completion ended, the timeout option that bounds it)
_OPERATIONS: Dict[int, Tuple[str, str]] = {
    0: ("send", "send_timeout (WS_OPTION_SEND_TIMEOUT): the connection is aborted"),
    1: (
        "receive",
        "receive_timeout (WS_OPTION_RECEIVE_TIMEOUT): the connection is still open and nothing "
        "was lost",
    ),
    2: ("close", "close_timeout (WS_OPTION_CLOSE_TIMEOUT): the connection is aborted"),
    3: ("shutdown", "send_timeout (WS_OPTION_SEND_TIMEOUT): the connection is aborted"),
    4: ("connect", "connect_timeout (WS_OPTION_CONNECT_TIMEOUT)"),
    5: ("accept", "receive_timeout (WS_OPTION_RECEIVE_TIMEOUT) of the listener"),
}


def error_for_completion(code: int, operation: int) -> WsError:
    """The exception for an asynchronous operation that completed with ``code`` (a
    ``REQUEST_ERROR`` completion, which carries no message of its own)."""
    what, timeout = _OPERATIONS.get(operation, ("operation", "its timeout"))
    if code == ErrorCode.TIMEOUT:
        detail = f"the asynchronous {what} did not finish within {timeout}"
    elif code == ErrorCode.OPERATION_CANCELLED:
        detail = f"the asynchronous {what} was cancelled by close() or close_handle()"
    else:
        detail = f"the asynchronous {what} failed"
    return _CLASSES.get(code, WsError)(code, error_name(code), detail)
