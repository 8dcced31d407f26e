"""The seed scenario (seeds/003): a sender thread and a receiver thread on one connection,
closed with shutdown (and drained) or with close while the receiver is blocked; against
wshandle's own server (python/examples/seed_server.py) and the raw seed peer."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

import pytest
from helpers import DEADLINE, EXAMPLES, wait_blocked

import wshandle


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_client = load_example("seed_client")
seed_server = load_example("seed_server")

FULL = [seed_client.FULL_REPLY] * seed_client.FULL_REPLIES


@pytest.fixture(params=["wshandle", "raw"])
def seed_url(request, make_server, make_peer):
    if request.param == "wshandle":
        server = make_server(seed_server.serve, path="/seed")
        yield server.url
        replies, total, client_close = server.result()
        assert (replies, total, client_close) == (33, 128 << 20, (1000, ""))
    else:
        peer = make_peer("raw_server.py", "--mode", "seed")
        yield peer.url
        assert peer.event("done") == {"event": "done", "replies": 33, "bytes": 128 << 20}


def test_seed_shutdown_then_drain(seed_url: str) -> None:
    r = seed_client.run(seed_url, "shutdown", quiet=True)
    assert r["receiver"] == "close frame"
    assert r["replies"] == FULL + [seed_client.LAST_REPLY]  # the last word after our close
    assert r["close_status"] == (1000, "")
    assert r["state"] is wshandle.State.CLOSED


def test_seed_close_while_receiver_blocked(seed_url: str) -> None:
    r = seed_client.run(seed_url, "close", before_close=wait_blocked, quiet=True)
    assert r["receiver"] == "cancelled"  # its blocked recv was cancelled by close
    assert r["replies"] == FULL  # the last reply was read and discarded by close
    assert r["close_status"] == (1000, "")
    assert r["state"] is wshandle.State.CLOSED


def test_seed_examples_as_programs() -> None:
    """The example files as a user runs them: one server process, the client in both modes."""
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(wshandle.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "seed_server.py"),
            "ws://127.0.0.1:0/seed",
            "2",
            str(DEADLINE),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = server.stdout.readline()
        assert first.startswith("listening on port "), first
        url = f"ws://127.0.0.1:{int(first.split()[-1])}/seed"
        for mode, replies in (("shutdown", 33), ("close", 32)):
            out = subprocess.run(
                [sys.executable, str(EXAMPLES / "seed_client.py"), url, mode],
                capture_output=True,
                text=True,
                env=env,
                timeout=DEADLINE,
            )
            assert out.returncode == 0, out.stdout + out.stderr
            last = out.stdout.splitlines()[-1]
            assert last.startswith(f"seed {mode} ok: {replies} replies"), last
        rest = server.communicate(timeout=DEADLINE)[0].splitlines()
        assert rest == ["server: 33 replies, 134217728 bytes, client closed with 1000"] * 2
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
