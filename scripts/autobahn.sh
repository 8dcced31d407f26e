#!/usr/bin/env bash
# Autobahn|Testsuite, the industry's WebSocket conformance suite, against both roles:
#
#   server role: Autobahn's fuzzingclient against c-examples/echo_server.c;
#   client role: c-examples/autobahn_client.c against Autobahn's fuzzingserver, started by
#                scripts/autobahn/fuzzingserver.py on 127.0.0.1 with a deadline.
#
#   bash scripts/autobahn.sh [both|server|client]     (default both)
#
# WSHANDLE_AUTOBAHN_DRIVER=queue|callback tests the asynchronous mode instead, with the same
# cases: the server role against c-examples/async_echo_server.c (queue mode) or
# async_callback_echo_server.c (callback mode), the client role with
# c-examples/async_autobahn_client.c in that mode (scripts/autobahn-async.sh runs all four).
#
# Prints the results by outcome and section (scripts/autobahn/summary.py) and exits 1 when
# any case FAILED in either role. Reports (index.json and HTML) land in
# target/autobahn/{server,client}/.
#
# The C programs are built with AddressSanitizer and UndefinedBehaviorSanitizer (the Rust
# library itself is not instrumented), so the whole run is also a sanitizer run of
# autobahn_client.c and echo_server.c; the client role then runs once more under valgrind
# memcheck (all but section 9), which must report no error and no leak.
#
# Environment:
#   WSHANDLE_AUTOBAHN_PROFILE=debug|release  the library build to test (default debug, the one
#                                            scripts/test.sh has just built)
#   WSHANDLE_AUTOBAHN_CASES='"1.*", "7.*"'   the cases to run (default all but most of 12.*
#                                            and 13.*, permessage-deflate: see below)
#   WSHANDLE_AUTOBAHN_EXCLUDE='"12.1.10"'    cases to leave out (default none)
#   WSHANDLE_AUTOBAHN_DEFLATE=full           run all of 12.* and 13.* too (about 30 minutes per
#                                            role; set WSHANDLE_AUTOBAHN_LIMIT, seconds, to fit)
#   WSHANDLE_AUTOBAHN_STRICT=1               also fail on NON-STRICT (and UNIMPLEMENTED)
#   WSHANDLE_AUTOBAHN_VALGRIND=0             skip the client role's valgrind run
#   WSHANDLE_AUTOBAHN_DRIVER=blocking|queue|callback   which driver's programs (default
#                                            blocking; the valgrind run is the blocking
#                                            client's)
#   WSHANDLE_AUTOBAHN_OUT=DIR                reports and binaries there (default
#                                            target/autobahn; separate runs need separate DIRs)
#
# Autobahn is Python 2 only: it is installed on first use into target/autobahn-venv from the
# pyenv CPython 2.7.18 this machine image carries (see ../shared/PEERS.md), about 25 s.
set -euo pipefail
cd "$(dirname "$0")/.."

roles=${1:-both}
case "$roles" in
  both|server|client) ;;
  *) echo "usage: $0 [both|server|client]" >&2; exit 2 ;;
esac
profile=${WSHANDLE_AUTOBAHN_PROFILE:-debug}
driver=${WSHANDLE_AUTOBAHN_DRIVER:-blocking}
case "$driver" in
  blocking) server_prog=echo_server; client_prog=autobahn_client; client_mode=(); suffix= ;;
  queue) server_prog=async_echo_server; client_prog=async_autobahn_client; client_mode=(queue); suffix=-queue ;;
  callback) server_prog=async_callback_echo_server; client_prog=async_autobahn_client; client_mode=(callback); suffix=-callback ;;
  *) echo "WSHANDLE_AUTOBAHN_DRIVER must be blocking, queue or callback" >&2; exit 2 ;;
esac
cases=${WSHANDLE_AUTOBAHN_CASES:-'"*"'}
out=${WSHANDLE_AUTOBAHN_OUT:-target/autobahn}
venv=target/autobahn-venv
# seconds for one role's whole run; it takes 10-20 s without compression, about 2 min with
# the default slice of 12 and 13
run_limit=${WSHANDLE_AUTOBAHN_LIMIT:-600}

# One run at a time per tree: two runs would share target/autobahn (reports, binaries).
mkdir -p "$out"
if command -v flock >/dev/null 2>&1; then
  exec 8>"$out/.lock"
  flock -w 900 8 || { echo "autobahn: another run still holds $out/.lock after 900 s" >&2; exit 1; }
fi

if [ ! -x "$venv/bin/wstest" ]; then
  py2=$(pyenv root)/versions/2.7.18/bin/python2.7
  [ -x "$py2" ] || { echo "autobahn: needs pyenv's CPython 2.7.18 at $py2" >&2; exit 1; }
  "$py2" -m pip install -q 'virtualenv<20.22' 2>/dev/null
  "$py2" -m virtualenv -q "$venv"
  "$venv/bin/pip" install -q autobahntestsuite 2>/dev/null
fi

case "$profile" in
  debug) cargo build --quiet ;;
  release) cargo build --release --quiet ;;
  *) echo "WSHANDLE_AUTOBAHN_PROFILE must be debug or release" >&2; exit 2 ;;
esac
lib="$PWD/target/$profile"
mkdir -p "$out"
for prog in "$server_prog" "$client_prog"; do
  cc -std=c11 -O1 -g -Wall -Wextra -Werror -pedantic -I include "c-examples/$prog.c" \
     -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
     -o "$out/$prog" -L "$lib" -lwshandle -lpthread -Wl,-rpath,"$lib"
