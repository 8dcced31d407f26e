"""10,000 connect/close cycles with resident memory bounded."""

from __future__ import annotations

import gc

from helpers import rss_bytes

import wshandle

CYCLES = 10_000
WARM_UP = 500
#: Generous (measured growth: well under 1 MiB); a leak of 2 KiB per cycle exceeds it, and a
#: lost 64 KiB receive buffer per cycle would by far.
SLACK = 16 << 20


def test_connect_close_cycles_keep_memory_bounded(echo_server) -> None:
    url = echo_server.url

    def cycle(i: int) -> None:
        with wshandle.connect(url, receive_timeout=20) as ws:
            if i % 2:
                ws.send(b"ping")  # every other cycle also moves a message both ways
                assert ws.recv() == b"ping"
        # leaving the block: the full close handshake, then ws_close_handle
        result = echo_server.result()  # the server side saw our close (and is done)
        assert result["client_close"] == (1000, ""), result

    for i in range(WARM_UP):
        cycle(i)
    gc.collect()
    before = rss_bytes()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    after = rss_bytes()
    assert after - before < SLACK, f"RSS grew by {(after - before) >> 10} KiB over {CYCLES} cycles"


def test_dropped_handles_are_released_by_the_garbage_collector(echo_server) -> None:
    import weakref

    ws = wshandle.connect(echo_server.url)
    h = ws.handle
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None
    # The finalizer released the handle: the library no longer knows it.
    probe = wshandle.WebSocket._from_handle(h)
    try:
        probe.state
        raise AssertionError("the handle is still open")
    except wshandle.InvalidHandle:
        pass
    finally:
        probe._finalizer.detach()
