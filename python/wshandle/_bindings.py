"""The only module that touches ctypes: loads libwshandle and declares every exported function.

Signatures follow include/wshandle.h exactly, with one deliberate liberty: out-pointers and
buffers are declared ``c_void_p`` so hot paths can pass a raw address (an ``int``) computed
once, instead of building a ``byref``/``POINTER`` object per call. Everything else in the
package goes through the small helpers at the bottom of this module.

ctypes releases the GIL around every call (``CDLL``, not ``PyDLL``), so a thread blocked in
``ws_receive`` never stalls other Python threads.
"""

from __future__ import annotations

import array as _array
import ctypes
import os
import struct
import sys
from ctypes import addressof, c_char, c_char_p, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p

TYPE_CHECKING = False  # `typing` costs more to import than the rest of the package
if TYPE_CHECKING:
    from typing import Any, List, Tuple

__all__ = ["lib", "library_path"]

ENV_VAR = "WSHANDLE_LIBRARY"

if sys.platform == "darwin":  # pragma: no cover - the project builds and tests on Linux
    _LIB_NAME = "libwshandle.dylib"
elif sys.platform == "win32":  # pragma: no cover
    _LIB_NAME = "wshandle.dll"
else:
    _LIB_NAME = "libwshandle.so"


class LibraryNotFoundError(ImportError):
    """libwshandle could be found neither next to the package nor through WSHANDLE_LIBRARY."""


