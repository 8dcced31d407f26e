#!/usr/bin/env python3
"""Turns the benchmark JSON (Rust driver + Python contenders) into benches/results.md and
benches/results.png.

    python benches/report.py RUST.json PYTHON.json COMMAND [MORE.json ...]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_PYTHON = os.environ.get("PEERS_PYTHON", "python3")


def load(paths):
    rows = {}
    rounds = 0
    for p in paths:
        doc = json.load(open(p))
        rounds = max(rounds, doc["rounds"])
        for r in doc["results"]:
            rows[(r["scenario"], r["contender"])] = r
    return rows, rounds


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'"),
        "kernel": platform.release(),
        "rustc": sh("rustc --version"),
        "tungstenite": "0.30 (the crate wshandle builds on)",
        "Boost.Beast": "Boost " + sh("dpkg-query -W -f '${Version}' libboost-dev"),
        "Python": platform.python_version(),
        "websocket-client / websockets": sh(
            f"{PEERS_PYTHON} -c \"import websocket, websockets; print(websocket.__version__, '/', websockets.__version__)\""
        ),
    }


def fmt(v, unit):
    if unit in ("msg/s", "round trips/s"):
        return f"{v / 1e3:,.0f} k"
    if unit in ("bytes", "connections"):
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def main():
    rust, py, command = sys.argv[1], sys.argv[2], sys.argv[3]
    rows, rounds = load([rust, py] + sys.argv[4:])
    med = lambda s, c: rows[(s, c)]["median"]  # noqa: E731

    goals = []

    def goal(name, ratio, target, higher=True, basis=""):
        met = ratio >= target if higher else ratio <= target
        goals.append((name, ratio, target, higher, met, basis))

    for d in ("up (client→server)", "down (server→client)"):
        s = f"bulk {d}"
        paired = (f"{s}, paired ratio", "wshandle ÷ raw TCP")
        if paired in rows:
            cpu = f"{s} CPU"
            goal(f"bulk {d} vs raw TCP", rows[paired]["median"], 0.95,
                 basis=f"median of per-round ratios (ratio of medians {med(s, 'wshandle') / med(s, 'raw TCP'):.2f}); "
                       f"CPU s/GiB {med(cpu, 'wshandle'):.2f} vs {med(cpu, 'raw TCP'):.2f}")
        else:
            goal(f"bulk {d} vs raw TCP", med(s, "wshandle") / med(s, "raw TCP"), 0.95, basis="GiB/s ratio")
    for size in (16, 128):
        s = f"send {size} B (unbatched)"
        goal(f"send {size} B vs raw TCP, one write per message", med(s, "wshandle") / med(s, "raw TCP"), 0.90, basis="msg/s ratio")
        goal(f"send {size} B vs tungstenite", med(s, "wshandle") / med(s, "tungstenite"), 1.0, basis="msg/s ratio")
    s = "send 16 B batched (64 per call)"
    if (s, "wshandle") in rows:
        goal("batched 16 B sends vs raw TCP with the same batching", med(s, "wshandle") / med(s, "raw TCP"), 0.90, basis="msg/s ratio, 64 per call")
    goal("receive 16 B vs tungstenite", med("receive 16 B", "wshandle") / med("receive 16 B", "tungstenite"), 1.2, basis="msg/s ratio")
    for label, target in (("16 B", 1.05), ("16 KiB", 1.10)):
        s = f"ping-pong {label} p50"
        goal(f"ping-pong {label} p50 vs raw TCP", med(s, "wshandle") / med(s, "raw TCP"), target, higher=False, basis="latency ratio")
    s = "Python send 16 B"
    goal("Python send 16 B vs websocket-client", med(s, "wshandle") / med(s, "websocket-client"), 5.0, basis="msg/s ratio")
    goal("Python send 16 B vs websockets (sync)", med(s, "wshandle") / med(s, "websockets sync"), 10.0, basis="msg/s ratio")
    b = "Python send 16 B, 64 per call"
    if (b, "wshandle send_many") in rows:
        goal("Python batched 16 B sends vs websocket-client", med(b, "wshandle send_many") / med(b, "websocket-client (one call each)"), 5.0, basis="msg/s ratio, send_many of 64 vs one send_binary each")
    s = "Python round trip 16 B p50"
    goal("Python ping-pong vs a raw Python socket", med(s, "raw socket") / med(s, "wshandle"), 0.9, basis="rate ratio (raw latency / wshandle latency)")
    for loop in ("asyncio", "uvloop"):
        for s, what in ((f"asyncio echo 256 B ({loop})", "round trips/s ratio"),
                        (f"asyncio send 16 B ({loop})", "msg/s ratio")):
            if (s, "wshandle.asyncio") in rows:
                w = med(s, "wshandle.asyncio")
                goal(f"{s} vs picows", w / med(s, "picows"), 1.0, basis=what)
                goal(f"{s} vs websockets", w / med(s, "websockets asyncio"), 2.0, basis=what)
    rtt = med("ping-pong 16 B p50", "wshandle")
    close_us = med("ws_close", "wshandle")
    goal("ws_close vs 2 round trips + 1 ms", close_us / (2 * rtt + 1000), 1.0, higher=False, basis=f"ws_close {close_us:.0f} µs, RTT {rtt:.1f} µs")
    s = "compressed JSON echo"
    if (s, "Node ws") in rows:
        goal("compressed JSON echo vs Node ws perMessageDeflate", med(s, "wshandle") / med(s, "Node ws"), 1.5, basis="msg/s ratio, one message in flight")
    s = "memory per idle compressed connection"
    if (s, "wshandle") in rows:
        comp = med(s, "wshandle")
        goal("memory per idle compressed connection vs websockets' 70 KiB", comp / (70 * 1024), 1.0, higher=False,
             basis=f"{comp:,.0f} B after 20 echoes; uncompressed after the same {med(s, 'wshandle uncompressed'):,.0f} B; "
                   f"no context takeover {med(s, 'wshandle no context takeover'):,.0f} B")
    s = "async echo 1,000 connections × 64 B"
    if (s, "wshandle") in rows:
        for label in ("", ", 8 in flight"):
            s = f"async echo 1,000 connections × 64 B{label}"
            cpu = f"async echo server CPU per message{label}"
            for peer, target in (("tokio-tungstenite", 1.2), ("Node ws", 1.0)):
                goal(f"async echo, 1,000 connections × 64 B{label}, vs {peer}", med(s, "wshandle") / med(s, peer),
                     target, basis=f"msg/s ratio, one load generator; server CPU per message "
                                   f"{med(cpu, 'wshandle'):.1f} µs vs {med(cpu, peer):.1f} µs")
        s = "send 16 B (async mode)"
        goal("16 B sends, up to 64 pending, vs blocking ws_send", med(s, "wshandle, 64 pending") /
             med(s, "wshandle blocking ws_send"), 3.0, basis="msg/s ratio, same tokio-tungstenite sink")
        s = "idle memory per connection at 10,000 (server's resident set)"
        k = "idle memory per connection at 10,000 (kernel, both ends)"
        user = med(s, "wshandle")
        goal("async idle memory per connection at 10,000 vs 4 KiB", user / 4096, 1.0, higher=False,
             basis=f"{user:,.0f} B (receive buffer of 256 B included); tokio-tungstenite "
                   f"{med(s, 'tokio-tungstenite'):,.0f} B, with a 4 KiB read buffer "
                   f"{med(s, 'tokio-tungstenite, 4 KiB read buffer'):,.0f} B; kernel, both ends "
                   f"{med(k, 'wshandle'):,.0f} B")
        s = "moonshot: connections held by one server process"
        if (s, "wshandle") in rows:
            u = med("moonshot memory per connection (server's resident set)", "wshandle")
            k = med("moonshot memory per connection (kernel, both ends)", "wshandle")
            goal("moonshot: connections held by one server process vs 19,900", med(s, "wshandle") / 19900, 1.0,
                 basis=f"user {u:,.0f} B and kernel (both ends) {k:,.0f} B per connection: one million would take "
                       f"{u * 1e6 / 2**30:.1f} GiB user space, {k * 1e6 / 2**30:.1f} GiB kernel")
    mem = med("memory per idle connection", "wshandle")
    goal("memory per idle connection vs 16 KiB", mem / 16384, 1.0, higher=False, basis=f"{mem:,.0f} B; tungstenite {med('memory per idle connection', 'tungstenite'):,.0f} B")

    lines = ["# Benchmarks", "", f"Generated by `{command}` ({rounds} round{'s' if rounds != 1 else ''}; contenders alternate order "
             "round by round; all traffic on 127.0.0.1; medians with min–max). Figures from one run on "
             "the machine below: compare ratios, not absolute numbers, across machines.", "", "## Machine", ""]
    for k, v in machine().items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Goals (ratios from this run)", "", "| goal | measured | target | met | basis |", "|---|---|---|---|---|"]
    for name, ratio, target, higher, met, basis in goals:
        lines.append(f"| {name} | {ratio:.2f}× | {'≥' if higher else '≤'} {target:.2f}× | {'yes' if met else '**no**'} | {basis} |")
    lines += ["", "## All results", "", "| scenario | contender | median | min–max | unit |", "|---|---|---|---|---|"]
    for (s, c), r in sorted(rows.items()):
        lines.append(f"| {s} | {c} | {fmt(r['median'], r['unit'])} | {fmt(r['min'], r['unit'])} – {fmt(r['max'], r['unit'])} | {r['unit']} |")
    lines += ["", "![ratios](results.png)", ""]
    open(os.path.join(HERE, "results.md"), "w").write("\n".join(lines))

    fig, ax = plt.subplots(figsize=(10, 0.42 * len(goals) + 1.2))
    names = [g[0] for g in goals][::-1]
    # normalise so that 1.0 is the goal and right is better
    scores = [(g[1] / g[2]) if g[3] else (g[2] / g[1]) for g in goals][::-1]
    colors = ["#2e7d32" if s >= 1 else "#c62828" for s in scores]
    ax.barh(names, scores, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    for y, s in enumerate(scores):
        ax.text(s, y, f" {s:.2f}", va="center", fontsize=8)
    ax.set_xlabel("measured ratio ÷ goal, log scale (≥ 1 meets the goal)")
    ax.set_title(f"wshandle benchmark goals ({rounds} rounds, medians)")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "results.png"), dpi=110)
    print(f"wrote {os.path.join(HERE, 'results.md')} and results.png")


if __name__ == "__main__":
    main()
