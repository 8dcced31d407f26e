#!/usr/bin/env python3
"""Minimal RFC 6455 server on raw sockets (standard library only).

For behaviours a conforming library will not produce: dropping TCP without a
close frame, never answering a close, sending invalid UTF-8, and reproducing
the counting server from a Stack Overflow question (`seed`).

Usage:
    raw_server.py --mode MODE [--deadline SECS] [--code N] [--reason STR]

    MODE: seed | record | silent | drop-fin | drop-rst | invalid-utf8 | ping
          | server-close | send-then-close | no-upgrade | stall | linger | slow-reader

Binds 127.0.0.1 on an ephemeral port, prints ``PORT <n>`` on its own line,
handles each accepted connection in its own thread, and exits by itself
(exit status 0) when the deadline (default 60 s) passes.

Events (stdout, one JSON object per line, flushed):

    {"event":"request","path":"/","headers":{"host":"...",...}}
    {"event":"frame","opcode":2,"fin":true,"len":5,"head":"0102..."}  (not in seed)
    {"event":"close","code":1000,"reason":""}
    {"event":"pong","payload":"7261772d70696e67"}                   (ping)
    {"event":"done","replies":33,"bytes":134217728}                 (seed)
    {"event":"eof"}                          (TCP EOF before a close frame)
    {"event":"eof","after_ms":12.3}          (silent, EOF after the close)
    {"event":"drop","how":"fin"|"rst"}       (drop-fin / drop-rst)
    {"event":"error","where":"handshake"|"io","error":"..."}
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HANDSHAKE = 64 * 1024
SEED_CHUNK = 4194304

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
DATA_OPCODES = (OP_CONT, OP_TEXT, OP_BINARY)

_print_lock = threading.Lock()
ARGS = None  # the parsed command line, set by main()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def start_watchdog(deadline):
    def fire():
        _print_lock.acquire(timeout=1)  # never leave half a line behind
        os._exit(0)

    t = threading.Timer(deadline, fire)
    t.daemon = True
    t.start()


class Eof(Exception):
    """The peer closed its side of the TCP connection."""


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.last_mask = None

    # ---- reading -------------------------------------------------------
    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Eof()
            self.buf += chunk

    def read_exact(self, n):
        if n == 0:
            return b""
        if n <= 65536 or len(self.buf) >= n:
            self._fill(n)
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        # Large payload: receive straight into a preallocated buffer.
        out = bytearray(n)
        view = memoryview(out)
        have = len(self.buf)
        view[:have] = self.buf
        self.buf.clear()
        while have < n:
            k = self.sock.recv_into(view[have:], min(n - have, 1 << 20))
            if k == 0:
                raise Eof()
            have += k
        view.release()
        return out

    def read_handshake(self):
        """Return the request head (bytes, without the final CRLFCRLF)."""
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[:idx])
                del self.buf[: idx + 4]
                return head
            if len(self.buf) > MAX_HANDSHAKE:
                raise ValueError("handshake larger than 64 KiB")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Eof()
            self.buf += chunk

    def read_frame(self):
        """Return (fin, opcode, payload); payload is unmasked."""
        b0, b1 = self.read_exact(2)
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read_exact(8))
        mask = self.read_exact(4) if masked else None
        self.last_mask = mask
        payload = self.read_exact(length)
        if mask is not None and length:
            payload = unmask(payload, mask)
        return fin, opcode, payload

    # ---- writing -------------------------------------------------------
    def send_frame(self, opcode, payload=b"", fin=True):
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", b0, n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 126, n)
        else:
            head = struct.pack("!BBQ", b0, 127, n)
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_close(self, code=None, reason=""):
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode("utf-8")
        self.send_frame(OP_CLOSE, payload)

    # ---- closing -------------------------------------------------------
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


UNMASK_CHUNK = 1 << 16


def unmask(payload, mask):
    """XOR `payload` with the 4-byte `mask`, as big integers (no byte loop).

    Done in 64 KiB slices: one giant int for a 128 MiB payload costs ~2 s,
    64 KiB slices keep it at ~0.2 s.
    """
    n = len(payload)
    if n <= UNMASK_CHUNK:
        key = (mask * (n // 4 + 1))[:n]
        return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    out = bytearray(n)
    full_key = int.from_bytes(mask * (UNMASK_CHUNK // 4), "big")
    view = memoryview(payload)
    for off in range(0, n, UNMASK_CHUNK):
        part = view[off : off + UNMASK_CHUNK]
        m = len(part)
        key = full_key if m == UNMASK_CHUNK else int.from_bytes((mask * (m // 4 + 1))[:m], "big")
        out[off : off + m] = (int.from_bytes(part, "big") ^ key).to_bytes(m, "big")
    view.release()
    return out


def parse_close(payload):
    if len(payload) < 2:
        return 1005, ""
    (code,) = struct.unpack("!H", payload[:2])
    return code, payload[2:].decode("utf-8", errors="replace")


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def do_handshake(conn):
    """Perform the opening handshake; return True on success."""
    try:
        head = conn.read_handshake()
    except Eof:
        emit({"event": "eof"})
        return False
    except (ValueError, OSError) as e:
        emit({"event": "error", "where": "handshake", "error": str(e)})
        return False

    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) >= 2 else ""
    headers = {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        name, value = name.strip().lower(), value.strip()
        headers[name] = value if name not in headers else headers[name] + ", " + value
    emit({"event": "request", "path": path, "headers": headers})

    key = headers.get("sec-websocket-key")
    if not key:
        conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        emit({"event": "error", "where": "handshake", "error": "missing Sec-WebSocket-Key"})
        return False
    extra = "".join(f"{h}\r\n" for h in ARGS.header)
    if ARGS.status != 101:
        conn.sock.sendall(
            f"HTTP/1.1 {ARGS.status} Refused\r\nContent-Length: 0\r\n{extra}\r\n".encode("latin-1")
        )
        emit({"event": "refused", "status": ARGS.status})
        return False
    conn.sock.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
            f"{extra}"
            "\r\n"
        ).encode("latin-1")
    )
    return True


def frame_event(fin, opcode, payload, mask=None):
    return {"event": "frame", "opcode": opcode, "fin": fin, "len": len(payload),
            "head": payload[:32].hex(), "mask": mask.hex() if mask else None}


def handle(sock, args):
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        try:
            sock = ctx.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            emit({"event": "error", "where": "tls", "error": str(e)})
            sock.close()
            return
    conn = Conn(sock)
    try:
        if args.mode == "no-upgrade":
            return mode_no_upgrade(conn, args)
        if not do_handshake(conn):
            return
        MODES[args.mode](conn, args)
    except Eof:
        emit({"event": "eof"})
    except OSError as e:
        emit({"event": "error", "where": "io", "error": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()


def next_frame(conn, args, print_frames=True):
    """Read one frame, print it, answer pings. Returns (fin, opcode, payload)."""
    fin, opcode, payload = conn.read_frame()
    if print_frames:
        emit(frame_event(fin, opcode, payload, conn.last_mask))
    if opcode == OP_PING:
        conn.send_frame(OP_PONG, payload)
    return fin, opcode, payload


def echo_close_payload(payload):
    """Payload echoing the client's close code with an empty reason."""
    code, _ = parse_close(payload)
    return b"" if code == 1005 else struct.pack("!H", code)


