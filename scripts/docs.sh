#!/usr/bin/env bash
# Builds the documentation site and the man pages, with warnings as errors, then checks every
# link of the built site (scripts/docs_linkcheck.py).
#
#   bash scripts/docs.sh            # -> target/docs/html/index.html (open it as a file),
#                                   #    target/docs/man/man3/*.3 (man -M target/docs/man 3 ws_close)
#
# Sphinx and its extensions come from docs/requirements.txt (pinned) in target/docs-venv;
# Graphviz (`dot`, for the diagrams) from Debian's package when missing. The Python reference
# imports the package from python/ against target/debug/libwshandle.so (built here if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
out="${WSHANDLE_DOCS_OUT:-$repo/target/docs}"
venv="${WSHANDLE_DOCS_VENV:-$repo/target/docs-venv}"
req="$repo/docs/requirements.txt"
stamp="$venv/.wshandle-docs-requirements.sha256"

die() { echo "docs: error: $*" >&2; exit 1; }

if ! command -v dot >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; } \
        >/dev/null 2>&1 || die "cannot install graphviz (apt-get install graphviz; run as root)"
fi

mkdir -p "$repo/target"
exec 8>"$repo/target/.docs.lock"           # one docs build per tree at a time
flock -w 600 8 || die "another docs build holds target/.docs.lock"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || die "python3 -m venv $venv failed (apt-get install python3-venv)"
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$want" != "$(cat "$stamp" 2>/dev/null || true)" ]; then
    rm -f "$stamp"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 \
        || die "pip install -r $req failed"
    echo "$want" > "$stamp"
fi

lib="$repo/target/debug/libwshandle.so"
cargo build --quiet --lib
[ -f "$lib" ] || die "$lib missing after cargo build"

export WSHANDLE_LIBRARY="$lib"
export PYTHONDONTWRITEBYTECODE=1
sphinx=("$venv/bin/python" -m sphinx -E -W --keep-going -n -q -d "$out/doctrees")
"${sphinx[@]}" -b html docs "$out/html"
"${sphinx[@]}" -b man docs "$out/man"
"$venv/bin/python" scripts/docs_linkcheck.py "$out/html"
echo "docs: $out/html/index.html, man pages in $out/man/man3"
