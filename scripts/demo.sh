#!/usr/bin/env bash
# Builds libwshandle and runs the seed scenario (seeds/003: a client streams 1024 binary
# messages of 128 KiB while a second thread receives the server's text replies) in C, both
# ways: ws_shutdown and drain, then ws_close while the receiver is blocked.
# The server is tests/peers/raw_server.py in `seed` mode, on 127.0.0.1, with a deadline.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
python=$(bash scripts/setup-test-env.sh --print-python | tail -n 1)
mkdir -p target/demo
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I include c-examples/seed_client.c \
   -o target/demo/seed_client -L target/release -lwshandle -lpthread \
   -Wl,-rpath,"$PWD/target/release"

peer_pid=
cleanup() { [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null || true; }
trap cleanup EXIT

for mode in shutdown close; do
  fifo=$(mktemp -u) && mkfifo "$fifo"
  "$python" tests/peers/raw_server.py --mode seed --deadline 120 > "$fifo" &
  peer_pid=$!
  exec 3< "$fifo" && rm -f "$fifo"
  read -r _ port <&3
  echo "== seed scenario, $mode, against a seed server on 127.0.0.1:$port"
  timeout 120 target/demo/seed_client "ws://127.0.0.1:$port/seed" "$mode" | tail -n 4
  kill "$peer_pid" 2>/dev/null || true
  wait "$peer_pid" 2>/dev/null || true
  exec 3<&-
  peer_pid=
done
