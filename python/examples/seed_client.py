#!/usr/bin/env python3
"""Closing a two-way WebSocket without hanging, in Python.

The scenario of "How to gracefully close a two-way WebSocket in .Net"
(seeds/003_708f1961e88b610b.txt): a sender thread streams 1024 binary messages of 128 KiB
(128 MiB) while a receiver thread reads the server's text replies, "Server got 4194304 bytes\\n"
per 4 MiB. When the client's close frame arrives, the server sends one last reply,
"Server got <n> bytes\\n", and then its own close frame (1000).

    python seed_client.py ws://127.0.0.1:PORT/seed [shutdown|close]

shutdown (default) - the seed's accepted answer (CloseOutputAsync): `ws.shutdown()` sends our
    close frame and returns at once; the receiver keeps iterating in CLOSE_SENT, gets the last
    reply, and its loop ends at the server's close frame. All 33 replies arrive.

close - WinHTTP's full close while the receiver is blocked in `recv`: that `recv` raises
    `wshandle.Cancelled`, and `ws.close()` itself reads (and discards) the last reply while it
    waits for the server's close frame. The receiver sees 32 replies. Use this when you no
    longer care what the peer sends after your close. (If the receiver had not re-entered
    `recv` when `close` started, its call raises `InvalidOperation` instead: a receive loop
    treats both as "stop".)

Run it against python/examples/seed_server.py, c-examples/seed_server.c, or
tests/peers/raw_server.py --mode seed.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Dict, List, Optional

import wshandle

MESSAGE_SIZE = 128 * 1024
MESSAGE_COUNT = 1024
FULL_REPLIES = 32  # 128 MiB / 4 MiB
FULL_REPLY = "Server got 4194304 bytes\n"
LAST_REPLY = "Server got 0 bytes\n"


def run(
    url: str,
    mode: str = "shutdown",
    *,
    before_close: Optional[Callable[[int], None]] = None,
    quiet: bool = False,
) -> Dict[str, object]:
    """Runs the scenario and returns what happened. ``before_close(tid)`` is called in "close"
    mode once all 32 regular replies arrived, with the receiver thread's native id (the tests
    use it to wait until that thread is blocked inside the library)."""
    if mode not in ("shutdown", "close"):
        raise ValueError(f"mode must be 'shutdown' or 'close', not {mode!r}")
    replies: List[str] = []
    got_all_full = threading.Event()
    outcome: Dict[str, object] = {}

    with wshandle.connect(url, close_timeout=10) as ws:

        def receive() -> None:
            outcome["receiver_tid"] = threading.get_native_id()
            try:
                for message in ws:  # ends at the server's close frame
                    if not isinstance(message, str):
                        raise AssertionError(f"expected a text reply, got {type(message).__name__}")
                    if not quiet:
                        print("client got:", message, end="")
                    replies.append(message)
                    if len(replies) == FULL_REPLIES:
                        got_all_full.set()
                outcome["receiver"] = "close frame"
            except wshandle.Cancelled:  # ws.close() on the main thread
                outcome["receiver"] = "cancelled"
            except wshandle.InvalidOperation:  # ws.close() began before we re-entered recv
                outcome["receiver"] = "refused"
            except BaseException as e:  # reported by the main thread
                outcome["receiver"] = e
            finally:
                got_all_full.set()

        def send() -> None:
            data = bytes(MESSAGE_SIZE)
            try:
                for _ in range(MESSAGE_COUNT):
                    ws.send(data)
                outcome["sender"] = "sent"
            except BaseException as e:
                outcome["sender"] = e

        start = time.monotonic()
        receiver = threading.Thread(target=receive, name="seed-receiver")
        sender = threading.Thread(target=send, name="seed-sender")
        receiver.start()
        sender.start()
        sender.join()
        if isinstance(outcome["sender"], BaseException):
            raise outcome["sender"]  # type: ignore[misc]

        if mode == "shutdown":
            # CloseOutputAsync: our close frame goes out, the receiver reads on (CLOSE_SENT)
            # until the server's close frame, which completes the handshake (CLOSED).
            ws.shutdown(1000)
            receiver.join()
        else:
            # The server sends nothing more until it sees our close frame, so once 32
            # replies are in, the receiver is (or is about to be) blocked in recv.
            got_all_full.wait()
            if before_close is not None:
                before_close(outcome["receiver_tid"])  # type: ignore[arg-type]
            # The full close: cancels the blocked recv, sends our close frame, reads and
            # discards the last reply, returns once the server's close frame arrived.
            ws.close(1000)
            receiver.join()
        outcome["seconds"] = time.monotonic() - start
        if isinstance(outcome["receiver"], BaseException):
            raise outcome["receiver"]  # type: ignore[misc]
        outcome["replies"] = replies
        outcome["close_status"] = ws.close_status
        outcome["state"] = ws.state
    return outcome


def main(argv: List[str]) -> int:
    if not 2 <= len(argv) <= 3:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    mode = argv[2] if len(argv) == 3 else "shutdown"
    r = run(argv[1], mode)
    replies = r["replies"]
    assert isinstance(replies, list)
    want = [FULL_REPLY] * FULL_REPLIES + ([LAST_REPLY] if mode == "shutdown" else [])
    ok = replies == want and r["close_status"] == (1000, "") and r["state"] == wshandle.State.CLOSED
    print(
        f"seed {mode} {'ok' if ok else 'FAILED'}: {len(replies)} replies, receiver ended by "
        f"{r['receiver']}, close {r['close_status']}, {1000 * r['seconds']:.0f} ms"  # type: ignore[operator]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
