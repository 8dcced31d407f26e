#!/usr/bin/env python3
"""The server from seeds/003_708f1961e88b610b.txt, in Python over wshandle's listener.

    python seed_server.py [URL] [CONNECTIONS] [SECONDS]

Listens on URL (default ws://127.0.0.1:0/seed), prints "listening on port N", and serves
CONNECTIONS clients (default 1) one after the other; `accept` and every `recv` give up after
SECONDS (default 120). Like the question's ASP.NET server it counts the bytes it receives and
sends the text "Server got 4194304 bytes\\n" per 4 MiB; when the client's close frame arrives it
sends one last reply, "Server got <n> bytes\\n" (a server may still send in CLOSE_RECEIVED),
and then closes, which answers the client's close and returns at once.
"""

from __future__ import annotations

import sys
from typing import List, Tuple

import wshandle

CHUNK = 4194304


def serve(ws: wshandle.WebSocket) -> Tuple[int, int, Tuple[int, str]]:
    """Serves one connection; returns (replies sent, bytes received, the client's close)."""
    buf = bytearray(64 * 1024)
    count = total = replies = 0
    while True:
        n, kind = ws.recv_into(buf)  # pieces of at most 64 KiB, no copies
        if kind is wshandle.BufferType.CLOSE:
            break
        total += n
        count += n
        while count >= CHUNK:
            ws.send(f"Server got {CHUNK} bytes\n")
            replies += 1
            count -= CHUNK
    client_close = ws.close_status
    assert client_close is not None
    ws.send(f"Server got {count} bytes\n")  # the last word, after the client's close
    replies += 1
    ws.close(1000)  # answers the client's close; returns at once
    return replies, total, client_close


def main(argv: List[str]) -> int:
    url = argv[1] if len(argv) > 1 else "ws://127.0.0.1:0/seed"
    connections = int(argv[2]) if len(argv) > 2 else 1
    seconds = float(argv[3]) if len(argv) > 3 else 120.0
    with wshandle.listen(url, receive_timeout=seconds) as listener:
        print(f"listening on port {listener.port}", flush=True)
        for _ in range(connections):
            with listener.accept() as ws:
                replies, total, (code, _) = serve(ws)
            print(
                f"server: {replies} replies, {total} bytes, client closed with {code}", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
