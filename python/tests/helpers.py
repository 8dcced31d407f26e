"""Shared test machinery: in-process wshandle servers, peer subprocesses, and threads that are
known to be blocked inside the library (no sleeps as synchronisation)."""

from __future__ import annotations

import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import wshandle

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "peers"
EXAMPLES = REPO / "python" / "examples"

#: Upper bound for waiting on events that should happen at once (a generous bound, not a
#: timing assertion: the tests that assert timing say so).
EVENT_WAIT = 20.0
#: Deadline for every server and peer a test starts.
DEADLINE = 120.0

_POLL_SYSCALLS = {
    "x86_64": {7, 271},  # poll, ppoll
    "aarch64": {73},  # ppoll
}.get(platform.machine(), set())


def wait_blocked(tid: int, timeout: float = EVENT_WAIT) -> None:
    """Returns once thread ``tid`` (a native id) sits in poll/ppoll, i.e. is blocked inside the
    library (the Python side never polls). Reads /proc/self/task/<tid>/syscall, as
    tests/common/mod.rs's wait_blocked does."""
    if not _POLL_SYSCALLS:
        raise RuntimeError(f"no poll syscall numbers known for {platform.machine()}")
    path = f"/proc/self/task/{tid}/syscall"
    until = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                fields = f.read().split()
            if fields and fields[0].lstrip("-").isdigit() and int(fields[0]) in _POLL_SYSCALLS:
                return
        except FileNotFoundError:
            raise AssertionError(f"thread {tid} ended before it blocked") from None
        if time.monotonic() > until:
            raise AssertionError(f"thread {tid} never blocked in poll")
        os.sched_yield()


class Worker:
    """Runs ``fn`` on its own thread and keeps its result or exception, and when it ended."""

    def __init__(self, fn: Callable[[], Any], name: str = "worker") -> None:
        self.fn = fn
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.ended_at: Optional[float] = None
        self.done = threading.Event()
        self._tid_ready = threading.Event()
        self.tid = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._tid_ready.wait()

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        self._tid_ready.set()
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        finally:
            self.ended_at = time.monotonic()
            self.done.set()

    def wait_blocked(self) -> "Worker":
        wait_blocked(self.tid)
        return self

    def join(self, timeout: float = EVENT_WAIT) -> Any:
        """The result; re-raises the thread's exception."""
        assert self.done.wait(timeout), f"{self.thread.name} did not finish within {timeout} s"
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.result

    def exception(self, timeout: float = EVENT_WAIT) -> BaseException:
        """The exception the thread ended with (fails if it returned normally)."""
        assert self.done.wait(timeout), f"{self.thread.name} did not finish within {timeout} s"
        assert (
            self.error is not None
        ), f"{self.thread.name} returned {self.result!r}, expected an exception"
        return self.error


def spawn_blocked(fn: Callable[[], Any], name: str = "blocked") -> Worker:
    """Runs ``fn`` on a new thread and returns once that thread is blocked inside the library."""
    return Worker(fn, name).wait_blocked()


# ---- wshandle's own server, in this process --------------------------------------------


def echo(ws: wshandle.WebSocket) -> Dict[str, Any]:
    """Echoes every message with its type until the client's close, then answers it."""
    count = 0
    for message in ws:
        ws.send(message)
        count += 1
    status = ws.close_status
    if ws.state == wshandle.State.CLOSE_RECEIVED:
        ws.close()
    return {"echoed": count, "client_close": status}


def server_close(
    code: int = 1001, reason: str = "going away"
) -> Callable[[wshandle.WebSocket], Any]:
    """Closes first (shutdown), then reads until the client's close frame."""

    def handler(ws: wshandle.WebSocket) -> Dict[str, Any]:
        ws.shutdown(code, reason)
        received = list(ws)
        return {"received": received, "client_close": ws.close_status, "state": ws.state}

    return handler


def drop(ws: wshandle.WebSocket) -> None:
    """Drops the connection without a close frame."""
    ws.close_handle()


class Server:
    """A wshandle listener on 127.0.0.1 with an accept thread and one thread per connection
    running ``handler(ws)``. Everything it starts ends by `close` (or after DEADLINE)."""

    def __init__(
        self,
        handler: Callable[[wshandle.WebSocket], Any],
        path: str = "/",
        scheme: str = "ws",
        **listen_options: Any,
    ) -> None:
        listen_options.setdefault("receive_timeout", DEADLINE)
        self.listener = wshandle.listen(f"{scheme}://127.0.0.1:0{path}", **listen_options)
        self.port = self.listener.port
        self.url = f"{scheme}://127.0.0.1:{self.port}{path}"
        self.handler = handler
        self.results: "queue.Queue[Any]" = queue.Queue()
        self.errors: List[BaseException] = []
        self.connections: List[wshandle.WebSocket] = []
        self.stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(
            target=self._accept_loop, name="server-accept", daemon=True
        )
        self._accepter.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                ws = self.listener.accept()
            except (wshandle.Cancelled, wshandle.InvalidHandle):
                return
            except wshandle.Timeout:
                return
            t = threading.Thread(target=self._serve, args=(ws,), name="server-conn", daemon=True)
            with self._lock:
                self.connections.append(ws)
                self._threads.append(t)
                # Threads that ended can go (the 10,000-cycle test makes many).
                self._threads = [x for x in self._threads if x.is_alive() or x is t]
            t.start()

    def _serve(self, ws: wshandle.WebSocket) -> None:
        try:
            self.results.put(self.handler(ws))
        except wshandle.WsError as e:
            self.results.put(e)
        except BaseException as e:  # noqa: BLE001 - a bug in a handler fails the test
            self.errors.append(e)
            self.results.put(e)
        finally:
            ws.close_handle()
            with self._lock:
                try:
                    self.connections.remove(ws)
                except ValueError:
                    pass

    def result(self, timeout: float = EVENT_WAIT) -> Any:
        """The next connection's handler result (or its WsError)."""
        return self.results.get(timeout=timeout)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        self._accepter.join(EVENT_WAIT)
        with self._lock:
            conns = list(self.connections)
            threads = list(self._threads)
        for ws in conns:
            ws.close_handle()  # cancels whatever a handler is blocked in
        for t in threads:
            t.join(EVENT_WAIT)
        if self.errors:
            raise self.errors[0]


# ---- peers in subprocesses ------------------------------------------------------------


class Peer:
    """One of tests/peers/*.py (or another script printing ``PORT <n>`` first): started with a
    deadline, its JSON events collected, killed by PID when the test ends."""

    def __init__(self, script: Path, *args: str, deadline: float = DEADLINE) -> None:
        env = dict(os.environ, no_proxy="*", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args, "--deadline", str(deadline)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline()  # bounded by the peer's own deadline
        if not line.startswith("PORT "):
            self.stop()
            raise AssertionError(f"{script.name} did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.events: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "unparsed", "line": line})

    def event(self, name: str, timeout: float = EVENT_WAIT) -> Dict[str, Any]:
        """The next event called ``name`` (earlier other events are dropped)."""
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise AssertionError(f"peer never reported {name!r}")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                raise AssertionError(f"peer never reported {name!r}") from None
            if e.get("event") == name:
                return e

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
