#!/usr/bin/env python3
"""Independent WebSocket peer for wshandle's tests, built on `websockets` (asyncio).

Usage:
    ws_server.py --mode {echo,server-close,ping} [--deadline SECS]
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
"""

import argparse
import asyncio
import json
import os
import sys
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

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
    p.add_argument("--mode", required=True, choices=["echo", "server-close", "ping"])
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
