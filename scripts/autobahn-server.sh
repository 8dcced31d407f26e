#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzingclient (the industry's WebSocket conformance suite)
# against c-examples/echo_server.c on 127.0.0.1 and prints the results by outcome.
# Autobahn is Python 2 only: it is installed into target/autobahn-venv from the pyenv
# CPython 2.7.18 this machine image carries (see ../shared/PEERS.md).
# Reports land in target/autobahn/server/ (index.json and HTML).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/autobahn-venv
if [ ! -x "$venv/bin/wstest" ]; then
  py2=$(pyenv root)/versions/2.7.18/bin/python2.7
  "$py2" -m pip install -q 'virtualenv<20.22' 2>/dev/null
  "$py2" -m virtualenv -q "$venv"
  "$venv/bin/pip" install -q autobahntestsuite 2>/dev/null
fi

cargo build --release --quiet
mkdir -p target/autobahn
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I include c-examples/echo_server.c \
   -o target/autobahn/echo_server -L target/release -lwshandle -lpthread \
   -Wl,-rpath,"$PWD/target/release"

server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true' EXIT
fifo=$(mktemp -u) && mkfifo "$fifo"
target/autobahn/echo_server ws://127.0.0.1:0/ 300 > "$fifo" &
server_pid=$!
exec 3< "$fifo" && rm -f "$fifo"
read -r _ _ _ port <&3

cat > target/autobahn/fuzzingclient.json <<JSON
{
  "outdir": "./target/autobahn/server",
  "servers": [{"agent": "wshandle", "url": "ws://127.0.0.1:$port"}],
  "cases": ["*"],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
JSON
timeout 600 "$venv/bin/wstest" -m fuzzingclient -s target/autobahn/fuzzingclient.json > target/autobahn/wstest.log 2>&1
kill "$server_pid" 2>/dev/null || true
server_pid=

python3 - target/autobahn/server/index.json <<'PY'
import collections, json, sys
results = json.load(open(sys.argv[1]))["wshandle"]
by = collections.Counter()
close = collections.Counter()
odd = []
for case, r in sorted(results.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]):
    by[r["behavior"]] += 1
    close[r["behaviorClose"]] += 1
    if r["behavior"] != "OK" or r["behaviorClose"] not in ("OK", "INFORMATIONAL"):
        odd.append(f'{case}: {r["behavior"]} / close {r["behaviorClose"]}')
print(f"{len(results)} cases; behavior: {dict(by)}; close behavior: {dict(close)}")
for line in odd:
    print("  " + line)
failed = by.get("FAILED", 0) + close.get("FAILED", 0)
print("autobahn: FAILED" if failed else "autobahn: no case FAILED")
sys.exit(1 if failed else 0)
PY
