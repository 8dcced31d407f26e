#!/usr/bin/env bash
# The full Autobahn|Testsuite run, sections 12 and 13 (permessage-deflate, 216 cases of 1,000
# messages each) included, in both roles; strict: any FAILED, NON-STRICT or UNIMPLEMENTED case
# fails it. It takes about 35 minutes a role on this 2-core machine (Autobahn's Python 2
# compressor is the slow side), so scripts/test.sh runs only a slice of 12 and 13 (see
# scripts/autobahn.sh) and this script is run by hand; its results are in docs/conformance.md.
#
#   bash scripts/autobahn-deflate-full.sh [both|server|client]
#
# The two roles may run at once (reports in target/autobahn-full-ROLE/):
#   bash scripts/autobahn-deflate-full.sh server & bash scripts/autobahn-deflate-full.sh client
set -euo pipefail
cd "$(dirname "$0")/.."
export WSHANDLE_AUTOBAHN_OUT=${WSHANDLE_AUTOBAHN_OUT:-target/autobahn-full-${1:-both}}
export WSHANDLE_AUTOBAHN_DEFLATE=full
export WSHANDLE_AUTOBAHN_LIMIT=${WSHANDLE_AUTOBAHN_LIMIT:-5400}
export WSHANDLE_AUTOBAHN_PROFILE=${WSHANDLE_AUTOBAHN_PROFILE:-release}
export WSHANDLE_AUTOBAHN_STRICT=${WSHANDLE_AUTOBAHN_STRICT:-1}
export WSHANDLE_AUTOBAHN_VALGRIND=0
exec bash scripts/autobahn.sh "${1:-both}"
