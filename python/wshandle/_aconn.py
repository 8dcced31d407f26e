"""`wshandle.asyncio.WebSocket`: a connection handle bound to the loop's completion queue.

Every operation starts with one non-blocking C call (``WS_ERROR_IO_PENDING``) and ends with
its one completion, which `CompletionQueue` hands to `WebSocket._complete` on the loop's
thread. What users rely on, and how it is kept:

- Cancelling ``recv()`` loses nothing: the library's receive (and the receive buffer it writes
  into) belongs to the connection, not to the awaiting task. When the task is cancelled, the
  receive stays pending; its piece, and the pieces of a message already assembled, are kept
  and the next ``recv()`` returns the whole message.
- A message that ``send()`` handed to the library is always written whole, in call order:
  cancellation only stops the wait for buffer space (see `WebSocket.send`). A fragmented
  message interrupted by cancellation is never continued by a later, unrelated send: further
  sends raise `InvalidOperation` until the connection is closed.
- ``close()`` is bounded by ``close_timeout`` inside the library.
"""

from __future__ import annotations

import asyncio
from collections import deque

from . import _bindings as _b
from . import _websocket as _sync
from ._aqueue import CompletionQueue
from ._constants import BufferType, CallbackStatus, ErrorCode, Operation, Option, State
from ._errors import InvalidOperation, WsError, error_for, error_for_completion, error_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, AsyncIterator, Deque, List, Optional, Tuple, Union

    Data = Union[bytes, str]
    Piece = Tuple[int, bytes, int]  # (error code, data, buffer type)

__all__ = ["WebSocket"]

_IO_PENDING = int(ErrorCode.IO_PENDING)
_TIMEOUT = int(ErrorCode.TIMEOUT)
_READ = int(CallbackStatus.READ_COMPLETE)
_WRITE = int(CallbackStatus.WRITE_COMPLETE)
_ERROR = int(CallbackStatus.REQUEST_ERROR)
_OP_SEND = int(Operation.SEND)
_OP_RECEIVE = int(Operation.RECEIVE)
_BUFFER_TYPES = tuple(BufferType)
_ws_send = _b.ws_send
_ws_receive = _b.ws_receive
_string_at = _b.string_at

#: The receive buffer starts small (idle connections stay cheap) and grows to the large size
#: the first time a piece fills it.
_RBUF_SMALL = 4096
_RBUF_LARGE = 64 * 1024
#: `send` returns at once while at most this many bytes wait to be written; above it, it
#: waits until they are down to `_SEND_LOW`.
_SEND_HIGH = 1 << 20
_SEND_LOW = 256 * 1024


def _busy(what: str) -> InvalidOperation:
    code = ErrorCode.INVALID_OPERATION
    return InvalidOperation(
        code, error_name(code), f"another {what} is in progress on this connection (another task)"
    )


def _refused(detail: str) -> InvalidOperation:
    code = ErrorCode.INVALID_OPERATION
    return InvalidOperation(code, error_name(code), detail)


