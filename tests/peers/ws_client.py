#!/usr/bin/env python3
"""Independent WebSocket client peer for wshandle's tests, built on `websockets`
(the threading-based client, `websockets.sync.client`).

Usage:
    ws_client.py --url URL --scenario {echo,seed} [--deadline SECS]

Connects to URL (max_size=None, compression=None, max_queue=None, no keepalive
pings, no proxy), runs the scenario, prints one JSON object per line (flushed)
and exits 0 on success, 1 on failure (after an "error" line). If the deadline
(default 60 s) passes first, it prints an "error" line and exits 1.

    {"event":"echo","ok":true,"close_code":1000,"close_reason":"done"}
    {"event":"seed","ok":true,"replies":33,"last":"Server got 0 bytes\\n",
     "close_code":1000,"close_reason":"","ms":812.3}
    {"event":"error","where":"connect"|"echo"|"seed"|"deadline","error":"..."}

close_code/close_reason are those of the server's close frame (1005 for an empty
one), null if none was received.

echo: sends text "hello", binary 00 01 02, an empty text, an empty binary, text
"frag"+"ment"+"ed" as 3 fragments, binary de ad + be ef as 2 fragments and 1 MiB
of random bytes; checks that each comes back as one message with the same type
and bytes; then closes with 1000 "done".

seed: a second thread receives text replies while the main thread sends 1024
binary messages of 128 KiB; then the client closes with 1000 and the reader keeps
receiving until the connection is closed. Success: 33 replies, the last one
"Server got 0 bytes\\n" (the server sends it after the client's close frame), and
close code 1000.
"""

import argparse
import json
import os
import sys
import threading
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

SEED_MESSAGES = 1024
SEED_SIZE = 128 * 1024
SEED_REPLIES = 33
SEED_LAST = "Server got 0 bytes\n"

_print_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def start_watchdog(deadline):
    def fire():
        # Hold the print lock so no half-written line is left behind.
        if _print_lock.acquire(timeout=1):
            sys.stdout.write(json.dumps({"event": "error", "where": "deadline",
                                         "error": f"not done after {deadline} s"},
                                        separators=(",", ":")) + "\n")
            sys.stdout.flush()
        os._exit(1)

    t = threading.Timer(deadline, fire)
    t.daemon = True
    t.start()


class Failure(Exception):
    def __init__(self, where, error):
        super().__init__(error)
        self.where = where
        self.error = error


def describe(data):
    kind = "text" if isinstance(data, str) else "binary"
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return f"{kind} len={len(raw)} head={raw[:16].hex()}"


def server_close(ws):
    """(code, reason) of the server's close frame, (None, None) if none came."""
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        return None, None
    return int(rcvd.code), rcvd.reason


def echo_steps():
    big = os.urandom(1 << 20)
    # (name, what to pass to send(), expected message)
    return [
        ("text", "hello", "hello"),
        ("binary", b"\x00\x01\x02", b"\x00\x01\x02"),
        ("empty-text", "", ""),
        ("empty-binary", b"", b""),
        # An iterable sends one fragment per item.
        ("fragmented-text", ["frag", "ment", "ed"], "fragmented"),
        ("fragmented-binary", [b"\xde\xad", b"\xbe\xef"], b"\xde\xad\xbe\xef"),
        ("1mib-binary", big, big),
    ]


def run_echo(ws, args):
    for name, outgoing, expected in echo_steps():
        ws.send(outgoing)
        try:
            got = ws.recv()
        except ConnectionClosed as e:
            raise Failure("echo", f"{name}: connection closed before the echo: {e}")
        if type(got) is not type(expected) or got != expected:
            raise Failure("echo", f"{name}: expected {describe(expected)}, got {describe(got)}")
    ws.close(1000, "done")
    code, reason = server_close(ws)
    emit({"event": "echo", "ok": True, "close_code": code, "close_reason": reason})
    return True


def run_seed(ws, args):
    replies = []
    binary = []
    errors = []

    def reader():
        try:
            while True:
                msg = ws.recv()
                if isinstance(msg, str):
                    replies.append(msg)
                else:
                    binary.append(len(msg))
        except ConnectionClosed:
            pass  # the close handshake finished (or the connection broke)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {e}")

    t0 = time.monotonic()
    thread = threading.Thread(target=reader, name="seed-reader", daemon=True)
    thread.start()

    payload = bytes(range(256)) * (SEED_SIZE // 256)
    for _ in range(SEED_MESSAGES):
        ws.send(payload)
    # Sends the close frame and returns once the TCP connection is closed. With
    # max_queue=None the library keeps reading meanwhile; messages that arrive
    # after our close frame (the server's "Server got 0 bytes") are queued before
    # the server's close frame is processed, and recv() still returns them.
    ws.close(1000)
    thread.join(max(1.0, args.end - time.monotonic()))
    ms = round((time.monotonic() - t0) * 1000, 1)
    if thread.is_alive():
        raise Failure("seed", "the reader thread did not finish after the close")

    code, reason = server_close(ws)
    last = replies[-1] if replies else None
    ok = (not errors and not binary and len(replies) == SEED_REPLIES
          and last == SEED_LAST and code == 1000)
    emit({"event": "seed", "ok": ok, "replies": len(replies), "last": last,
          "close_code": code, "close_reason": reason, "ms": ms})
    if not ok:
        why = []
        if errors:
            why.append("reader: " + errors[0])
        if binary:
            why.append(f"{len(binary)} unexpected binary replies")
        if len(replies) != SEED_REPLIES:
            why.append(f"{len(replies)} replies, expected {SEED_REPLIES}")
        if last != SEED_LAST:
            why.append(f"last reply {last!r}, expected {SEED_LAST!r}")
        if code != 1000:
            why.append(f"close code {code}, expected 1000")
        raise Failure("seed", "; ".join(why))
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/...")
    p.add_argument("--scenario", required=True, choices=["echo", "seed"])
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds after which the process gives up and exits 1 (default 60)")
    p.add_argument("--ca", help="for wss://: trust this PEM CA bundle")
    args = p.parse_args()
    args.end = time.monotonic() + args.deadline
    start_watchdog(args.deadline)

    where = "connect"
    try:
        with connect(
            args.url,
            max_size=None,
            max_queue=None,      # never stop reading because replies are unread
            compression=None,
            ping_interval=None,  # no unsolicited keepalive pings
            proxy=None,
            ssl=tls_context(args),
            open_timeout=args.deadline,
            close_timeout=args.deadline,
        ) as ws:
            where = args.scenario
            try:
                (run_echo if args.scenario == "echo" else run_seed)(ws, args)
            except Exception as e:  # noqa: BLE001 - any library error is a failed run
                # Exit here, before the `with` would run a close handshake.
                fail(e, where)
    except Exception as e:  # noqa: BLE001
        fail(e, where)
    os._exit(0)


def tls_context(args):
    if not args.url.startswith("wss://"):
        return None
    import ssl

    return ssl.create_default_context(cafile=args.ca)


def fail(e, where):
    if isinstance(e, Failure):
        emit({"event": "error", "where": e.where, "error": e.error})
    else:
        emit({"event": "error", "where": where, "error": f"{type(e).__name__}: {e}"})
    os._exit(1)


if __name__ == "__main__":
    main()