def record_until_close(conn, args, reply=True, on_frame=None):
    """Print frames until the client's close frame; optionally echo its code.

    Returns (code, reason) of the client's close frame.
    """
    while True:
        fin, opcode, payload = next_frame(conn, args)
        if on_frame is not None:
            on_frame(fin, opcode, payload)
        if opcode == OP_CLOSE:
            code, reason = parse_close(payload)
            emit({"event": "close", "code": code, "reason": reason})
            if reply:
                conn.send_frame(OP_CLOSE, echo_close_payload(payload))
            return code, reason


# ---------------------------------------------------------------- modes


def mode_seed(conn, args):
    count = 0
    total = 0
    replies = 0
    while True:
        fin, opcode, payload = next_frame(conn, args, print_frames=False)
        if opcode in DATA_OPCODES:
            n = len(payload)
            total += n
            count += n
            while count >= SEED_CHUNK:
                conn.send_text(f"Server got {SEED_CHUNK} bytes\n")
                replies += 1
                count -= SEED_CHUNK
        elif opcode == OP_CLOSE:
            code, reason = parse_close(payload)
            emit({"event": "close", "code": code, "reason": reason})
            conn.send_text(f"Server got {count} bytes\n")
            replies += 1
            conn.send_close(1000, "")
            emit({"event": "done", "replies": replies, "bytes": total})
            return  # handle() closes TCP at once: the server closes first


def mode_record(conn, args):
    record_until_close(conn, args, reply=True)
    if hasattr(conn.sock, "unwrap"):
        # TLS: send our close_notify and wait for the client's
        try:
            conn.sock.unwrap()
            emit({"event": "tls-closed", "close_notify": True})
        except OSError as e:
            emit({"event": "tls-closed", "close_notify": False, "error": str(e)})


def mode_silent(conn, args):
    record_until_close(conn, args, reply=False)
    t0 = time.monotonic()
    err = None
    try:
        while True:
            next_frame(conn, args)
    except Eof:
        pass
    except OSError as e:
        err = f"{type(e).__name__}: {e}"
    ev = {"event": "eof", "after_ms": round((time.monotonic() - t0) * 1000, 1)}
    if err is not None:
        ev["error"] = err
    emit(ev)


