#!/usr/bin/env python3
"""The asynchronous mode's benchmarks (issue 12), for benches/run.sh:

    python benches/async_bench.py ROUNDS OUT.json [--no-moonshot]

Needs the programs of benches/async (built into target/async-bench/release by run.sh) and
Node's ws (NODE_PATH). All traffic on 127.0.0.1; contenders alternate order round by round.

- async echo: 1,000 connections each sending a 64-byte binary message and waiting for its
  echo, again and again (and, in a second run, 8 messages at a time), from one load generator (tokio-tungstenite clients on one thread,
  benches/async/src/bin/loadgen.rs), against wshandle's queue-mode server (one thread),
  a tokio-tungstenite server (multi-thread runtime) and Node's ws. Messages per second, and
  the server's CPU time per message (from /proc/PID/stat over the same window).
- pending sends: 16-byte sends through the C ABI with up to 64 pending (queue mode, one
  thread) against blocking ws_send, to the same tokio-tungstenite sink.
- idle memory: one server process holding 10,000 idle connections (each did one round trip):
  the growth of its resident set per connection, and the kernel's (slab and TCP buffer pages,
  both ends of each loopback connection, from /proc/meminfo and /proc/net/sockstat).
- moonshot: wshandle's server at the per-process limit (19,900 connections from two load
  generators bound to 127.0.0.2 and 127.0.0.3), user-space and kernel memory per connection,
  projected to one million connections.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "async-bench", "release")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
ECHO_CONNECTIONS = 1000
ECHO_SECONDS = 3
IDLE_CONNECTIONS = 10000
MOONSHOT = 19900
SENDS = 1_000_000


class Server:
    """A server process that prints "PORT <n>" first; stopped (by PID) on exit."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline()
        if not line.startswith("PORT "):
            self.p.kill()
            raise RuntimeError(f"{argv[0]} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}/"

    def cpu(self):
        """User + system CPU seconds so far."""
        fields = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


def servers(mode):
    node_path = os.environ.get("NODE_PATH", "")
    return {
        "wshandle": lambda: Server([f"{BIN}/ws_server", mode]),
        "tokio-tungstenite": lambda: Server([f"{BIN}/tt_server", mode]),
        "Node ws": lambda: Server(["node", os.path.join(ROOT, "benches", "node_echo.mjs")],
                                  env=dict(os.environ, NODE_PATH=node_path)),
    }


def run_json(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{argv}: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def echo_load(server, depth):
    """The load generator's echo run against `server`, each connection with `depth` messages
    in flight: (messages/s, the server's CPU µs per message over the same window)."""
    argv = [f"{BIN}/loadgen", "echo", server.url, str(ECHO_CONNECTIONS), "64", str(ECHO_SECONDS), str(depth)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "window":
            raise RuntimeError("the load generator failed")
        cpu0 = server.cpu()
        got = json.loads(p.stdout.readline())
        cpu = server.cpu() - cpu0
        closed = p.stdout.readline().strip()
        if p.wait(timeout=120) != 0 or closed != f"closed {ECHO_CONNECTIONS}":
            raise RuntimeError(f"the load generator ended with {closed!r}")
    finally:
        p.kill()
    return got["messages_per_s"], cpu / got["messages"] * 1e6


def kernel_bytes():
    """Slab memory plus TCP buffer pages, system-wide."""
    slab = 0
    for line in open("/proc/meminfo"):
        if line.startswith("Slab:"):
            slab = int(line.split()[1]) * 1024
    tcp = 0
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            parts = line.split()
            tcp = int(parts[parts.index("mem") + 1]) * PAGE
    return slab + tcp


class Holder:
    """A load generator holding `n` idle connections (from `source`)."""

    def __init__(self, url, n, source="127.0.0.1"):
        self.p = subprocess.Popen([f"{BIN}/loadgen", "hold", url, str(n), source],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.n = n

    def ready(self):
        line = self.p.stdout.readline()
        if line.strip() != f"ready {self.n}":
            self.p.kill()
            raise RuntimeError(f"load generator: {line!r}")

    def release(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        self.p.wait(timeout=120)
        if line.strip() != f"closed {self.n}":
            raise RuntimeError(f"load generator: {line!r}")


def hold(server, parts):
    """Holds sum(parts) connections to `server` (one load generator per part, each from its
    own 127.0.0.x); returns (user bytes, kernel bytes) per connection."""
    rss0, k0 = server.rss(), kernel_bytes()
    holders = [Holder(server.url, n, f"127.0.0.{i + 2}") for i, n in enumerate(parts)]
    for h in holders:
        h.ready()
    n = sum(parts)
    user = (server.rss() - rss0) / n
    kernel = (kernel_bytes() - k0) / n
    for h in holders:
        h.release()
    return user, kernel


def main():
    rounds = int(sys.argv[1])
    out_path = sys.argv[2]
    moonshot = "--no-moonshot" not in sys.argv
    samples = {}

    def add(scenario, contender, value, unit, higher):
        samples.setdefault((scenario, contender, unit, higher), []).append(value)

    for r in range(rounds):
        names = list(servers("echo"))
        order = names[r % len(names):] + names[: r % len(names)]
        for depth, label in ((1, ""), (8, ", 8 in flight")):
            for name in order:
                with servers("echo")[name]() as s:
                    rate, cpu_us = echo_load(s, depth)
                add(f"async echo 1,000 connections × 64 B{label}", name, rate, "msg/s", True)
                add(f"async echo server CPU per message{label}", name, cpu_us, "µs", False)
                print(f"round {r + 1} async echo{label} {name}: {rate:,.0f} msg/s, server CPU {cpu_us:.2f} µs "
                      "per message", flush=True)

        with Server([f"{BIN}/tt_server", "sink"]) as sink:
            kinds = [("wshandle blocking ws_send", "blocking"), ("wshandle, 64 pending", "async")]
            for label, how in (kinds if r % 2 == 0 else kinds[::-1]):
                argv = [f"{BIN}/sendrate", how, sink.url, str(SENDS)] + (["64"] if how == "async" else [])
                rate = run_json(argv)["messages_per_s"]
                add("send 16 B (async mode)", label, rate, "msg/s", True)
                print(f"round {r + 1} send 16 B {label}: {rate:,.0f} msg/s", flush=True)

    # memory: one measurement each (10,000 connections take a while to open)
    for name, argv in [
        ("wshandle", [f"{BIN}/ws_server", "echo"]),
        ("tokio-tungstenite", [f"{BIN}/tt_server", "echo"]),
        ("tokio-tungstenite, 4 KiB read buffer", [f"{BIN}/tt_server", "echo", "--read-buffer", "4096"]),
    ]:
        with Server(argv) as s:
            user, kernel = hold(s, [IDLE_CONNECTIONS])
        add("idle memory per connection at 10,000 (server's resident set)", name, user, "bytes", False)
        add("idle memory per connection at 10,000 (kernel, both ends)", name, kernel, "bytes", False)
        print(f"idle 10,000 {name}: user {user:,.0f} B, kernel {kernel:,.0f} B per connection", flush=True)

    if moonshot:
        with Server([f"{BIN}/ws_server", "echo"]) as s:
            t0 = time.monotonic()
            user, kernel = hold(s, [MOONSHOT // 2, MOONSHOT - MOONSHOT // 2])
            took = time.monotonic() - t0
        add("moonshot: connections held by one server process", "wshandle", MOONSHOT, "connections", True)
        add("moonshot memory per connection (server's resident set)", "wshandle", user, "bytes", False)
        add("moonshot memory per connection (kernel, both ends)", "wshandle", kernel, "bytes", False)
        print(f"moonshot {MOONSHOT:,}: user {user:,.0f} B, kernel {kernel:,.0f} B per connection "
              f"(opened, measured and closed in {took:.0f} s)", flush=True)

    results = []
    for (scenario, contender, unit, higher), xs in sorted(samples.items()):
        results.append({"scenario": scenario, "contender": contender, "unit": unit, "higher_is_better": higher,
                        "samples": xs, "median": statistics.median(xs), "min": min(xs), "max": max(xs)})
    json.dump({"rounds": rounds, "results": results}, open(out_path, "w"), indent=2)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