def _find_library() -> str:
    """Next to the package first (where `pip install ./python` puts it), then
    ``$WSHANDLE_LIBRARY``. Never the current directory, never the system's search path."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = os.path.join(here, _LIB_NAME)
    if os.path.isfile(beside):
        return beside
    env = os.environ.get(ENV_VAR)
    if env:
        if os.path.isfile(env):
            return os.path.abspath(env)
        raise LibraryNotFoundError(
            f"wshandle: {ENV_VAR}={env!r} is not a file. Point it at the built library, e.g. "
            f"{ENV_VAR}=/path/to/wshandle/target/release/{_LIB_NAME} "
            "(after `cargo build --release` in the repository)."
        )
    raise LibraryNotFoundError(
        f"wshandle: the native library {_LIB_NAME} was not found.\n"
        f"  looked in: {beside} (not there)\n"
        f"  and ${ENV_VAR}: not set\n"
        "Either install the package with the library built in:\n"
        "    pip install ./python            (from the repository root; needs cargo)\n"
        "or build it and say where it is:\n"
        "    cargo build --release\n"
        f"    export {ENV_VAR}=$PWD/target/release/{_LIB_NAME}"
    )


library_path: str = _find_library()
try:
    lib = ctypes.CDLL(library_path)
except OSError as e:  # a broken or foreign file
    raise LibraryNotFoundError(f"wshandle: cannot load {library_path}: {e}") from e


def _declare(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


ws_handle = c_uint64
ws_error = c_uint32

# Pointers that the library writes through (out-parameters) and buffers are c_void_p: callers
# pass an int address (see `OutSlot`, `writable_address`) or bytes/None for const buffers.
ws_version = _declare("ws_version", c_char_p)
ws_error_name = _declare("ws_error_name", c_char_p, ws_error)
ws_last_error_message = _declare("ws_last_error_message", c_size_t, c_void_p, c_size_t)
ws_open = _declare("ws_open", ws_error, c_char_p, c_void_p)
ws_set_option = _declare("ws_set_option", ws_error, ws_handle, c_uint32, c_void_p, c_size_t)
ws_query_option = _declare("ws_query_option", ws_error, ws_handle, c_uint32, c_void_p, c_void_p)
ws_add_request_header = _declare("ws_add_request_header", ws_error, ws_handle, c_char_p, c_char_p)
ws_connect = _declare("ws_connect", ws_error, ws_handle)
ws_listen = _declare("ws_listen", ws_error, c_char_p, c_void_p)
ws_accept = _declare("ws_accept", ws_error, ws_handle, c_void_p)
ws_send = _declare("ws_send", ws_error, ws_handle, c_uint32, c_void_p, c_size_t)
ws_send_batch = _declare("ws_send_batch", ws_error, ws_handle, c_void_p, c_size_t)
ws_receive = _declare("ws_receive", ws_error, ws_handle, c_void_p, c_size_t, c_void_p, c_void_p)
ws_shutdown = _declare("ws_shutdown", ws_error, ws_handle, c_uint16, c_void_p, c_size_t)
ws_close = _declare("ws_close", ws_error, ws_handle, c_uint16, c_void_p, c_size_t)
ws_query_close_status = _declare(
    "ws_query_close_status", ws_error, ws_handle, c_void_p, c_void_p, c_size_t, c_void_p
)
ws_query_state = _declare("ws_query_state", ws_error, ws_handle, c_void_p)
ws_close_handle = _declare("ws_close_handle", ws_error, ws_handle)

# API.md lists ws_query_response_header; this build of the library may not export it yet.
try:
    ws_query_response_header = _declare(
        "ws_query_response_header", ws_error, ws_handle, c_char_p, c_void_p, c_size_t, c_void_p
    )
except AttributeError:
    ws_query_response_header = None

# The asynchronous mode (a status callback or a completion queue; see the header).
# wshandle.asyncio uses the completion queue; the status callback is declared so that every
# exported function has its signature.
ws_status_callback = ctypes.CFUNCTYPE(None, ws_handle, c_void_p, c_uint32, c_void_p, c_size_t)
ws_set_status_callback = _declare(
    "ws_set_status_callback", ws_error, ws_handle, ws_status_callback
)
ws_queue_create = _declare("ws_queue_create", ws_error, c_void_p)
ws_queue_wait = _declare(
    "ws_queue_wait", ws_error, ws_handle, c_void_p, c_size_t, c_void_p, c_uint32
)
ws_queue_fd = _declare("ws_queue_fd", ws_error, ws_handle, c_void_p)



class WebSocketStatus(ctypes.Structure):
    """``ws_web_socket_status``."""

    _fields_ = [("bytes_transferred", c_size_t), ("buffer_type", c_uint32)]


class AsyncResult(ctypes.Structure):
    """``ws_async_result``."""

    _fields_ = [("operation", c_uint32), ("error", c_uint32)]


class Completion(ctypes.Structure):
    """``ws_completion``, one record of ``ws_queue_wait`` (its layout is checked against
    `COMPLETION_RECORD`, which wshandle.asyncio unpacks many records with at once)."""

    _fields_ = [
        ("handle", c_uint64),
        ("context", c_void_p),
        ("status", c_uint32),
        ("io", WebSocketStatus),
        ("result", AsyncResult),
        ("accepted", c_uint64),
    ]


#: handle, context, status, bytes_transferred, buffer_type, operation, error, accepted
COMPLETION_RECORD = struct.Struct("=QQI4xQI4xIIQ")
assert ctypes.sizeof(Completion) == COMPLETION_RECORD.size == 56, "ws_completion's layout"
assert Completion.accepted.offset == 48 and Completion.result.offset == 40



class CompletionBuffer:
    """Room for ``records`` completions and the count of one ``ws_queue_wait`` call, with
    their addresses; ``view`` is the records' bytes (unpack them with `COMPLETION_RECORD`)."""

    __slots__ = ("data", "view", "addr", "count", "count_addr", "_anchor")

    def __init__(self, records: int) -> None:
        self.data = bytearray(COMPLETION_RECORD.size * records)
        self._anchor = c_char.from_buffer(self.data)
        self.addr = addressof(self._anchor)
        self.view = memoryview(self.data)
        self.count = c_size_t()
        self.count_addr = addressof(self.count)


string_at = ctypes.string_at

# ---- helpers for the rest of the package -------------------------------------------------


def version() -> str:
    return str(ws_version().decode("ascii"))


def error_name(code: int) -> str:
    return str(ws_error_name(code).decode("ascii"))


def last_error_message() -> str:
    """This thread's detail of its latest failed call (call it right after the failure)."""
    buf = ctypes.create_string_buffer(256)
    n = ws_last_error_message(addressof(buf), 256)
    if n >= 256:
        buf = ctypes.create_string_buffer(n + 1)
        n = ws_last_error_message(addressof(buf), n + 1)
    return buf.raw[: min(n, len(buf) - 1)].decode("utf-8", "replace")


class OutSlot:
    """Preallocated out-parameters for one object's hot calls: ``ws_receive``'s byte count and
    buffer type, a handle for ``ws_open``/``ws_listen``/``ws_accept``. Their addresses are
    computed once and passed as ints."""

    __slots__ = ("size", "u32", "handle", "size_addr", "u32_addr", "handle_addr")

    def __init__(self) -> None:
        self.size = c_size_t()
        self.u32 = c_uint32()
        self.handle = c_uint64()
        self.size_addr = addressof(self.size)
        self.u32_addr = addressof(self.u32)
        self.handle_addr = addressof(self.handle)


