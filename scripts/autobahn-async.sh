#!/usr/bin/env bash
# Autobahn|Testsuite against the asynchronous mode, both roles, in queue mode and in callback
# mode: the server role against c-examples/async_echo_server.c (queue) and
# async_callback_echo_server.c (callback), the client role with
# c-examples/async_autobahn_client.c in either mode; the same cases as scripts/autobahn.sh
# (its header says which), the C programs under ASan + UBSan. Strict: fails when any case is
# FAILED, NON-STRICT or UNIMPLEMENTED.
#
#   bash scripts/autobahn-async.sh [queue|callback|both]      (default both)
#
# scripts/test.sh runs all four without the six 128 KiB compression cases; this script runs
# every case of the slice.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-both}" in
  queue) modes=(queue) ;;
  callback) modes=(callback) ;;
  both) modes=(queue callback) ;;
  *) echo "usage: $0 [queue|callback|both]" >&2; exit 2 ;;
esac
for mode in "${modes[@]}"; do
  WSHANDLE_AUTOBAHN_DRIVER=$mode WSHANDLE_AUTOBAHN_STRICT=1 bash scripts/autobahn.sh both
done
