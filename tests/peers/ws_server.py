#!/usr/bin/env python3
"""Independent WebSocket peer for wshandle's tests, built on `websockets` (asyncio).

Usage:
    ws_server.py --mode {echo,server-close,ping,seed} [--deadline SECS]
                 [--code N] [--reason STR]

Binds 127.0.0.1 on an ephemeral port, prints ``PORT <n>`` on its own line,
then serves any number of connections until the deadline, when the process
exits by itself (exit status 0) whatever it is doing.

Events are printed to stdout, one JSON object per line, flushed:

    {"event":"request","path":"/x","headers":{"host":"...",...}}
    {"event":"pong","ok":true}                                  (ping mode)
    {"event":"closed","rcvd_code":1000,"rcvd_reason":""}        (echo, ping)
    {"event":"closed","rcvd_code":1000,"rcvd_reason":"","sent_code":1001}
                                                                (server-close)
    {"event":"done","replies":33,"bytes":134217728,"rcvd_code":1000}  (seed)

The seed mode is the server of seeds/003_708f1961e88b610b.txt on websockets' own protocol
(framing, masking rules, ping and close answers): it counts the data bytes it receives, sends
the text "Server got 4194304 bytes\n" per 4 MiB, and when the client's close frame arrives
it first sends one last reply, "Server got <n> bytes\n", then lets websockets answer the
close. websockets answers a close by itself before the application sees it, so the counting
runs where the protocol processes each frame (a subclass of its Sans-I/O ServerProtocol).
"""

import argparse
import asyncio
import json
import os
import sys
import threading

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CLOSE, DATA_OPCODES
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

SEED_CHUNK = 4194304

_print_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def start_watchdog(deadline):
    def fire():
        # Hold the print lock so no half-written line is left behind.
        _print_lock.acquire(timeout=1)
        os._exit(0)

    t = threading.Timer(deadline, fire)
    t.daemon = True
    t.start()


def headers_dict(headers):
    out = {}
    for name, value in headers.raw_items():
        key = name.lower()
        out[key] = value if key not in out else out[key] + ", " + value
    return out


def close_rcvd(ws):
    # `close_rcvd` lives on the Sans-I/O protocol object.
    rcvd = getattr(ws, "close_rcvd", None)
    if rcvd is None:
        rcvd = ws.protocol.close_rcvd
    return rcvd


def closed_event(ws):
    rcvd = close_rcvd(ws)
    return {
        "event": "closed",
        "rcvd_code": None if rcvd is None else int(rcvd.code),
        "rcvd_reason": None if rcvd is None else rcvd.reason,
    }


class SeedProtocol(ServerProtocol):
    """websockets' server protocol with the seed server's counting at frame level."""

    seed_count = seed_total = seed_replies = 0

    def recv_frame(self, frame):
        if frame.opcode in DATA_OPCODES:
            self.seed_count += len(frame.data)
            self.seed_total += len(frame.data)
            while self.seed_count >= SEED_CHUNK:
                self.send_text(f"Server got {SEED_CHUNK} bytes\n".encode())
                self.seed_replies += 1
                self.seed_count -= SEED_CHUNK
        elif frame.opcode is CLOSE and self.state is OPEN:
            # the last word, before websockets answers the close
            self.send_text(f"Server got {self.seed_count} bytes\n".encode())
            self.seed_replies += 1
        super().recv_frame(frame)


class SeedConnection(ServerConnection):
    def __init__(self, protocol, *args, **kwargs):
        protocol.__class__ = SeedProtocol
        super().__init__(protocol, *args, **kwargs)


async def echo_loop(ws):
    try:
        async for message in ws:
            # str comes back as text, bytes as binary.
            await ws.send(message)
    except ConnectionClosed:
        pass


def make_handler(args):
    async def handler(ws):
        req = ws.request
        emit({"event": "request", "path": req.path, "headers": headers_dict(req.headers)})

        if args.mode == "echo":
            await echo_loop(ws)
            emit(closed_event(ws))

        elif args.mode == "server-close":
            await ws.close(args.code, args.reason)
            ev = closed_event(ws)
            sent = ws.protocol.close_sent
            ev["sent_code"] = int(sent.code) if sent is not None else args.code
            emit(ev)

        elif args.mode == "seed":
            try:
                async for _ in ws:  # (the replies are sent as the frames arrive)
                    pass
            except ConnectionClosed:
                pass
            rcvd = close_rcvd(ws)
            p = ws.protocol
            emit({"event": "done", "replies": p.seed_replies, "bytes": p.seed_total,
                  "rcvd_code": None if rcvd is None else int(rcvd.code)})

        elif args.mode == "ping":
            ok = False
            try:
                waiter = await ws.ping(b"hello-ping")
                await asyncio.wait_for(waiter, timeout=5)
                ok = True
            except (asyncio.TimeoutError, ConnectionClosed):
                ok = False
            emit({"event": "pong", "ok": ok})
            await echo_loop(ws)
            emit(closed_event(ws))

    return handler


async def amain(args):
    tls = None
    if args.tls_cert:
        import ssl

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    async with serve(
        make_handler(args),
        "127.0.0.1",
        0,
        max_size=None,
        compression=None,
        ping_interval=None,  # no unsolicited keepalive pings in tests
        ssl=tls,
        create_connection=SeedConnection if args.mode == "seed" else None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with _print_lock:
            sys.stdout.write(f"PORT {port}\n")
            sys.stdout.flush()
        # The watchdog ends the process at the deadline; this is a fallback.
        await asyncio.sleep(args.deadline + 5)
    os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", required=True, choices=["echo", "server-close", "ping", "seed"])
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds after which the process exits by itself (default 60)")
    p.add_argument("--code", type=int, default=1001, help="close code for server-close (default 1001)")
    p.add_argument("--tls-cert", help="serve wss:// with this PEM certificate chain")
    p.add_argument("--tls-key", help="the PEM private key for --tls-cert")
    p.add_argument("--reason", default="going away", help="close reason for server-close (default 'going away')")
    args = p.parse_args()

    start_watchdog(args.deadline)
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    main()