def wait_first_data(conn, args):
    while True:
        fin, opcode, payload = next_frame(conn, args)
        if opcode in DATA_OPCODES:
            return
        if opcode == OP_CLOSE:
            code, reason = parse_close(payload)
            emit({"event": "close", "code": code, "reason": reason})


def mode_drop_fin(conn, args):
    wait_first_data(conn, args)
    # Send FIN now; then drain what the client still sends so that close()
    # does not turn into an RST because of unread data.
    conn.sock.shutdown(socket.SHUT_WR)
    emit({"event": "drop", "how": "fin"})
    conn.sock.settimeout(5.0)
    try:
        while conn.sock.recv(65536):
            pass
    except OSError:
        pass


def mode_drop_rst(conn, args):
    wait_first_data(conn, args)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    emit({"event": "drop", "how": "rst"})
    # handle() closes the socket: with linger on/0 s the kernel sends RST.


def mode_invalid_utf8(conn, args):
    conn.send_frame(OP_TEXT, b"ok\xff\xfe")
    record_until_close(conn, args, reply=True)


def mode_ping(conn, args):
    conn.send_frame(OP_PING, b"raw-ping")

    def on_frame(fin, opcode, payload):
        if opcode == OP_PONG:
            emit({"event": "pong", "payload": payload.hex()})

    record_until_close(conn, args, reply=True, on_frame=on_frame)


def mode_server_close(conn, args):
    conn.send_close(args.code, args.reason)
    record_until_close(conn, args, reply=False)


def mode_send_then_close(conn, args):
    conn.send_text("hello")
    conn.send_frame(OP_BINARY, b"\x00\x01\x02")
    conn.send_close(args.code, args.reason)
    record_until_close(conn, args, reply=False)


def mode_no_upgrade(conn, args):
    """Accept TCP, read the request, never answer; hold the connection until EOF."""
    emit({"event": "tcp"})
    try:
        while conn.sock.recv(65536):
            pass
    except OSError:
        pass
    emit({"event": "eof"})


def mode_stall(conn, args):
    """Never read after the handshake: the client's sends fill the socket buffers."""
    emit({"event": "stalled"})
    time.sleep(args.deadline)


def mode_slow_reader(conn, args):
    """Read steadily but slowly (128 KiB every 20 ms) until EOF: a send to this peer makes
    progress all the time, so WS_OPTION_SEND_TIMEOUT must not fire."""
    total = len(conn.buf)
    conn.buf.clear()
    while True:
        chunk = conn.sock.recv(131072)
        if not chunk:
            break
        total += len(chunk)
        time.sleep(0.02)
    emit({"event": "eof", "bytes": total})


def mode_linger(conn, args):
    """Answer the close, then keep TCP open until the client closes it (RFC 6455 lets a
    client wait for the server's FIN; a client must not wait forever)."""
    record_until_close(conn, args, reply=True)
    t0 = time.monotonic()
    try:
        while conn.sock.recv(65536):
            pass
    except OSError:
        pass
    emit({"event": "eof", "after_ms": round((time.monotonic() - t0) * 1000, 1)})


MODES = {
    "no-upgrade": mode_no_upgrade,
    "stall": mode_stall,
    "linger": mode_linger,
    "slow-reader": mode_slow_reader,
    "seed": mode_seed,
    "record": mode_record,
    "silent": mode_silent,
    "drop-fin": mode_drop_fin,
    "drop-rst": mode_drop_rst,
    "invalid-utf8": mode_invalid_utf8,
    "ping": mode_ping,
    "server-close": mode_server_close,
    "send-then-close": mode_send_then_close,
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", required=True, choices=sorted(MODES))
    p.add_argument("--status", type=int, default=101,
                   help="answer the upgrade with this HTTP status instead of 101 (then close)")
    p.add_argument("--header", action="append", default=[],
                   help="an extra header line for the upgrade response, e.g. 'X-A: b' (repeatable)")
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds after which the process exits by itself (default 60)")
    p.add_argument("--tls-cert", help="serve TLS with this PEM certificate chain")
    p.add_argument("--tls-key", help="the PEM private key for --tls-cert")
    p.add_argument("--code", type=int, default=1001,
                   help="close code for server-close / send-then-close (default 1001)")
    p.add_argument("--reason", default="going away",
                   help="close reason for server-close / send-then-close (default 'going away')")
    args = p.parse_args()
    global ARGS
    ARGS = args

    start_watchdog(args.deadline)
    end = time.monotonic() + args.deadline

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    with _print_lock:
        sys.stdout.write(f"PORT {lsock.getsockname()[1]}\n")
        sys.stdout.flush()

    lsock.settimeout(0.5)
    try:
        while time.monotonic() < end:
            try:
                sock, _ = lsock.accept()
            except socket.timeout:
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(sock, args), daemon=True).start()
    except KeyboardInterrupt:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
