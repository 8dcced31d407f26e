"""A wshandle echo server in Python: one thread per connection.

    python hello_server.py [CONNECTIONS]

Listens on a free port of 127.0.0.1 (printed as "listening on port N"), echoes every
message, and exits after serving CONNECTIONS clients (default 1).
"""

import sys
import threading

import wshandle


def echo(ws: wshandle.WebSocket) -> None:
    with ws:  # on leaving: answers the client's close, releases the handle
        for message in ws:  # every message until the client's close frame
            ws.send(message)


def main(connections: int) -> int:
    # Port 0 picks a free port; accept() gives up after receive_timeout seconds.
    with wshandle.listen("ws://127.0.0.1:0/echo", receive_timeout=60) as listener:
        print(f"listening on port {listener.port}", flush=True)
        threads = []
        for _ in range(connections):
            t = threading.Thread(target=echo, args=(listener.accept(),))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    print(f"served {connections} connections", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
