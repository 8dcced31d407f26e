"""The blocking package as a new user meets it: Ctrl-C (a real SIGINT to a real subprocess)
interrupts a blocked recv() or accept() on the main thread within 100 ms and loses nothing;
per-call recv(timeout=...); error details that name the Python keyword."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List

import pytest
from helpers import DEADLINE, EVENT_WAIT, wait_blocked

import wshandle

#: The contract: KeyboardInterrupt within 100 ms of the signal.
INTERRUPT_BOUND = 0.1

CHILD_RECV = textwrap.dedent(
    """
    import json, signal, sys, time
    import wshandle

    # Ctrl-C's default, even when this test runs where SIGINT is ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    ws = wshandle.connect(sys.argv[1])
    ws.send("ready")
    print("blocked", flush=True)
    try:
        ws.recv()
        print(json.dumps({"error": "recv returned"}), flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        at = time.monotonic()
    print(json.dumps({"interrupted_at": at, "state": ws.state.name}), flush=True)
    message = ws.recv()  # the rest of the message that was half-read when Ctrl-C came
    print(json.dumps({"message": message}), flush=True)
    ws.close()
    print(json.dumps({"close_status": ws.close_status}), flush=True)
    """
)

CHILD_ACCEPT = textwrap.dedent(
    """
    import json, signal, sys, time
    import wshandle

    # Ctrl-C's default, even when this test runs where SIGINT is ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    listener = wshandle.listen("ws://127.0.0.1:0/")
    print(listener.port, flush=True)
    try:
        listener.accept()
        sys.exit(1)
    except KeyboardInterrupt:
        at = time.monotonic()
    print(json.dumps({"interrupted_at": at}), flush=True)
    ws = listener.accept()  # the client that connects now
    message = ws.recv()
    ws.send(message)
    print(json.dumps({"message": message}), flush=True)
    ws.close()
    """
)


def start_child(code: str, *args: str) -> "subprocess.Popen[str]":
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(wshandle.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env
    )


def interrupt(proc: "subprocess.Popen[str]") -> float:
    """Waits until the child's main thread is blocked inside the library (in poll), sends
    SIGINT, and returns when it was sent (CLOCK_MONOTONIC is one clock for all processes)."""
    wait_blocked_in(proc.pid)
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    return sent


def wait_blocked_in(pid: int) -> None:
    """Like helpers.wait_blocked, for the main thread of another process (poll, ppoll or
    futex: the interruptible accept waits on a lock)."""
    path = f"/proc/{pid}/task/{pid}/syscall"
    until = time.monotonic() + EVENT_WAIT
    while time.monotonic() < until:
        with open(path) as f:
            fields = f.read().split()
        if fields and fields[0] in ("7", "271", "202", "73", "98"):
            return
        os.sched_yield()
    raise AssertionError("the child never blocked")


def lines(proc: "subprocess.Popen[str]", n: int) -> List[Any]:
    import json

    out = []
    for _ in range(n):
        line = proc.stdout.readline()
        assert line, "the child ended early"
        out.append(json.loads(line))
    return out


def test_ctrl_c_interrupts_recv_and_loses_nothing(make_server: Any) -> None:
    go = threading.Event()

    def handler(ws: wshandle.WebSocket) -> Dict[str, Any]:
        assert ws.recv() == "ready"
        ws.send_fragment("half of ")  # the client's recv reads this piece, then blocks
        assert go.wait(DEADLINE)
        ws.send_fragment("a message", final=True)
        assert ws.recv() is None
        ws.close()
        return {"closed": ws.close_status}

    server = make_server(handler)
    proc = start_child(CHILD_RECV, server.url)
    try:
        assert proc.stdout.readline() == "blocked\n"
        sent = interrupt(proc)
        (first,) = lines(proc, 1)
        assert first["state"] == "OPEN"
        delay = first["interrupted_at"] - sent
        assert 0 <= delay < INTERRUPT_BOUND, f"KeyboardInterrupt came {delay * 1000:.0f} ms late"
        go.set()
        assert lines(proc, 2) == [{"message": "half of a message"}, {"close_status": [1000, ""]}]
        assert proc.wait(DEADLINE) == 0
        assert server.result() == {"closed": (1000, "")}
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_ctrl_c_interrupts_accept_and_loses_no_client() -> None:
    proc = start_child(CHILD_ACCEPT)
    try:
        port = int(proc.stdout.readline())
        sent = interrupt(proc)
        (first,) = lines(proc, 1)
        delay = first["interrupted_at"] - sent
        assert 0 <= delay < INTERRUPT_BOUND, f"KeyboardInterrupt came {delay * 1000:.0f} ms late"
        with wshandle.connect(f"ws://127.0.0.1:{port}/", receive_timeout=DEADLINE) as ws:
            ws.send("still accepted")
            assert ws.recv() == "still accepted"
        assert lines(proc, 1) == [{"message": "still accepted"}]
        assert proc.wait(DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def answer_close(ws: wshandle.WebSocket) -> None:
    """Reads until the client's close frame and answers it."""
    for _ in ws:
        pass
    ws.close()


def test_recv_timeout_per_call(make_server: Any) -> None:
    go = threading.Event()

    def handler(ws: wshandle.WebSocket) -> None:
        assert go.wait(DEADLINE)
        ws.send("late")
        answer_close(ws)

    server = make_server(handler)
    with wshandle.connect(server.url, receive_timeout=30) as ws:
        t0 = time.monotonic()
        with pytest.raises(wshandle.Timeout) as info:
            ws.recv(timeout=0.2)
        assert 0.19 <= time.monotonic() - t0 < 5
        assert "receive_timeout (WS_OPTION_RECEIVE_TIMEOUT)" in info.value.detail
        assert ws.receive_timeout == 30  # the connection's own is untouched
        with pytest.raises(wshandle.Timeout):
            ws.recv_into(bytearray(8), timeout=0.05)
        go.set()
        assert ws.recv(timeout=None) == "late"  # None: no limit for this call
        with pytest.raises(ValueError):
            ws.recv(timeout=-1)


def test_recv_on_another_thread_keeps_the_connection_timeout(make_server: Any) -> None:
    """Off the main thread there are no slices: the connection's receive_timeout holds."""
    server = make_server(answer_close)
    ws = wshandle.connect(server.url, receive_timeout=0.3)
    result: List[Any] = []

    def receive() -> None:
        t0 = time.monotonic()
        try:
            ws.recv()
        except wshandle.Timeout:
            result.append(time.monotonic() - t0)

    t = threading.Thread(target=receive)
    t.start()
    t.join(EVENT_WAIT)
    assert len(result) == 1 and 0.29 <= result[0] < 5
    ws.close()
    ws.close_handle()


def test_blocked_recv_on_main_thread_waits_in_slices(make_server: Any) -> None:
    """The slices are invisible: a main-thread recv without a timeout waits until the message
    comes, however long, and the connection's own receive_timeout still reads None."""
    go = threading.Event()

    def handler(ws: wshandle.WebSocket) -> None:
        assert go.wait(DEADLINE)
        ws.send("after a while")
        answer_close(ws)

    server = make_server(handler)
    with wshandle.connect(server.url) as ws:
        sender = threading.Thread(target=lambda: (wait_blocked(main_tid), go.set()))
        main_tid = threading.get_native_id()
        sender.start()
        assert ws.recv() == "after a while"
        sender.join(EVENT_WAIT)
        assert ws.receive_timeout is None
