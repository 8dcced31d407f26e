#!/usr/bin/env python3
"""Independent WebSocket client peer for wshandle's tests, built on
`websocket-client` (the `websocket` module's low-level `WebSocket` class).

Usage:
    wsc_client.py --url URL --scenario {echo,seed} [--deadline SECS]

Connects to URL (websocket-client has no compression and no size limits; no
proxy), runs the scenario, prints one JSON object per line (flushed) and exits 0
on success, 1 on failure (after an "error" line). If the deadline (default 60 s)
passes first, it prints an "error" line and exits 1.

    {"event":"echo","ok":true,"close_code":1000,"close_reason":"done"}
    {"event":"seed","ok":true,"replies":33,"last":"Server got 0 bytes\\n",
     "close_code":1000,"close_reason":"","ms":812.3}
    {"event":"error","where":"connect"|"echo"|"seed"|"deadline","error":"..."}

close_code/close_reason are those of the server's close frame (1005 for an empty
one), null if none was received.

echo: sends text "hello", binary 00 01 02, an empty text, an empty binary, text
"frag"+"ment"+"ed" as 3 frames (send_frame with fin=0, then continuation
frames), binary de ad + be ef as 2 frames and 1 MiB of random bytes; checks that
each comes back as one message with the same type and bytes; then close(1000,
"done"), which reads until the server's close frame.

seed: a second thread receives text replies while the main thread sends 1024
binary messages of 128 KiB; then the main thread sends a close frame (1000,
send_close) and the reader keeps receiving until the server's close frame.
Success: 33 replies, the last one "Server got 0 bytes\\n" (the server sends it
after the client's close frame) received before the server's close frame, and
close code 1000.

The seed reader uses recv_frame() and the library's own continuation-frame
assembler (ws.cont_frame) rather than recv_data_frame(): on a close frame
recv_data_frame() calls send_close() again, i.e. it would send a second close
frame after ours.
"""

import argparse
import json
import os
import struct
import sys
import threading
import time

from websocket import ABNF, WebSocket

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


OPNAME = {ABNF.OPCODE_TEXT: "text", ABNF.OPCODE_BINARY: "binary", ABNF.OPCODE_CLOSE: "close",
          ABNF.OPCODE_PING: "ping", ABNF.OPCODE_PONG: "pong", ABNF.OPCODE_CONT: "cont"}


def describe(opcode, data):
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return f"{OPNAME.get(opcode, opcode)} len={len(raw)} head={raw[:16].hex()}"


def parse_close(frame):
    """(code, reason) of a close frame; (None, None) for no frame."""
    if frame is None:
        return None, None
    data = bytes(frame.data)
    if len(data) < 2:
        return 1005, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", errors="replace")


def echo_steps():
    T, B, C = ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT
    big = os.urandom(1 << 20)
    # (name, [(opcode, payload bytes, fin)], (expected opcode, expected bytes))
    return [
        ("text", [(T, b"hello", 1)], (T, b"hello")),
        ("binary", [(B, b"\x00\x01\x02", 1)], (B, b"\x00\x01\x02")),
        ("empty-text", [(T, b"", 1)], (T, b"")),
        ("empty-binary", [(B, b"", 1)], (B, b"")),
        ("fragmented-text", [(T, b"frag", 0), (C, b"ment", 0), (C, b"ed", 1)], (T, b"fragmented")),
        ("fragmented-binary", [(B, b"\xde\xad", 0), (C, b"\xbe\xef", 1)], (B, b"\xde\xad\xbe\xef")),
        ("1mib-binary", [(B, big, 1)], (B, big)),
    ]


def run_echo(ws, args):
    for name, frames, (want_op, want) in echo_steps():
        for opcode, payload, fin in frames:
            ws.send_frame(ABNF.create_frame(payload, opcode, fin=fin))
        # recv_data() answers pings, reassembles continuation frames and checks
        # UTF-8; text comes back as bytes.
        opcode, data = ws.recv_data()
        if opcode != want_op or bytes(data) != want:
            raise Failure("echo", f"{name}: expected {describe(want_op, want)}, got {describe(opcode, data)}")
    # close() sends the close frame, reads (and drops) frames until the server's
    # close frame, keeps it in ws.close_frame, then closes the socket.
    ws.close(status=1000, reason=b"done", timeout=max(1.0, args.end - time.monotonic()))
    code, reason = parse_close(ws.close_frame)
    emit({"event": "echo", "ok": True, "close_code": code, "close_reason": reason})


def run_seed(ws, args):
    replies = []
    binary = []
    errors = []
    close_frame = []
    close_sent = threading.Event()

    def reader():
        try:
            while True:
                frame = ws.recv_frame()
                op = frame.opcode
                if op in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
                    ws.cont_frame.validate(frame)
                    ws.cont_frame.add(frame)
                    if ws.cont_frame.is_fire(frame):
                        opcode, msg = ws.cont_frame.extract(frame)  # checks UTF-8 of text
                        if opcode == ABNF.OPCODE_TEXT:
                            replies.append(bytes(msg.data).decode("utf-8"))
                        else:
                            binary.append(len(msg.data))
                elif op == ABNF.OPCODE_CLOSE:
                    close_frame.append(frame)
                    return
                elif op == ABNF.OPCODE_PING and not close_sent.is_set():
                    ws.pong(frame.data)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {e}")

    t0 = time.monotonic()
    thread = threading.Thread(target=reader, name="seed-reader", daemon=True)
    thread.start()

    payload = bytes(range(256)) * (SEED_SIZE // 256)
    for _ in range(SEED_MESSAGES):
        ws.send_binary(payload)
    ws.send_close(1000)
    close_sent.set()
    thread.join(max(1.0, args.end - time.monotonic()))
    ms = round((time.monotonic() - t0) * 1000, 1)
    if thread.is_alive():
        raise Failure("seed", "the reader thread did not finish after the close")
    ws.shutdown()  # the server closes TCP first; close our socket too

    code, reason = parse_close(close_frame[0] if close_frame else None)
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


def fail(e, where):
    if isinstance(e, Failure):
        emit({"event": "error", "where": e.where, "error": e.error})
    else:
        emit({"event": "error", "where": where, "error": f"{type(e).__name__}: {e}"})
    os._exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/...")
    p.add_argument("--scenario", required=True, choices=["echo", "seed"])
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds after which the process gives up and exits 1 (default 60)")
    args = p.parse_args()
    args.end = time.monotonic() + args.deadline
    start_watchdog(args.deadline)

    where = "connect"
    try:
        # enable_multithread: separate send and receive locks, so one thread may
        # send while another receives. No socket timeout: the watchdog bounds it.
        ws = WebSocket(enable_multithread=True)
        # websocket-client honours $http_proxy unless $no_proxy matches the host;
        # a test peer always connects directly.
        os.environ["no_proxy"] = "*"
        ws.connect(args.url, timeout=None)
        where = args.scenario
        (run_echo if args.scenario == "echo" else run_seed)(ws, args)
    except Exception as e:  # noqa: BLE001 - any library error is a failed run
        fail(e, where)
    os._exit(0)


if __name__ == "__main__":
    main()
