"""Fixtures: wshandle's own servers (in process) and the peers of tests/peers/ (subprocesses),
all on 127.0.0.1 with deadlines, all stopped when the test ends."""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Iterator, List

import pytest
from helpers import PEERS, Peer, Server, echo

# scripts/test.sh sets this: a missing peer library is then a failure, not a skip.
REQUIRE_PEERS = os.environ.get("WSHANDLE_REQUIRE_PEERS") == "1"


def require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        if REQUIRE_PEERS:
            pytest.fail(f"{module} is not installed (scripts/setup-test-env.sh installs it)")
        pytest.skip(f"{module} is not installed")


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    """make_server(handler, path="/", **listen_options) -> a running in-process Server."""
    servers: List[Server] = []

    def make(handler: Callable[..., Any] = echo, path: str = "/", **options: Any) -> Server:
        s = Server(handler, path, **options)  # scheme="wss" plus tls_cert_file/tls_key_file
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def make_peer() -> Iterator[Callable[..., Peer]]:
    """make_peer("raw_server.py", "--mode", "seed") -> a running peer subprocess."""
    peers: List[Peer] = []

    def make(script: str, *args: str, **kw: Any) -> Peer:
        if script == "ws_server.py":
            require("websockets")
        p = Peer(PEERS / script, *args, **kw)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.stop()


@pytest.fixture
def echo_server(make_server: Callable[..., Server]) -> Server:
    return make_server(echo)


@pytest.fixture(params=["wshandle", "websockets"])
def echo_url(
    request: Any, make_server: Callable[..., Server], make_peer: Callable[..., Peer]
) -> str:
    """An echo server: wshandle's own listener, and Python `websockets` (ws_server.py)."""
    if request.param == "wshandle":
        return make_server(echo).url
    return make_peer("ws_server.py", "--mode", "echo").url