done
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts "$@" in the background with stdout to $log, and waits for its first line naming
# the port (at most 30 s). Sets $pid and $port.
start_listening() {
  local log=$1 pattern=$2; shift 2
  "$@" > "$log" 2>&1 8>&- &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 300); do
    port=$(sed -n "s/^$pattern\$/\\1/p" "$log" | head -n 1)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "autobahn: $1 did not start:" >&2
  cat "$log" >&2
  exit 1
}

reports=()
# Sections 12 and 13 (permessage-deflate, 216 cases of 1,000 messages each) take about 30
# minutes in full here (scripts/autobahn-deflate-full.sh runs them); by default this run
# takes a representative slice of about 100 s per role: every data set of 12 with its
# smallest and largest whole payloads (x.y.1: 16 bytes, x.y.10: 128 KiB), every parameter
# set of 13 with the smallest (13.y.1), and 13.5.18 (128 KiB in 32 KiB fragments, a 9-bit
# window, no context takeover).
exclude=${WSHANDLE_AUTOBAHN_EXCLUDE:-}
if [ "$cases" = '"*"' ]; then
  cases='"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*", "11.*"'
  # (a pattern with * matches by prefix, so these are listed one by one)
  for c in 12.1.1 12.1.10 12.2.1 12.2.10 12.3.1 12.3.10 12.4.1 12.4.10 12.5.1 12.5.10 \
           13.1.1 13.2.1 13.3.1 13.4.1 13.5.1 13.6.1 13.7.1 13.5.18; do
    cases="$cases, \"$c\""
  done
fi
[ "${WSHANDLE_AUTOBAHN_DEFLATE:-slice}" = full ] && cases='"*"'

if [ "$roles" != client ]; then
  rm -rf "$out/server$suffix"
  start_listening "$out/$server_prog.log" 'listening on port \([0-9]*\)' \
    "$out/$server_prog" ws://127.0.0.1:0/ "$run_limit"
  server_pid=$pid
  cat > "$out/fuzzingclient.json" <<JSON
{
  "outdir": "./$out/server$suffix",
  "servers": [{"agent": "wshandle", "url": "ws://127.0.0.1:$port"}],
  "cases": [$cases],
  "exclude-cases": [$exclude],
  "exclude-agent-cases": {}
}
JSON
  t0=$(date +%s)
  timeout "$run_limit" "$venv/bin/wstest" -m fuzzingclient -s "$out/fuzzingclient.json" \
    > "$out/wstest.log" 2>&1 || { echo "autobahn: wstest failed, see $out/wstest.log" >&2; tail "$out/wstest.log" >&2; exit 1; }
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "autobahn: $server_prog died during the run:" >&2
    cat "$out/$server_prog.log" >&2
    exit 1
  fi
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  echo "autobahn: server role ($server_prog) ran in $(( $(date +%s) - t0 )) s"
  reports+=("server$suffix=$out/server$suffix/index.json")
fi

# Runs the client role: "$1" is a label and report directory name, "$2" the cases to exclude,
# the rest the command that runs the client program (its URL, agent and mode are appended).
run_client() {
  local label=$1 excluded=$2; shift 2
  rm -rf "${out:?}/$label"
  cat > "$out/fuzzingserver-$label.json" <<JSON
{
  "url": "ws://127.0.0.1:0",
  "outdir": "./$out/$label",
  "cases": [$cases],
  "exclude-cases": [$excluded],
  "exclude-agent-cases": {}
}
JSON
  start_listening "$out/fuzzingserver-$label.log" 'PORT \([0-9]*\)' \
    "$venv/bin/python" scripts/autobahn/fuzzingserver.py "$out/fuzzingserver-$label.json" "$run_limit"
  local fuzz_pid=$pid t0
  t0=$(date +%s)
  if ! timeout "$run_limit" "$@" "ws://127.0.0.1:$port" wshandle "${client_mode[@]}" > "$out/$label.log" 2>&1; then
    echo "autobahn: $client_prog ($label) failed (a sanitizer or valgrind report, or the fuzzingserver vanished):" >&2
    tail -n 40 "$out/$label.log" >&2
    exit 1
  fi
  kill "$fuzz_pid" 2>/dev/null || true
  wait "$fuzz_pid" 2>/dev/null || true
  echo "autobahn: client role ($label) ran in $(( $(date +%s) - t0 )) s"
  reports+=("$label=$out/$label/index.json")
}

if [ "$roles" != server ]; then
  run_client "client$suffix" "$exclude" "$out/$client_prog"
  # The same client under valgrind memcheck (a plain -g build), all but the performance
  # section 9 (16 MiB messages are slow under valgrind): it must find no error and no
  # definite or indirect leak. WSHANDLE_AUTOBAHN_VALGRIND=0 skips it.
  if [ "${WSHANDLE_AUTOBAHN_VALGRIND:-1}" = 1 ] && [ "$driver" = blocking ]; then
    cc -std=c11 -O1 -g -Wall -Wextra -Werror -pedantic -I include c-examples/autobahn_client.c \
       -o "$out/autobahn_client_valgrind" -L "$lib" -lwshandle -lpthread -Wl,-rpath,"$lib"
    # (and of the compression sections only the small messages: zlib is slow under valgrind)
    run_client client-valgrind '"9.*", "12.1.10", "12.2.10", "12.3.10", "12.4.10", "12.5.10", "13.5.18"' \
      valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
      "--log-file=$out/client-valgrind.memcheck" "$out/autobahn_client_valgrind"
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|still reachable" \
      "$out/client-valgrind.memcheck" | sed 's/^==[0-9]*== */autobahn: valgrind: /'
  fi
fi

strict=()
[ "${WSHANDLE_AUTOBAHN_STRICT:-0}" = 1 ] && strict=(--strict)
python3 scripts/autobahn/summary.py "${strict[@]}" "${reports[@]}"