class ReceiveBuffer:
    """A fixed bytearray with its address, for `WebSocket.recv` (one per WebSocket, made on
    first use). The export held by ``_anchor`` keeps the bytearray from ever being resized."""

    __slots__ = ("data", "size", "addr", "_anchor")

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.size = size
        self._anchor = c_char.from_buffer(self.data)
        self.addr = addressof(self._anchor)


def writable_address(buffer: Any) -> Tuple[int, int, Any]:
    """(address, length in bytes, keep-alive) of a writable, C-contiguous buffer. The
    keep-alive object holds a buffer export: keep it referenced until the C call returns
    (it also stops a bytearray from being resized meanwhile)."""
    anchor: Any
    if type(buffer) is bytearray:
        n = len(buffer)
        if n == 0:
            raise ValueError("recv_into needs a buffer of at least 1 byte")
        anchor = c_char.from_buffer(buffer)
        return addressof(anchor), n, anchor
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            f"recv_into needs a writable bytes-like object (bytearray, memoryview, array, "
            f"mmap, ...), not {type(buffer).__name__}"
        ) from None
    if view.readonly:
        raise TypeError(f"recv_into needs a writable buffer; {type(buffer).__name__} is read-only")
    if not view.c_contiguous:
        raise ValueError("recv_into needs a C-contiguous buffer")
    n = view.nbytes
    if n == 0:
        raise ValueError("recv_into needs a buffer of at least 1 byte")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    anchor = (c_char * n).from_buffer(view)
    return addressof(anchor), n, anchor


def send_argument(data: Any) -> Tuple[Any, int, Any]:
    """(argument for ws_send's ``buf``, length, keep-alive) for a bytes-like object other than
    ``bytes`` (the caller passes ``bytes`` straight through): a writable C-contiguous buffer is
    passed by address without a copy; a read-only one (a bytes subclass, a read-only
    memoryview) is copied once into ``bytes``."""
    view = memoryview(data)  # TypeError for non-buffers, handled by the caller
    if not view.c_contiguous:
        raise ValueError("send needs a C-contiguous buffer")
    n = view.nbytes
    if n == 0:
        return None, 0, None
    if view.readonly:
        b = view.tobytes()
        return b, n, b
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    array = (c_char * n).from_buffer(view)
    return addressof(array), n, array


class _BatchItem(ctypes.Structure):
    _fields_ = [("buffer_type", c_uint32), ("buf", c_void_p), ("len", c_size_t)]


# ws_batch_item is {uint32_t, 4 bytes of padding, pointer, size_t}: on a 64-bit little-endian
# machine that is three native 64-bit words, which `array` fills far faster than ctypes.
_WORDS = (
    sys.byteorder == "little"
    and ctypes.sizeof(_BatchItem) == 24
    and _array.array("Q").itemsize == 8
)


def batch_argument(messages: Any) -> Tuple[int, int, Any]:
    """(address of a ``ws_batch_item`` array, count, keep-alive) for ws_send_batch: each
    message whole, ``str`` as text and bytes-like as binary. The payloads are copied once into
    one buffer (one copy of small messages costs less than one ctypes object each)."""
    parts: List[bytes] = []
    meta: List[int] = []
    offset = 0
    for m in messages:
        t = type(m)
        if t is bytes:
            kind = 0
        elif t is str:
            m = m.encode("utf-8")
            kind = 2
        else:
            try:
                m = memoryview(m).tobytes()
            except TypeError:
                raise TypeError(
                    f"send_many needs str or bytes-like messages, not {t.__name__}"
                ) from None
            kind = 0
        n = len(m)
        parts.append(m)
        meta += (kind, offset, n)
        offset += n
    count = len(parts)
    blob = b"".join(parts)
    base = ctypes.cast(blob, c_void_p).value or 0  # type: ignore[arg-type]
    if _WORDS:
        items: Any = _array.array("Q", meta)
        items[1::3] = _array.array("Q", map(base.__add__, items[1::3]))
        return items.buffer_info()[0], count, (items, blob)
    items = (_BatchItem * count)()  # pragma: no cover - other machines
    for i in range(count):  # pragma: no cover
        items[i] = _BatchItem(meta[3 * i], base + meta[3 * i + 1], meta[3 * i + 2])
    return addressof(items), count, (items, blob)  # pragma: no cover


