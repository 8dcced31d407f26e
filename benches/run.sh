#!/usr/bin/env bash
# The benchmark command: builds everything in release mode and measures, in one run, wshandle
# against raw TCP, tungstenite, Boost.Beast and the Python clients (blocking, and asyncio:
# picows, websockets, aiohttp; benches/asyncio_bench.py) on 127.0.0.1, and
# compressed (permessage-deflate) JSON echoes against Node's ws, and the asynchronous mode
# (benches/async_bench.py) against tokio-tungstenite and Node's ws, then writes
# benches/results.md and benches/results.png.
#
#   bash benches/run.sh [ROUNDS]      (default 5)
#
# Needs the machines' C++ compiler and Debian's boost headers (installed here if missing),
# and the test set-up (scripts/setup-test-env.sh) for the Python peers and package.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}

bash scripts/setup-test-env.sh
python=target/test-venv/bin/python
if [ ! -f /usr/include/boost/beast.hpp ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libboost-dev >/dev/null
fi
bench_venv=target/bench-venv
if [ ! -x "$bench_venv/bin/python" ]; then
    python3 -m venv "$bench_venv"
fi
"$bench_venv/bin/pip" install -q -r benches/requirements.txt
"$python" -m pip install -q ./python  # the package as users install it (release library)

cargo build --release --benches --quiet
wsbench=$(cargo bench --bench wsbench --no-run --message-format=json 2>/dev/null \
    | "$python" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "wsbench" and m.get("executable"):
        print(m["executable"])')
g++ -std=c++17 -O2 -Wall -Wextra -o target/release/beast_client benches/beast_client.cpp -lpthread
# the asynchronous mode's programs (benches/async: its own workspace, with tokio-tungstenite)
cargo build --release --locked --quiet --manifest-path benches/async/Cargo.toml --target-dir target/async-bench

# Node's ws (perMessageDeflate) for the compressed JSON echo, from the test set-up
NODE_PATH="$(bash scripts/setup-test-env.sh --print-node-path | tail -n 1)" \
    "$wsbench" --rounds "$rounds" --beast target/release/beast_client --out target/bench-rust.json
"$python" benches/python_bench.py "$wsbench" "$rounds" target/bench-python.json
# wshandle.asyncio against picows, websockets (asyncio) and aiohttp (benches/requirements.txt,
# installed into the test venv, where the package and uvloop are)
"$python" -m pip install -q -r benches/requirements.txt
"$python" benches/asyncio_bench.py "$wsbench" "$rounds" target/bench-asyncio.json
NODE_PATH="$(bash scripts/setup-test-env.sh --print-node-path | tail -n 1)" \
    "$python" benches/async_bench.py "$rounds" target/bench-async.json
PEERS_PYTHON="$python" "$bench_venv/bin/python" benches/report.py target/bench-rust.json target/bench-python.json \
    "bash benches/run.sh $rounds" target/bench-async.json target/bench-asyncio.json
