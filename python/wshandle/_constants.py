"""The fixed constants of include/wshandle.h as IntEnums (plain ints on the wire)."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "BufferType",
    "CallbackStatus",
    "CloseStatus",
    "ErrorCode",
    "Option",
    "Operation",
    "State",
    "MAX_CLOSE_REASON_LENGTH",
]

MAX_CLOSE_REASON_LENGTH = 123


class BufferType(IntEnum):
    """WS_BUFFER_*: the kind of piece `WebSocket.recv_into` delivered (or `send` sends)."""

    BINARY_MESSAGE = 0
    BINARY_FRAGMENT = 1
    UTF8_MESSAGE = 2
    UTF8_FRAGMENT = 3
    CLOSE = 4


class State(IntEnum):
    """WS_STATE_*, as .NET's WebSocketState."""

    NONE = 0
    CONNECTING = 1
    OPEN = 2
    CLOSE_SENT = 3
    CLOSE_RECEIVED = 4
    CLOSED = 5
    ABORTED = 6


class CloseStatus(IntEnum):
    """WS_CLOSE_STATUS_*. Any int in 1000-1003, 1007-1014 and 3000-4999 may be sent."""

    SUCCESS = 1000
    ENDPOINT_TERMINATED = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA_TYPE = 1003
    EMPTY = 1005
    ABORTED = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    UNSUPPORTED_EXTENSIONS = 1010
    SERVER_ERROR = 1011
    SECURE_HANDSHAKE_ERROR = 1015


class ErrorCode(IntEnum):
    """WS_OK and WS_ERROR_*: WinHTTP's numbers."""

    OK = 0
    INVALID_HANDLE = 6
    NOT_ENOUGH_MEMORY = 8
    INVALID_PARAMETER = 87
    INSUFFICIENT_BUFFER = 122
    IO_PENDING = 997
    INVALID_OPERATION = 4317
    OUT_OF_HANDLES = 12001
    TIMEOUT = 12002
    INTERNAL = 12004
    INVALID_URL = 12005
    UNRECOGNIZED_SCHEME = 12006
    NAME_NOT_RESOLVED = 12007
    INVALID_OPTION = 12009
    OPERATION_CANCELLED = 12017
    INCORRECT_HANDLE_TYPE = 12018
    INCORRECT_HANDLE_STATE = 12019
    CANNOT_CONNECT = 12029
    CONNECTION_ERROR = 12030
    HEADER_NOT_FOUND = 12150
    INVALID_SERVER_RESPONSE = 12152
    SECURE_FAILURE = 12175


class Option(IntEnum):
    """WS_OPTION_*: the numbers `ws_set_option`/`ws_query_option` take."""

    CONNECT_TIMEOUT = 3
    SEND_TIMEOUT = 5
    RECEIVE_TIMEOUT = 6
    CLOSE_TIMEOUT = 115
    KEEPALIVE_INTERVAL = 116
    KEEPALIVE_TIMEOUT = 1001
    MAX_MESSAGE_SIZE = 1002
    SUBPROTOCOLS = 1003
    SELECTED_SUBPROTOCOL = 1004
    HTTP_STATUS = 1005
    LOCAL_PORT = 1006
    TLS_CA_FILE = 1007
    TLS_INSECURE_SKIP_VERIFY = 1008
    TLS_CERT_FILE = 1009
    TLS_KEY_FILE = 1010
    PROXY = 1011
    PERMESSAGE_DEFLATE = 1012
    EXTENSIONS = 1013
    DEFLATE_WINDOW_BITS = 1014
    DEFLATE_CONTEXT_TAKEOVER = 1015
    DEFLATE_LEVEL = 1016
    DEFLATE_THRESHOLD = 1017
    CONTEXT_VALUE = 45
    COMPLETION_QUEUE = 1100


class CallbackStatus(IntEnum):
    """WS_CALLBACK_STATUS_*: the kind of an asynchronous completion (WinHTTP's numbers)."""

    HANDLE_CLOSING = 0x00000800
    READ_COMPLETE = 0x00080000
    WRITE_COMPLETE = 0x00100000
    REQUEST_ERROR = 0x00200000
    CLOSE_COMPLETE = 0x02000000
    SHUTDOWN_COMPLETE = 0x04000000
    CONNECT_COMPLETE = 0x20000000
    ACCEPT_COMPLETE = 0x40000000


class Operation(IntEnum):
    """WS_OPERATION_*: which operation a ``REQUEST_ERROR`` completion ended."""

    SEND = 0
    RECEIVE = 1
    CLOSE = 2
    SHUTDOWN = 3
    CONNECT = 4
    ACCEPT = 5