def open_handle(url: bytes) -> Tuple[int, int]:
    """ws_open: (result code, handle)."""
    h = c_uint64()
    rc = ws_open(url, addressof(h))
    return rc, h.value


def listen_handle(url: bytes) -> Tuple[int, int]:
    """ws_listen: (result code, listener handle)."""
    h = c_uint64()
    rc = ws_listen(url, addressof(h))
    return rc, h.value


def set_u32(h: int, option: int, value: int) -> int:
    v = c_uint32(value)
    return int(ws_set_option(h, option, addressof(v), 4))


def set_u64(h: int, option: int, value: int) -> int:
    v = c_uint64(value)
    return int(ws_set_option(h, option, addressof(v), 8))


def set_string(h: int, option: int, value: bytes) -> int:
    # ws_set_option takes the string's bytes, with or without a terminating NUL; a NULL
    # value is an error even for the empty string, so always pass a real buffer.
    buf = ctypes.create_string_buffer(value, len(value) + 1)
    return int(ws_set_option(h, option, addressof(buf), len(value)))


def query_u32(h: int, option: int) -> Tuple[int, int]:
    v = c_uint32()
    n = c_size_t(4)
    rc = ws_query_option(h, option, addressof(v), addressof(n))
    return rc, v.value


def query_u64(h: int, option: int) -> Tuple[int, int]:
    v = c_uint64()
    n = c_size_t(8)
    rc = ws_query_option(h, option, addressof(v), addressof(n))
    return rc, v.value


def query_string(h: int, option: int) -> Tuple[int, bytes]:
    """A string option (without its NUL); asks for the size first."""
    n = c_size_t(0)
    rc = ws_query_option(h, option, None, addressof(n))
    if rc != INSUFFICIENT_BUFFER:
        return rc, b""
    buf = ctypes.create_string_buffer(max(n.value, 1))
    rc = ws_query_option(h, option, addressof(buf), addressof(n))
    return rc, buf.raw[: n.value].rstrip(b"\0")


def query_state(h: int) -> Tuple[int, int]:
    v = c_uint32()
    rc = ws_query_state(h, addressof(v))
    return rc, v.value


def query_close_status(h: int) -> Tuple[int, int, bytes]:
    """(result code, status, reason bytes)."""
    status = c_uint16()
    consumed = c_size_t()
    reason = ctypes.create_string_buffer(MAX_CLOSE_REASON_LENGTH)
    rc = ws_query_close_status(
        h, addressof(status), addressof(reason), MAX_CLOSE_REASON_LENGTH, addressof(consumed)
    )
    return rc, status.value, reason.raw[: consumed.value]


def query_handshake_header(h: int, name: bytes) -> Tuple[int, bytes]:
    """ws_query_response_header: (result code, value without the NUL); asks for the size
    first (reported with the NUL on WS_ERROR_INSUFFICIENT_BUFFER)."""
    if ws_query_response_header is None:
        raise NotImplementedError(
            f"this build of libwshandle ({library_path}) does not export ws_query_response_header"
        )
    n = c_size_t(0)
    rc = ws_query_response_header(h, name, None, 0, addressof(n))
    if rc != INSUFFICIENT_BUFFER:
        return rc, b""
    buf = ctypes.create_string_buffer(max(n.value, 1))
    rc = ws_query_response_header(h, name, addressof(buf), len(buf), addressof(n))
    return rc, buf.raw[: n.value]


def queue_create() -> Tuple[int, int]:
    """ws_queue_create: (result code, queue handle)."""
    h = c_uint64()
    rc = ws_queue_create(addressof(h))
    return rc, h.value


def queue_fd(queue: int) -> Tuple[int, int]:
    """ws_queue_fd: (result code, descriptor)."""
    fd = ctypes.c_int()
    rc = ws_queue_fd(queue, addressof(fd))
    return rc, fd.value


def accept_handle(listener: int, slot: OutSlot) -> Tuple[int, int]:
    rc = ws_accept(listener, slot.handle_addr)
    return rc, slot.handle.value


INSUFFICIENT_BUFFER = 122
MAX_CLOSE_REASON_LENGTH = 123
