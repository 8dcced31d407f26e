#!/usr/bin/env bash
# Regenerates include/wshandle.h: build.rs writes the header into OUT_DIR, this copies it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
src=$(ls -t target/debug/build/wshandle-*/out/wshandle.h | head -n 1)
cp "$src" include/wshandle.h
echo "include/wshandle.h updated from $src"
