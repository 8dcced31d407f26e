"""wshandle for asyncio: connections and listeners on the library's completion queue.

Each event loop gets one completion queue (``ws_queue_create``) whose level-triggered fd the
loop watches with ``loop.add_reader``; when it is readable, one ctypes call
(``ws_queue_wait``) does the ready I/O and returns many completions. No thread is created, no
timer polls: timeouts and keepalive pings are deadlines inside the queue, which makes its fd
readable when they fall due. Works with the default loop and with uvloop::

    import asyncio
    import wshandle.asyncio

    async def main() -> None:
        async with wshandle.asyncio.connect("ws://127.0.0.1:9001/echo") as ws:
            await ws.send("hello")
            print(await ws.recv())

    asyncio.run(main())

Servers: `serve` runs one task per connection, in the style of ``websockets.serve``::

    async def echo(ws: wshandle.asyncio.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with wshandle.asyncio.serve(echo, "ws://127.0.0.1:9001/echo") as server:
            await server.serve_forever()

Options are the keyword arguments of `wshandle.connect` and `wshandle.listen`; the exceptions
are the package's (`wshandle.Timeout`, `wshandle.Cancelled`, ...).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from . import _bindings as _b
from . import _websocket as _sync
from ._aconn import WebSocket
from ._aqueue import CompletionQueue, queue_for_running_loop
from ._constants import CallbackStatus, ErrorCode, Operation, State
from ._errors import Cancelled, InvalidHandle, InvalidOperation, WsError, error_for
from ._errors import error_for_completion, error_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import (
        Any,
        AsyncIterator,
        Awaitable,
        Callable,
        Deque,
        Generator,
        Optional,
        Set,
        Type,
        Union,
    )

    Handler = Callable[[WebSocket], Awaitable[Any]]

__all__ = ["WebSocket", "Listener", "Server", "connect", "listen", "serve"]

logger = logging.getLogger("wshandle.asyncio")

_IO_PENDING = int(ErrorCode.IO_PENDING)
_ACCEPTED = int(CallbackStatus.ACCEPT_COMPLETE)
_ERROR = int(CallbackStatus.REQUEST_ERROR)


class connect:  # noqa: N801 - a function to users, as websockets.connect
    """``ws = await connect(url, **options)`` or ``async with connect(url, **options) as ws``:
    opens a client connection and returns the connected `WebSocket` (state OPEN). The options
    are those of `wshandle.connect` (``receive_timeout``, ``close_timeout``, ``subprotocols``,
    ``headers``, ``permessage_deflate``, TLS, ``proxy``, ...). Leaving the ``async with`` block
    closes the connection (bounded by ``close_timeout``) and releases it.

    Raises what `wshandle.connect` raises (`CannotConnect`, `Timeout`, `ProtocolError` with
    ``http_status``, `InvalidUrl`, ...). Cancelling the task drops the half-made connection."""

    __slots__ = ("_url", "_options", "_ws")

    def __init__(self, url: str, **options: Any) -> None:
        self._url = url
        self._options = options
        self._ws: Optional[WebSocket] = None

    async def _connect(self) -> WebSocket:
        queue = queue_for_running_loop()
        sync = _sync.WebSocket(self._url, **self._options)  # ws_open + options, no I/O
        try:
            ws = WebSocket(sync, queue)
        except BaseException:
            sync.close_handle()
            raise
        try:
            return await ws._connect()
        except BaseException:
            ws.close_handle()
            raise

    def __await__(self) -> Generator[Any, None, WebSocket]:
        return self._connect().__await__()

    async def __aenter__(self) -> WebSocket:
        self._ws = await self._connect()
        return self._ws

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.__aexit__(exc_type, exc, tb)


class Listener:
    """A listening socket whose `accept` returns `WebSocket` objects; from `listen`.

    ``async with`` releases it on exit (a waiting `accept` raises `Cancelled`); connections
    already accepted live on. Cancelling a task waiting in `accept` loses no client: the
    connection goes to the next `accept`."""

    __slots__ = ("_sync", "_h", "_q", "_loop", "_pending", "_waiter", "_ready", "_busy", "_closed")

    def __init__(self, url: str, **options: Any) -> None:
        """See `listen`."""
        queue = queue_for_running_loop()
        self._sync = _sync.Listener(url, **options)
        self._h = self._sync.handle
        self._q = queue
        self._loop = asyncio.get_running_loop()
        self._pending = False
        self._waiter: Optional[asyncio.Future[Union[WebSocket, WsError]]] = None
        self._ready: Deque[Union[WebSocket, WsError]] = deque()
        self._busy = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        try:
            queue.bind(self._h, self)
        except BaseException:
            self._sync.close_handle()
            raise

    def __repr__(self) -> str:
        return f"<wshandle.asyncio.Listener handle={self._h:#x}>"

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0)."""
        return self._sync.port

    @property
    def handle(self) -> int:
        """The raw ``ws_handle`` (owned by this object)."""
        return self._h

    @property
    def blocking(self) -> _sync.Listener:
        """The underlying listener object, for its options."""
        return self._sync

    def _complete(
        self, status: int, count: int, buffer_type: int, operation: int, error: int,
        accepted: int,
    ) -> None:
        self._pending = False
        result: Union[WebSocket, WsError]
        if status == _ACCEPTED:
            result = WebSocket(_sync.WebSocket._from_handle(accepted), self._q, bound=True)
        elif status == _ERROR:
            result = error_for_completion(error, operation)
        else:
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
        elif not (isinstance(result, WsError) and result.code == ErrorCode.TIMEOUT):
            self._ready.append(result)

    def _handle_closing(self) -> None:
        for item in self._ready:
            if isinstance(item, WebSocket):
                item.close_handle()
        self._ready.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    async def accept(self) -> WebSocket:
        """Waits for one client to complete a valid upgrade on the listener's path and returns
        its connection (state OPEN, with the listener's options). Raises `Timeout` after the
        listener's ``receive_timeout`` (not fatal), `Cancelled` when the listener is closed,
        `InvalidOperation` while another task's ``accept`` runs."""
        if self._busy:
            code = ErrorCode.INVALID_OPERATION
            raise InvalidOperation(
                code, error_name(code), "another accept is in progress on this listener"
            )
        self._busy = True
        try:
            if self._ready:
                result = self._ready.popleft()
            else:
                if not self._pending:
                    rc = _b.ws_accept(self._h, None)
                    if rc != _IO_PENDING:
                        raise error_for(rc)
                    self._pending = True
                waiter = self._waiter = self._loop.create_future()
                try:
                    result = await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled():
                        self._ready.appendleft(waiter.result())
                    raise
                finally:
                    self._waiter = None
            if isinstance(result, WsError):
                raise result
            return result
        finally:
            self._busy = False

    def __aiter__(self) -> AsyncIterator[WebSocket]:
        return self._connections()

    async def _connections(self) -> AsyncIterator[WebSocket]:
        """Yields accepted connections until the listener is closed."""
        while True:
            try:
                ws = await self.accept()
            except (Cancelled, InvalidHandle):
                return
            yield ws

    def close(self) -> None:
        """Stops listening and releases the handle; a waiting `accept` raises `Cancelled`.
        Idempotent."""
        self._sync.close_handle()

    async def wait_closed(self) -> None:
        """Waits until the listener's handle was released and its last completion delivered."""
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> "Listener":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()


