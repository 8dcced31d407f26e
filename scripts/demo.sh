#!/usr/bin/env bash
# Builds libwshandle (release) and runs the seed scenario of seeds/003 in C with both sides
# from wshandle: c-examples/seed_server.c (the question's ASP.NET server: a text reply per
# 4 MiB, one last reply after the client's close, then its own close) and
# c-examples/seed_client.c (1024 binary messages of 128 KiB while a second thread receives
# the replies), closed both ways: ws_shutdown and drain, then ws_close while the receiver
# is blocked. Everything runs on 127.0.0.1; the server stops by itself after 120 s.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
mkdir -p target/demo
for prog in seed_server seed_client; do
  cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I include "c-examples/$prog.c" \
     -o "target/demo/$prog" -L target/release -lwshandle -lpthread \
     -Wl,-rpath,"$PWD/target/release"
done

server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true' EXIT
fifo=$(mktemp -u) && mkfifo "$fifo"
target/demo/seed_server ws://127.0.0.1:0/seed 2 120 > "$fifo" &
server_pid=$!
exec 3< "$fifo" && rm -f "$fifo"
read -r _ _ _ port <&3
echo "== seed_server listening on 127.0.0.1:$port"

for mode in shutdown close; do
  echo "== seed_client, $mode"
  timeout 120 target/demo/seed_client "ws://127.0.0.1:$port/seed" "$mode" | tail -n 4
  read -r line <&3 && echo "   $line"
done
wait "$server_pid"
server_pid=
