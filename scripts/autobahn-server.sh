#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzingclient against c-examples/echo_server.c (the server
# role only, against the release build) and prints the results by outcome and section.
# scripts/autobahn.sh does the work and also tests the client role; see its header.
set -euo pipefail
cd "$(dirname "$0")/.."
WSHANDLE_AUTOBAHN_PROFILE=${WSHANDLE_AUTOBAHN_PROFILE:-release} exec bash scripts/autobahn.sh server