class WebSocket:
    """An asynchronous WebSocket connection (from `wshandle.asyncio.connect` or
    `Listener.accept`), usable from the event loop it was made in.

    ``async with`` closes it on exit (1000, or 1011 when an exception propagates; bounded by
    ``close_timeout``) and releases the handle. One task may ``recv()`` while others
    ``send()``; a second concurrent ``recv()`` raises `InvalidOperation`.
    """

    __slots__ = (
        "_ws",
        "_h",
        "_q",
        "_loop",
        "_rbuf",
        "_rx_pending",
        "_rx_waiter",
        "_rx_ready",
        "_rx_busy",
        "_rx_parts",
        "_rx_text",
        "_sends",
        "_send_bytes",
        "_send_error",
        "_drain_waiter",
        "_fragment_broken",
        "_op_waiters",
        "_closed",
    )

    def __init__(self, ws: _sync.WebSocket, queue: CompletionQueue, bound: bool = False) -> None:
        self._ws = ws
        self._h = ws.handle
        self._q = queue
        self._loop = asyncio.get_running_loop()
        self._rbuf: Optional[_b.ReceiveBuffer] = None
        self._rx_pending = False  # a ws_receive is pending in the library
        self._rx_waiter: Optional[asyncio.Future[Piece]] = None
        self._rx_ready: Deque[Piece] = deque()  # pieces nobody waited for (cancelled recv)
        self._rx_busy = False
        self._rx_parts: Optional[List[bytes]] = None  # a message being assembled
        self._rx_text = False
        self._sends: Deque[bytes] = deque()  # payloads until their WRITE_COMPLETE
        self._send_bytes = 0
        self._send_error: Optional[WsError] = None
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        self._fragment_broken = False
        #: WS_OPERATION_* -> the future of connect/shutdown/close
        self._op_waiters: dict[int, asyncio.Future[None]] = {}
        self._closed: asyncio.Future[None] = self._loop.create_future()
        if bound:
            queue.adopt(self._h, self)
        else:
            queue.bind(self._h, self)

    def __repr__(self) -> str:
        try:
            state = self.state.name
        except WsError:
            state = "?"
        released = " released" if self._ws.released else ""
        return f"<wshandle.asyncio.WebSocket handle={self._h:#x} state={state}{released}>"

    # ---- completions (called by the queue on the loop's thread) ---------------------------

    def _complete(
        self, status: int, count: int, buffer_type: int, operation: int, error: int, _acc: int
    ) -> None:
        if status == _READ:
            self._received(0, count, buffer_type)
        elif status == _WRITE:
            self._written(None)
        elif status == _ERROR:
            if operation == _OP_RECEIVE:
                self._received(error, 0, 0)
            elif operation == _OP_SEND:
                self._written(error_for_completion(error, operation))
            else:
                self._operation_done(operation, error_for_completion(error, operation))
        elif status == CallbackStatus.CLOSE_COMPLETE:
            self._operation_done(Operation.CLOSE, None)
        elif status == CallbackStatus.SHUTDOWN_COMPLETE:
            self._operation_done(Operation.SHUTDOWN, None)
        elif status == CallbackStatus.CONNECT_COMPLETE:
            self._operation_done(Operation.CONNECT, None)

    def _received(self, error: int, count: int, buffer_type: int) -> None:
        self._rx_pending = False
        buf = self._rbuf
        data = b""
        if not error and buf is not None:
            data = _string_at(buf.addr, count)
            if count == buf.size and buf.size < _RBUF_LARGE:
                self._rbuf = _b.ReceiveBuffer(_RBUF_LARGE)
        piece = (error, data, buffer_type)
        waiter = self._rx_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(piece)
        elif error != _TIMEOUT:  # a receive timeout nobody waits for means nothing
            self._rx_ready.append(piece)

    def _written(self, error: Optional[WsError]) -> None:
        if self._sends:
            self._send_bytes -= len(self._sends.popleft())
        if error is not None and self._send_error is None:
            self._send_error = error
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            if error is not None:
                waiter.set_exception(error)
            elif self._send_bytes <= _SEND_LOW:
                waiter.set_result(None)

    def _operation_done(self, operation: int, error: Optional[WsError]) -> None:
        waiter = self._op_waiters.pop(operation, None)
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            if operation == Operation.CONNECT:
                rc, status = _b.query_u32(self._h, Option.HTTP_STATUS)
                if rc == 0 and status:
                    error.http_status = status
            waiter.set_exception(error)

    def _handle_closing(self) -> None:
        self._rbuf = None
        self._sends.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    # ---- connecting -----------------------------------------------------------------------

    async def _connect(self) -> "WebSocket":
        await self._start(Operation.CONNECT, _b.ws_connect(self._h))
        return self

    async def _start(self, operation: int, rc: int) -> None:
        """Waits for the completion of an operation whose C call returned ``rc``."""
        if rc != _IO_PENDING:
            raise error_for(rc)
        waiter = self._op_waiters[operation] = self._loop.create_future()
        await waiter

    # ---- sending --------------------------------------------------------------------------

    async def send(self, data: Union[str, bytes, bytearray, memoryview], *,
                   text: Optional[bool] = None) -> None:
        """Sends one whole message: ``str`` as text, bytes-like as binary (``text=True`` sends
        UTF-8 bytes as text, ``text=False`` a str as binary). Allowed in OPEN and
        CLOSE_RECEIVED.

        Returns as soon as the library has the message, while less than 1 MiB waits to be
        written; otherwise once that is down to 256 KiB (flow control, as asyncio's
        ``drain``). A message handed to the library is written whole, in call order, even if
        the task is then cancelled; a later failure to write it (send timeout, connection
        lost) aborts the connection and is raised by the next ``send``. bytes are sent without
        a copy; other bytes-like objects are copied once.

        Raises `InvalidOperation` (state), `InvalidParameter` (invalid UTF-8, a fragmented
        message of the other type is open), `Timeout`/`ConnectionLost` (an earlier message
        could not be written)."""
        if type(data) is bytes:
            kind = 2 if text else 0
        elif type(data) is str:
            data = data.encode("utf-8")
            kind = 0 if text is False else 2
        else:
            data = self._copy(data)
            kind = 2 if text else 0
        if self._fragment_broken or self._send_error is not None:
            self._check_fragments()
        # the common case inline (no second coroutine): the library takes it, no waiting
        if self._post(data, kind):
            await self._drain()

    async def send_fragment(self, data: Union[str, bytes, bytearray, memoryview],
                            final: bool = False, *, text: Optional[bool] = None) -> None:
        """Sends one piece of a fragmented message (``final=False`` starts or continues it,
        ``final=True`` ends it); types as for `send`, and every piece must have the message's
        type. When the task is cancelled while a piece waits for buffer space, the piece is
        still written whole, but the message can no longer be finished correctly: every later
        send raises `InvalidOperation` (close the connection)."""
        if type(data) is str:
            data = data.encode("utf-8")
            kind = 0 if text is False else 2
        else:
            if type(data) is not bytes:
                data = self._copy(data)
            kind = 2 if text else 0
        if not final:
            kind += 1
        self._check_fragments()
        try:
            await self._send(data, kind)
        except asyncio.CancelledError:
            if not final:
                self._fragment_broken = True
            raise

    @staticmethod
    def _copy(data: Any) -> bytes:
        try:
            return bytes(memoryview(data).cast("B"))
        except TypeError:
            raise TypeError(
                f"send needs str or a bytes-like object, not {type(data).__name__}"
            ) from None

    def _check_fragments(self) -> None:
        error = self._send_error
        if error is not None:
            raise error
        if self._fragment_broken:
            raise _refused(
                "a fragmented message was interrupted by cancellation while a piece waited; "
                "it cannot be finished any more: close the connection"
            )

    async def _send(self, data: bytes, kind: int) -> None:
        self._check_fragments()
        if self._post(data, kind):
            await self._drain()

    def _post(self, data: bytes, kind: int) -> bool:
        """Starts one send (kept until its WRITE_COMPLETE); returns whether the bytes waiting
        to be written are over `_SEND_HIGH`, so that the caller drains."""
        n = len(data)
        rc = _ws_send(self._h, kind, data, n)
        if rc != _IO_PENDING:
            raise error_for(rc)
        self._sends.append(data)
        self._send_bytes += n
        return self._send_bytes > _SEND_HIGH

    async def _drain(self) -> None:
        """Waits until the bytes waiting to be written are down to `_SEND_LOW`."""
        waiter = self._drain_waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None

    # ---- receiving ------------------------------------------------------------------------

    async def _piece(self, size: int = 0) -> Piece:
        """The next piece: one kept from a cancelled wait, or the pending receive's (started
        here if none is pending; ``size`` limits it)."""
        if self._rx_ready:
            return self._rx_ready.popleft()
        if not self._rx_pending:
            buf = self._rbuf
            if buf is None:
                buf = self._rbuf = _b.ReceiveBuffer(_RBUF_SMALL)
            rc = _ws_receive(self._h, buf.addr, min(size, buf.size) or buf.size, None, None)
            if rc != _IO_PENDING:
                raise error_for(rc)
            self._rx_pending = True
        waiter = self._rx_waiter = self._loop.create_future()
        try:
            piece: Piece = await waiter
            return piece
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._rx_ready.appendleft(waiter.result())  # cancelled after it arrived
            raise
        finally:
            self._rx_waiter = None

    async def recv(self) -> Optional[Data]:
        """Receives the next whole message: ``bytes`` for binary, ``str`` for text, ``None``
        when the peer's close frame arrived (`close_status` tells its code and reason; answer
        with `close`, or it was the answer to your `shutdown`). Allowed in OPEN and CLOSE_SENT.

        Cancelling the task that waits here loses nothing: the next ``recv`` returns the
        message (use ``asyncio.timeout`` for a per-call timeout). Raises `Timeout` (the
        connection's ``receive_timeout``; nothing lost), `Cancelled` (`close` meanwhile),
        `InvalidOperation` (state, or another task's ``recv`` is running), `ConnectionLost`,
        `ProtocolError`."""
        if self._rx_busy:
            raise _busy("recv")
        self._rx_busy = True
        try:
            while True:
                if self._rx_ready:
                    error, data, kind = self._rx_ready.popleft()
                elif self._rx_pending:
                    error, data, kind = await self._piece()
                else:  # the common case inline: start the receive, wait for its piece
                    buf = self._rbuf
                    if buf is None:
                        buf = self._rbuf = _b.ReceiveBuffer(_RBUF_SMALL)
                    rc = _ws_receive(self._h, buf.addr, buf.size, None, None)
                    if rc != _IO_PENDING:
                        raise error_for(rc)
                    self._rx_pending = True
                    waiter = self._rx_waiter = self._loop.create_future()
                    if self._sends:
                        # sends posted in this tick: drive the queue now (it writes them and
                        # reads what is there) instead of one more turn of the event loop
                        self._q._ready()
                    try:
                        error, data, kind = await waiter
                    except asyncio.CancelledError:
                        if waiter.done() and not waiter.cancelled():
                            self._rx_ready.appendleft(waiter.result())
                        raise
                    finally:
                        self._rx_waiter = None
                if error:
                    raise error_for_completion(error, _OP_RECEIVE)
                parts = self._rx_parts
                if parts is None:
                    if kind == 0:
                        return data
                    if kind == 2:
                        return data.decode("utf-8")
                    if kind == 4:
                        return None
                    self._rx_parts = [data]
                    self._rx_text = kind == 3
                    continue
                parts.append(data)
                if kind == 0 or kind == 2:
                    self._rx_parts = None
                    message = b"".join(parts)
                    return message.decode("utf-8") if self._rx_text else message
        finally:
            self._rx_busy = False

    async def recv_into(self, buffer: Any) -> Tuple[int, BufferType]:
        """Receives the next piece of the next message into a writable buffer, as the blocking
        `wshandle.WebSocket.recv_into`: ``(count, buffer_type)``, ``*_FRAGMENT`` when more of
        the message follows, `BufferType.CLOSE` for the peer's close frame. The piece is read
        into the connection's own buffer and copied (so a cancelled call loses nothing)."""
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError(f"recv_into needs a writable buffer; {type(buffer).__name__} is "
                            "read-only")
        view = view.cast("B")
        size = len(view)
        if size == 0:
            raise ValueError("recv_into needs a buffer of at least 1 byte")
        if self._rx_busy:
            raise _busy("recv")
        if self._rx_parts is not None:
            raise _refused("recv() was cancelled in the middle of a message and holds its first "
                           "pieces; call recv() to get the whole message")
        self._rx_busy = True
        try:
            error, data, kind = await self._piece(size)
            if error:
                raise error_for_completion(error, _OP_RECEIVE)
            n = len(data)
            if n > size:  # a piece kept from a cancelled recv(): hand out what fits
                self._rx_ready.appendleft((0, data[size:], kind))
                n = size
                kind |= 1  # *_MESSAGE -> *_FRAGMENT
            view[:n] = data[:n]
            return n, _BUFFER_TYPES[kind]
        finally:
            self._rx_busy = False

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Data]:
        """Yields messages until the peer's close frame arrives."""
        while True:
            message = await self.recv()
            if message is None:
                return
            yield message

    # ---- closing --------------------------------------------------------------------------

    async def shutdown(self, code: int = 1000, reason: Union[str, bytes] = "") -> None:
        """Sends a close frame after the pending sends and returns once it is written
        (.NET's CloseOutputAsync). OPEN → CLOSE_SENT: keep receiving until ``recv`` returns
        ``None``; a ``recv`` waiting meanwhile carries on. CLOSE_RECEIVED → CLOSED. Codes and
        reasons as for the blocking `wshandle.WebSocket.shutdown`."""
        status, r, n = _sync._status_and_reason(code, reason)
        await self._start(Operation.SHUTDOWN, _b.ws_shutdown(self._h, status, r, n))

    async def close(self, code: int = 1000, reason: Union[str, bytes] = "") -> None:
        """The full close handshake under one deadline (``close_timeout``): sends a close
        frame unless one was sent, ends a waiting ``recv`` with `Cancelled`, reads and discards
        data until the peer's close frame, tears TCP down. Cancelling the task stops the wait,
        not the close (it still ends within ``close_timeout``). Raises `Timeout` (deadline
        passed; aborted), `ConnectionLost`, `ProtocolError`, `InvalidOperation` (NONE,
        ABORTED)."""
        status, r, n = _sync._status_and_reason(code, reason)
        await self._start(Operation.CLOSE, _b.ws_close(self._h, status, r, n))

    def close_handle(self) -> None:
        """Releases the handle at once (an open connection is dropped without a handshake):
        pending operations end with `Cancelled`. Idempotent. `state` and `close_status` keep
        their last values."""
        self._ws.close_handle()

    async def wait_closed(self) -> None:
        """Waits until the handle was released and its last completion delivered."""
        await asyncio.shield(self._closed)

    @property
    def close_status(self) -> Optional[Tuple[int, str]]:
        """``(code, reason)`` of the peer's close frame (1005 without payload), ``(1006, "")``
        when the connection ended without one, ``None`` before."""
        return self._ws.close_status

    @property
    def state(self) -> State:
        """The connection's `State`."""
        return self._ws.state

    @property
    def subprotocol(self) -> Optional[str]:
        """The subprotocol the handshake agreed, or None."""
        return self._ws.subprotocol

    @property
    def extensions(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value the handshake agreed ("" for none)."""
        return self._ws.extensions

    @property
    def local_port(self) -> int:
        """The connection's local port (an accepted connection's: its listener's)."""
        return self._ws.local_port

    @property
    def handle(self) -> int:
        """The raw ``ws_handle`` (owned by this object)."""
        return self._h

    def handshake_header(self, name: str) -> Optional[str]:
        """A header of the upgrade handshake (the server's response on a client, the client's
        request on an accepted connection), or None."""
        return self._ws.handshake_header(name)

    @property
    def blocking(self) -> _sync.WebSocket:
        """The underlying handle object, for its options (``receive_timeout`` and the other
        timeouts may be read and changed at any time)."""
        return self._ws

    async def __aenter__(self) -> "WebSocket":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._ws.released:
                return
            rc, state = _b.query_state(self._h)
            if rc == 0 and state in (State.OPEN, State.CLOSE_SENT, State.CLOSE_RECEIVED):
                if exc_type is None:
                    await self.close(1000)
                else:
                    try:
                        await self.close(1011)
                    except WsError:
                        pass
        finally:
            self.close_handle()