def listen(url: str, **options: Any) -> Listener:
    """Binds a listener on a ``ws://host:port/path`` (or ``wss://``) URL at once, in the running
    loop; use it as ``async with listen(url) as listener``. Options as for `wshandle.listen`
    (port 0 picks a free port: read `Listener.port`)."""
    return Listener(url, **options)


class Server:
    """What `serve` returns: a listener and one task per connection running the handler.

    ``async with serve(...) as server`` (or ``server = await serve(...)``), then
    ``await server.serve_forever()``, or leave the block to stop: `close` stops accepting and
    sends each open connection a close frame (1001, "server shutting down"); `wait_closed`
    waits for the handlers, at most ``close_timeout`` (then cancels them and drops the
    connections). A handler's exception is logged (logger ``wshandle.asyncio``) and its
    connection closed with 1011; a handler that returns leaves its connection closed with
    1000."""

    def __init__(self, handler: Handler, url: str, options: Any) -> None:
        self._handler = handler
        self._url = url
        self._options = options
        self._listener: Optional[Listener] = None
        self._accepting: Optional[asyncio.Task[None]] = None
        self._tasks: Set[asyncio.Task[None]] = set()
        self._connections: Set[WebSocket] = set()
        self._stopped: Optional[asyncio.Future[None]] = None
        self._close_timeout: float = options.get("close_timeout", 10.0) or 10.0

    async def start(self) -> "Server":
        """Starts listening and accepting (done by ``await serve(...)`` and ``async with``)."""
        if self._listener is None:
            self._listener = Listener(self._url, **self._options)
            self._stopped = asyncio.get_running_loop().create_future()
            self._accepting = asyncio.create_task(self._accept_loop())
        return self

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._listener is not None, "the server is not started"
        return self._listener.port

    @property
    def connections(self) -> Set[WebSocket]:
        """The connections whose handlers run now."""
        return set(self._connections)

    async def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                ws = await self._listener.accept()
            except (Cancelled, InvalidHandle):
                return
            except WsError as e:  # a receive timeout on the listener, out of descriptors, ...
                if e.code == ErrorCode.TIMEOUT:
                    continue
                logger.warning("accept failed: %s", e)
                continue
            task = asyncio.create_task(self._run(ws))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, ws: WebSocket) -> None:
        self._connections.add(ws)
        failed = False
        try:
            await self._handler(ws)
        except (asyncio.CancelledError, Cancelled):
            pass
        except Exception:  # noqa: BLE001 - logged, as websockets does
            failed = True
            logger.exception("connection handler failed")
        finally:
            self._connections.discard(ws)
            try:
                if ws.state in (State.OPEN, State.CLOSE_SENT, State.CLOSE_RECEIVED):
                    await ws.close(1011 if failed else 1000)
            except (WsError, asyncio.CancelledError):
                pass
            finally:
                ws.close_handle()

    def close(self) -> None:
        """Stops accepting and starts closing every open connection (1001)."""
        if self._listener is not None:
            self._listener.close()
        for ws in list(self._connections):
            try:
                if ws.state in (State.OPEN, State.CLOSE_RECEIVED):
                    asyncio.ensure_future(self._shutdown(ws))
            except WsError:
                pass
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    @staticmethod
    async def _shutdown(ws: WebSocket) -> None:
        try:
            await ws.shutdown(1001, "server shutting down")
        except WsError:
            pass

    async def wait_closed(self) -> None:
        """Waits for the handlers to end (at most ``close_timeout``; then they are cancelled
        and their connections dropped)."""
        tasks = set(self._tasks)
        if self._accepting is not None:
            tasks.add(self._accepting)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._close_timeout)
            for task in late:
                task.cancel()
            for ws in list(self._connections):
                ws.close_handle()
            if late:
                await asyncio.wait(late)

    async def serve_forever(self) -> None:
        """Runs until `close` (or the task is cancelled)."""
        await self.start()
        assert self._stopped is not None
        await asyncio.shield(self._stopped)

    def __await__(self) -> Generator[Any, None, "Server"]:
        return self.start().__await__()

    async def __aenter__(self) -> "Server":
        return await self.start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()
        await self.wait_closed()


def serve(handler: Handler, url: str, **options: Any) -> Server:
    """Serves ``url`` with ``await handler(ws)`` in one task per connection, in the style of
    ``websockets.serve``: ``async with serve(handler, "ws://127.0.0.1:0/") as server``. The
    options are those of `wshandle.listen` (inherited by every connection). See `Server`."""
    return Server(handler, url, options)


_CompletionQueue = CompletionQueue  # for tests and tools: the per-loop queue's class
