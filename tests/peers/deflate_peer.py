#!/usr/bin/env python3
"""permessage-deflate peer for wshandle's tests, built on `websockets` (client: the
threading client; server: asyncio).

Usage:
    deflate_peer.py --role client --url URL --config CONFIG [--deadline SECS]
    deflate_peer.py --role server --config CONFIG [--deadline SECS]

CONFIG is how `websockets` negotiates permessage-deflate:
    default       websockets' defaults (12-bit windows both ways, context takeover)
    no_takeover   client_no_context_takeover and server_no_context_takeover, 15-bit windows
    bits          client_max_window_bits=9, server_max_window_bits=10, context takeover

Every data frame the peer receives is counted: `compressed_in` is the number with RSV1 set
(one per compressed message). One JSON object per line on stdout:

    client: {"event":"echo","ok":true,"extensions":"...","compressed_in":N,
             "close_code":1000,"close_reason":"done"}
    server: PORT <n>, then per connection
            {"event":"closed","extensions":"...","compressed_in":N,"messages":M,
             "rcvd_code":1000,"rcvd_reason":"done"}
    either: {"event":"error","where":"...","error":"..."}

The client sends MESSAGES (below) and checks each echo; the server echoes every message.
"""

import argparse
import asyncio
import json
import os
import random
import sys
import threading

from websockets.extensions import permessage_deflate as pmd

_print_lock = threading.Lock()
COMPRESSED_IN = [0]


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# Count compressed frames on their way in (websockets decodes every data frame here).
_decode = pmd.PerMessageDeflate.decode


def _counting_decode(self, frame, *args, **kwargs):
    if frame.rsv1:
        COMPRESSED_IN[0] += 1
    return _decode(self, frame, *args, **kwargs)


pmd.PerMessageDeflate.decode = _counting_decode


def messages():
    """What the client sends: similar JSON texts (context takeover pays), empty and tiny
    messages, a fragmented text, 1 MiB of compressible and 200 KiB of random binary."""
    rnd = random.Random(7)
    out = []
    for i in range(20):
        out.append(json.dumps({"type": "trade", "seq": i, "symbol": "BTC-USD",
                               "price": f"{43000 + i * 1.25:.2f}", "size": "0.0125",
                               "side": "buy" if i % 2 else "sell"}))
    out.append("")
    out.append(b"")
    out.append("hi")
    out.append(["frag", "ment", "ed \u00e9\u20ac"])
    out.append(bytes(rnd.choice(b"ABCD    \n") for _ in range(1 << 20)))
    out.append(rnd.randbytes(200 * 1024))
    return out


def extensions(config):
    if config == "default":
        return {"client": [pmd.ClientPerMessageDeflateFactory()],
                "server": [pmd.ServerPerMessageDeflateFactory()]}
    if config == "no_takeover":
        return {"client": [pmd.ClientPerMessageDeflateFactory(
                    client_no_context_takeover=True, server_no_context_takeover=True,
                    client_max_window_bits=True)],
                "server": [pmd.ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True, client_no_context_takeover=True)]}
    if config == "bits":
        return {"client": [pmd.ClientPerMessageDeflateFactory(
                    client_max_window_bits=9, server_max_window_bits=10)],
                "server": [pmd.ServerPerMessageDeflateFactory(
                    client_max_window_bits=9, server_max_window_bits=10)]}
    raise SystemExit(f"unknown config {config}")


def run_client(url, config):
    from websockets.sync.client import connect

    try:
        ws = connect(url, extensions=extensions(config)["client"], compression=None,
                     max_size=None, ping_interval=None, proxy=None)
    except Exception as e:  # noqa: BLE001
        emit({"event": "error", "where": "connect", "error": repr(e)})
        return 1
    with ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        try:
            for m in messages():
                ws.send(m)
                got = ws.recv()
                want = "".join(m) if isinstance(m, list) else m
                if got != want:
                    emit({"event": "error", "where": "echo",
                          "error": f"echo differs: sent {len(want)} got {len(got)}"})
                    return 1
            ws.close(1000, "done")
        except Exception as e:  # noqa: BLE001
            emit({"event": "error", "where": "echo", "error": repr(e)})
            return 1
        rcvd = ws.protocol.close_rcvd
        emit({"event": "echo", "ok": True, "extensions": ext,
              "compressed_in": COMPRESSED_IN[0],
              "close_code": rcvd.code if rcvd else None,
              "close_reason": rcvd.reason if rcvd else None})
    return 0


async def serve_forever(config):
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws):
        COMPRESSED_IN[0] = 0
        n = 0
        try:
            async for msg in ws:
                n += 1
                await ws.send(msg)
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        emit({"event": "closed",
              "extensions": ws.response.headers.get("Sec-WebSocket-Extensions", ""),
              "compressed_in": COMPRESSED_IN[0], "messages": n,
              "rcvd_code": rcvd.code if rcvd else None,
              "rcvd_reason": rcvd.reason if rcvd else None})

    async with serve(handler, "127.0.0.1", 0, extensions=extensions(config)["server"],
                     compression=None, max_size=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        with _print_lock:
            sys.stdout.write(f"PORT {port}\n")
            sys.stdout.flush()
        await asyncio.Future()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["client", "server"], required=True)
    ap.add_argument("--url")
    ap.add_argument("--config", default="default")
    ap.add_argument("--deadline", type=float, default=60)
    a = ap.parse_args()

    def fire():
        _print_lock.acquire(timeout=1)
        if a.role == "client":
            sys.stdout.write(json.dumps({"event": "error", "where": "deadline",
                                         "error": "deadline passed"}) + "\n")
            sys.stdout.flush()
        os._exit(0 if a.role == "server" else 1)

    t = threading.Timer(a.deadline, fire)
    t.daemon = True
    t.start()
    if a.role == "client":
        sys.exit(run_client(a.url, a.config))
    asyncio.run(serve_forever(a.config))


if __name__ == "__main__":
    main()
