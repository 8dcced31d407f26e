"""A wshandle client in Python: one echo round trip, then the full close.

    python hello_client.py ws://127.0.0.1:9001/echo
"""

import sys

import wshandle


def main(url: str) -> int:
    # connect() = ws_open + options + ws_connect; timeouts are in seconds.
    with wshandle.connect(url, receive_timeout=10) as ws:
        ws.send("hello from Python")  # str: a text message; bytes: binary
        echo = ws.recv()  # one whole message, however many pieces it came in
        print(f"got {echo!r}")
        ws.close(1000, "done")  # the whole handshake, bounded by close_timeout
        print(f"server closed with {ws.close_status}")
    # leaving the block releases the handle (ws_close_handle)
    return 0 if echo == "hello from Python" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
