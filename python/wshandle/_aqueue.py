"""One completion queue per asyncio event loop (the asynchronous mode's queue mode).

The queue's descriptor (``ws_queue_fd``) is level-triggered: readable while I/O is ready,
completions wait or a deadline (a timeout, a keepalive ping) has fallen due. The loop watches it
with ``loop.add_reader``; when it is readable, `CompletionQueue._ready` calls ``ws_queue_wait``
with a zero timeout on the loop's own thread, which does the ready I/O and returns up to
`BATCH` completions in one ctypes call, and hands each to the object that owns its handle. No
thread, no timer of our own, no polling.

A queue is created on first use in a loop and released (``ws_close_handle``) when its last
handle has had its ``HANDLE_CLOSING`` delivered, or when the loop ends: ``asyncio.run`` and
``asyncio.Runner`` (default loop and uvloop alike) finalize async generators before closing the
loop, and an idle async generator of ours turns that into `CompletionQueue.release`; a loop
closed some other way releases its queue when the loop object is garbage-collected.
"""

from __future__ import annotations

import asyncio
import time
import weakref

from . import _bindings as _b
from ._constants import CallbackStatus, ErrorCode, Option
from ._errors import error_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, AsyncIterator, Dict, Optional, Protocol

    class Target(Protocol):
        """What owns a handle bound to a queue: a connection or a listener."""

        def _complete(
            self, status: int, count: int, buffer_type: int, operation: int, error: int,
            accepted: int,
        ) -> None: ...

        def _handle_closing(self) -> None: ...


__all__ = ["CompletionQueue", "queue_for_running_loop"]

#: Completions taken per ``ws_queue_wait`` call.
BATCH = 256
_RECORD = _b.COMPLETION_RECORD
_HANDLE_CLOSING = int(CallbackStatus.HANDLE_CLOSING)
_ws_queue_wait = _b.ws_queue_wait

#: event loop -> its queue (weak keys: a loop that goes away takes its entry with it)
_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CompletionQueue]" = (
    weakref.WeakKeyDictionary()
)


def queue_for_running_loop() -> "CompletionQueue":
    """The running loop's queue, created on first use (RuntimeError outside a running loop)."""
    loop = asyncio.get_running_loop()
    q = _queues.get(loop)
    if q is None or q.released:
        q = _queues[loop] = CompletionQueue(loop)
    return q


async def _loop_end_sentinel(q: "weakref.ref[CompletionQueue]") -> "AsyncIterator[None]":
    """Parked at its ``yield`` for the queue's life; the loop's ``shutdown_asyncgens`` (run by
    ``asyncio.run`` before it closes the loop) closes it, and that releases the queue."""
    try:
        yield
    finally:
        queue = q()
        if queue is not None:
            queue.release()


def _release_after_loop_gone(h: int, targets: "Dict[int, Target]") -> None:
    """weakref.finalize of a loop that was closed without finalizing its async generators."""
    _drop_handles_and_queue(h, targets, None)


def _drop_handles_and_queue(
    h: int, targets: "Dict[int, Target]", deliver: "Optional[CompletionQueue]"
) -> None:
    """Releases every handle still bound to queue ``h``, drives the queue until their
    ``HANDLE_CLOSING`` arrived (at most 5 s), then releases the queue itself. ``deliver``: the
    queue whose targets are told (None when the loop is gone: nobody is listening)."""
    for handle in list(targets):
        _b.ws_close_handle(handle)
    buf = _b.CompletionBuffer(BATCH)
    until = time.monotonic() + 5.0
    while targets and time.monotonic() < until:
        rc = _ws_queue_wait(h, buf.addr, BATCH, buf.count_addr, 50)
        if rc not in (0, ErrorCode.TIMEOUT):
            break
        for record in _RECORD.iter_unpack(buf.view[: buf.count.value * _RECORD.size]):
            if record[2] == _HANDLE_CLOSING:
                target = targets.pop(record[0], None)
                if target is not None and deliver is not None:
                    target._handle_closing()
    _b.ws_close_handle(h)


class CompletionQueue:
    """A ``ws_queue_create`` queue driven by one event loop (see the module's doc)."""

    __slots__ = (
        "handle",
        "released",
        "_fd",
        "_loop",
        "_targets",
        "_buf",
        "_sentinel",
        "_finalizer",
        "__weakref__",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        rc, h = _b.queue_create()
        if rc:
            raise error_for(rc)
        rc, fd = _b.queue_fd(h)
        if rc:
            err = error_for(rc)
            _b.ws_close_handle(h)
            raise err
        self.handle = h
        self.released = False
        self._fd = fd
        self._loop: "weakref.ref[asyncio.AbstractEventLoop]" = weakref.ref(loop)
        self._targets: "Dict[int, Target]" = {}
        self._buf = _b.CompletionBuffer(BATCH)
        loop.add_reader(fd, self._ready)
        # released with the loop: by its async-generator shutdown, else when it is collected
        self._sentinel = _loop_end_sentinel(weakref.ref(self))
        first_step: Any = self._sentinel.__anext__()
        try:
            first_step.send(None)  # runs it to its yield (and registers it with the loop)
        except StopIteration:
            pass
        self._finalizer = weakref.finalize(loop, _release_after_loop_gone, h, self._targets)

    def bind(self, h: int, target: "Target") -> None:
        """Binds handle ``h`` (before its first I/O) to this queue; ``target`` gets its
        completions from now on until its ``HANDLE_CLOSING``."""
        rc = _b.set_u64(h, Option.COMPLETION_QUEUE, self.handle)
        if rc:
            raise error_for(rc)
        self._targets[h] = target

    def adopt(self, h: int, target: "Target") -> None:
        """Registers a handle that is bound already (a connection accepted by a listener of
        this queue)."""
        self._targets[h] = target

    def _ready(self) -> None:
        """The queue's fd is readable: take completions until fewer than a batch came."""
        targets = self._targets
        h = self.handle
        buf = self._buf
        addr = buf.addr
        count = buf.count
        count_addr = buf.count_addr
        view = buf.view
        size = _RECORD.size
        while True:
            _ws_queue_wait(h, addr, BATCH, count_addr, 0)
            n = count.value
            if n == 0:
                break
            for handle, _, status, nbytes, btype, op, err, accepted in _RECORD.iter_unpack(
                view[: n * size]
            ):
                target = targets.get(handle)
                if target is None:
                    continue
                try:
                    if status == _HANDLE_CLOSING:
                        del targets[handle]
                        target._handle_closing()
                    else:
                        target._complete(status, nbytes, btype, op, err, accepted)
                except Exception as e:  # noqa: BLE001 - one bad completion must not lose the rest
                    self._report(e, target)
            if n < BATCH:
                break
        if not targets:
            self.release()

    def _report(self, error: Exception, target: "Target") -> None:
        loop = self._loop()
        if loop is not None:
            loop.call_exception_handler(
                {"message": f"wshandle: a completion of {target!r} failed", "exception": error}
            )

    def release(self) -> None:
        """Stops watching the fd and releases the queue; handles still bound to it are released
        first (their pending operations end with `Cancelled`). Idempotent."""
        if self.released:
            return
        self.released = True
        self._finalizer.detach()
        loop = self._loop()
        if loop is not None:
            if _queues.get(loop) is self:
                del _queues[loop]
            if not loop.is_closed():
                loop.remove_reader(self._fd)
        _drop_handles_and_queue(self.handle, self._targets, self)
