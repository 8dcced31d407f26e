#!/usr/bin/env bash
# The packaging checks (part of scripts/test.sh), all against what a user installs:
#   1. scripts/install.sh into a prefix: SONAME, symlinks, only ws_* exported from the .so and
#      global in the .a, sizes, the split debug information found by gdb; DESTDIR + --libdir.
#   2. C programs built with `pkg-config --cflags --libs wshandle` and with `--static` run the
#      echo against the library's listener (c-examples/echo_server.c, built the same way).
#   3. The static library next to a second Rust static library (a throwaway crate built here)
#      in one program: rustc's own libwshandle.a clashes, the installed one links and runs.
#   4. A CMake project with find_package(wshandle) (shared and static targets, C and C++).
#   5. The C++ wrapper's examples under ASan + UBSan: echo (own listener and the C server) and
#      the seed scenario both ways against c-examples/seed_server.c; -fno-exceptions too.
#   6. Python: the wheel retagged manylinux by auditwheel (tag checked against the glibc
#      symbols the library needs), installed into a fresh venv and imported from outside the
#      repository; the sdist (the crate inside) installed into another fresh venv; twine check.
# Servers listen on 127.0.0.1 with a deadline and are stopped by PID. Work dir target/packaging.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
work="$repo/target/packaging"
rm -rf "$work"
mkdir -p "$work/bin"
outside="$(mktemp -d)" # a directory outside the repository, for the Python imports

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$outside"
}
trap cleanup EXIT

start=$SECONDS
step() { echo "== packaging ($((SECONDS - start)) s): $*"; }
fail() { echo "test-packaging: FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
contains() { case "$1" in *"$2"*) ;; *) fail "$3: '$2' not in: $1" ;; esac; }

py="$(bash scripts/setup-test-env.sh --print-python | tail -n 1)"
version="$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' Cargo.toml | head -n 1)"
minor="$(echo "$version" | cut -d. -f2)"
soname="libwshandle.so.0.$minor"
real="libwshandle.so.$version"

# ---- 1. install --------------------------------------------------------------------------

step "scripts/install.sh --prefix target/packaging/prefix"
prefix="$work/prefix"
bash scripts/install.sh --prefix "$prefix" --man
lib="$prefix/lib"
expect_eq "$(readlink "$lib/libwshandle.so")" "$soname" "libwshandle.so symlink"
expect_eq "$(readlink "$lib/$soname")" "$real" "$soname symlink"
expect_eq "$(readelf -d "$lib/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')" "$soname" "SONAME"
for f in include/wshandle.h include/wshandle.hpp lib/libwshandle.a lib/pkgconfig/wshandle.pc \
         lib/cmake/wshandle/wshandleConfig.cmake lib/cmake/wshandle/wshandleConfigVersion.cmake \
         "lib/.debug/$real.debug" share/doc/wshandle/LICENSE-MIT \
         share/doc/wshandle/LICENSE-APACHE share/doc/wshandle/CHANGELOG.md \
         share/man/man3/ws_close.3 share/man/man3/ws_shutdown.3 share/man/man3/wshandle.3; do
    [ -f "$prefix/$f" ] || fail "not installed: $f"
done
exported="$(nm -D --defined-only "$lib/$real" | awk '{print $3}' | sort)"
[ -n "$exported" ] && ! grep -v '^ws_' <<<"$exported" >/dev/null \
    || fail "the .so exports more than ws_*: $(grep -v '^ws_' <<<"$exported" | head)"
static_globals="$(readelf -sW "$lib/libwshandle.a" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" {print $8}' | sort)"
expect_eq "$static_globals" "$exported" "global symbols of the .a vs the .so's exports"
contains "$(grep '^\.TH' "$prefix/share/man/man3/ws_close.3")" '.TH "WS_CLOSE" "3"' "man 3 ws_close is a section-3 page"
so_size=$(stat -c %s "$lib/$real")
a_size=$(stat -c %s "$lib/libwshandle.a")
[ "$so_size" -lt $((8 << 20)) ] || fail "the installed .so is $so_size bytes"
[ "$a_size" -lt $((24 << 20)) ] || fail "the installed .a is $a_size bytes"
readelf -SW "$lib/$real" | grep -q '\.debug_info' && fail "the installed .so still has .debug_info"
line="$(gdb -nx -batch -ex 'info line ws_connect' "$lib/$real" 2>&1)"
contains "$line" 'src/ffi/' "gdb reads ws_connect's source line through the gnu-debuglink"
echo "   .so $so_size bytes (build tree $(stat -c %s target/release/libwshandle.so)), .a $a_size bytes (build tree $(stat -c %s target/release/libwshandle.a)), .debug $(stat -c %s "$lib/.debug/$real.debug") bytes"
echo "   exported: $(wc -l <<<"$exported") ws_* functions; gdb: $line"

step "DESTDIR=... scripts/install.sh --no-build --prefix /usr --libdir lib/x86_64-linux-gnu"
DESTDIR="$work/destdir" bash scripts/install.sh --no-build --prefix /usr --libdir lib/x86_64-linux-gnu >/dev/null
ma="$work/destdir/usr/lib/x86_64-linux-gnu"
for f in "$real" "$soname" libwshandle.so libwshandle.a pkgconfig/wshandle.pc cmake/wshandle/wshandleConfig.cmake; do
    [ -e "$ma/$f" ] || fail "DESTDIR install: $ma/$f missing"
done
expect_eq "$(find "$work/destdir" -mindepth 1 -maxdepth 1)" "$work/destdir/usr" "nothing outside DESTDIR/usr"
expect_eq "$(PKG_CONFIG_SYSROOT_DIR= PKG_CONFIG_PATH="$ma/pkgconfig" pkg-config --variable=libdir wshandle)" \
    /usr/lib/x86_64-linux-gnu "wshandle.pc libdir under multiarch"
contains "$(cat "$ma/cmake/wshandle/wshandleConfig.cmake")" '${CMAKE_CURRENT_LIST_DIR}/../../../..' \
    "the CMake config finds the prefix 4 levels up"

# ---- 2. C with pkg-config ----------------------------------------------------------------

export PKG_CONFIG_PATH="$lib/pkgconfig"
expect_eq "$(pkg-config --modversion wshandle)" "$version" "pkg-config --modversion"
rpath="-Wl,-rpath,$(pkg-config --variable=libdir wshandle)"
cwarn=(-std=c11 -Wall -Wextra -Werror -pedantic)

# build_c NAME OUT [flags...]: c-examples/NAME.c against the installed shared library
build_c() {
    local name="$1" out="$2"
    shift 2
    # shellcheck disable=SC2046
    cc "${cwarn[@]}" "$@" "c-examples/$name.c" -o "$work/bin/$out" \
        $(pkg-config --cflags --libs wshandle) -lpthread "$rpath"
}

# serve NAME ARGS...: starts a server (its first line: "listening on port N"); sets $port
serve() {
    local name="$1"
    shift
    local fifo="$work/$name.fifo"
    mkfifo "$fifo"
    "$work/bin/$name" "$@" > "$fifo" &
    pids+=("$!")
    eval "exec {fd}< \"$fifo\""
    rm -f "$fifo"
    local line
    read -r -t 60 line <&"$fd" || fail "$name printed no port"
    port="${line#listening on port }"
    server_fd=$fd
}

step "C: echo_server and echo_client built with pkg-config --cflags --libs wshandle"
build_c echo_server echo_server
build_c seed_server seed_server
build_c echo_client echo_client
serve echo_server ws://127.0.0.1:0/ 600 # stops by itself after 600 s at the latest
echo_url="ws://127.0.0.1:$port/"
out="$(timeout 60 "$work/bin/echo_client" "$echo_url")"
contains "$out" "echo ok" "echo_client (shared)"
contains "$(readelf -d "$work/bin/echo_client")" "[$soname]" "echo_client NEEDED"

step "C: echo_client built with pkg-config --static (libwshandle.a)"
# `--static` adds Libs.private; -l:libwshandle.a picks the archive over the .so in libdir.
# shellcheck disable=SC2046
cc "${cwarn[@]}" c-examples/echo_client.c -o "$work/bin/echo_client_static" \
    $(pkg-config --cflags wshandle) \
    $(pkg-config --static --libs wshandle | sed 's/-lwshandle\b/-l:libwshandle.a/')
readelf -d "$work/bin/echo_client_static" | grep -q libwshandle && fail "echo_client_static needs libwshandle.so"
out="$(timeout 60 "$work/bin/echo_client_static" "$echo_url")"
contains "$out" "echo ok" "echo_client (static)"

# ---- 3. two Rust static libraries in one program ----------------------------------------

step "C: libwshandle.a and a second Rust staticlib in one program"
other="$work/other-crate"
mkdir -p "$other/src"
cat > "$other/Cargo.toml" <<'EOF'
[package]
name = "other"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["staticlib"]

[workspace]
EOF
cat > "$other/src/lib.rs" <<'EOF'
//! Another Rust library with a C ABI: std's allocator, formatting and panic machinery.
use std::ffi::{c_char, CStr};

/// The length of "hello, NAME"; 0 after a panic.
#[no_mangle]
pub extern "C" fn other_greeting_len(name: *const c_char) -> usize {
    // SAFETY: the caller passes a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    std::panic::catch_unwind(|| format!("hello, {name}").len()).unwrap_or(0)
}
EOF
cat > "$other/main.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "wshandle.h"
size_t other_greeting_len(const char *name);
int main(void) {
    ws_handle h = 0;
    if (ws_open("ws://127.0.0.1:1/", &h) != WS_OK || ws_close_handle(h) != WS_OK) return 1;
    if (other_greeting_len("wshandle") != strlen("hello, wshandle")) return 1;
    printf("both ok: wshandle %s\n", ws_version());
    return 0;
}
EOF
(cd "$other" && CARGO_TARGET_DIR="$other/target" cargo build --release --quiet)
native="$(pkg-config --libs-only-l --static wshandle | sed 's/-lwshandle\b//')"
# --whole-archive (how static libraries are bundled into a shared object or a plugin host)
# pulls every member: each Rust runtime defines rust_eh_personality, __rust_alloc, ... (with
# two different rustc versions that happens even without --whole-archive).
link_both() {
    # shellcheck disable=SC2086
    cc -std=c11 -I "$prefix/include" "$other/main.c" -o "$2" \
        -Wl,--whole-archive "$1" "$other/target/release/libother.a" -Wl,--no-whole-archive $native
}
if link_both target/release/libwshandle.a "$work/bin/clash" 2>"$work/clash.log"; then
    fail "rustc's own libwshandle.a linked next to another Rust staticlib: the check below proves nothing"
fi
contains "$(cat "$work/clash.log")" "multiple definition of" "rustc's staticlib clashes"
link_both "$lib/libwshandle.a" "$work/bin/both"
contains "$("$work/bin/both")" "both ok: wshandle $version" "the installed .a next to another Rust staticlib"
echo "   rustc's libwshandle.a: $(grep -c 'multiple definition' "$work/clash.log") multiple definitions; installed: links and runs"

# ---- 4. CMake ----------------------------------------------------------------------------

step "CMake: find_package(wshandle 0.$minor) with wshandle::wshandle and wshandle::wshandle_static"
cm="$work/cmake-project"
mkdir -p "$cm"
cat > "$cm/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(uses_wshandle C CXX)
find_package(wshandle 0.$minor REQUIRED)
find_package(Threads REQUIRED)
add_executable(echo_client_cmake "$repo/c-examples/echo_client.c")
target_link_libraries(echo_client_cmake PRIVATE wshandle::wshandle Threads::Threads)
add_executable(echo_client_cmake_static "$repo/c-examples/echo_client.c")
target_link_libraries(echo_client_cmake_static PRIVATE wshandle::wshandle_static)
add_executable(echo_cpp_cmake "$repo/cpp-examples/echo.cpp")
set_target_properties(echo_cpp_cmake PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_libraries(echo_cpp_cmake PRIVATE wshandle::wshandle Threads::Threads)
EOF
cmake -S "$cm" -B "$cm/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >"$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log"; fail "cmake configure"; }
cmake --build "$cm/build" -j 2 >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake build"; }
contains "$(timeout 60 "$cm/build/echo_client_cmake" "$echo_url")" "echo ok" "CMake, shared"
contains "$(timeout 60 "$cm/build/echo_client_cmake_static" "$echo_url")" "echo ok" "CMake, static"
readelf -d "$cm/build/echo_client_cmake_static" | grep -q libwshandle && fail "the static CMake target needs libwshandle.so"
contains "$(timeout 60 "$cm/build/echo_cpp_cmake" "$echo_url")" "cpp echo ok" "CMake, C++"
# the version file: 0.(minor+1) is refused
cat > "$cm/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(wants_newer C)
find_package(wshandle 0.$((minor + 1)) REQUIRED)
EOF
if cmake -S "$cm" -B "$cm/build-newer" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake-newer.log" 2>&1; then
    fail "find_package(wshandle 0.$((minor + 1))) accepted version $version"
fi
contains "$(cat "$work/cmake-newer.log")" "$version" "CMake names the version it found"

# ---- 5. C++ under ASan + UBSan -----------------------------------------------------------

step "C++: the examples with -Wall -Wextra -Werror, under ASan + UBSan"
cxxflags=(-std=c++17 -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined
          -fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1)
for ex in echo seed_client noexcept_echo async_echo; do
    extra=()
    [ "$ex" = noexcept_echo ] && extra=(-fno-exceptions)
    # shellcheck disable=SC2046
    g++ "${cxxflags[@]}" "${extra[@]}" "cpp-examples/$ex.cpp" -o "$work/bin/cpp_$ex" \
        $(pkg-config --cflags --libs wshandle) -pthread "$rpath"
done
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
contains "$(timeout 120 "$work/bin/cpp_echo")" "cpp echo ok" "C++ echo, own listener"
contains "$(timeout 120 "$work/bin/cpp_echo" "$echo_url")" "cpp echo ok" "C++ echo against echo_server.c"
contains "$(timeout 120 "$work/bin/cpp_noexcept_echo" "$echo_url")" "cpp noexcept echo ok" "C++ -fno-exceptions echo"
contains "$(timeout 120 "$work/bin/cpp_async_echo" "$echo_url")" "cpp async echo ok" "C++ async echo (queue mode)"
echo_fd=$server_fd
serve seed_server ws://127.0.0.1:0/seed 2 300
seed_url="ws://127.0.0.1:$port/seed"
contains "$(timeout 120 "$work/bin/cpp_seed_client" "$seed_url" shutdown)" \
    "seed shutdown ok: 33 replies, close 1000" "C++ seed, shutdown"
contains "$(timeout 120 "$work/bin/cpp_seed_client" "$seed_url" close)" \
    "seed close ok: 32 replies, receive" "C++ seed, close"
seed_out="$(timeout 60 cat <&"$server_fd")"
expect_eq "$(grep -c 'server: 33 replies, 134217728 bytes, client closed with 1000' <<<"$seed_out")" 2 \
    "seed_server saw both C++ clients"
unset ASAN_OPTIONS UBSAN_OPTIONS
exec {echo_fd}<&- # the echo server keeps running until the end (killed by PID)

# ---- 6. Python: wheel and sdist ----------------------------------------------------------

step "Python: pip wheel ./python, auditwheel repair, twine check"
dist="$work/dist"
"$py" -m pip wheel --no-deps -q --disable-pip-version-check -w "$dist/raw" ./python
raw_whl="$(ls "$dist"/raw/wshandle-"$version"-py3-none-linux_x86_64.whl)"
mkdir -p "$work/wheel-so" && (cd "$work/wheel-so" && "$py" -m zipfile -e "$raw_whl" .)
glibc_max="$(objdump -T "$work/wheel-so/wshandle/libwshandle.so" | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -n 1)"
need_minor="${glibc_max#GLIBC_2.}"
show="$(PATH="$(dirname "$py"):$PATH" "$py" -m auditwheel show "$raw_whl" 2>&1)"
PATH="$(dirname "$py"):$PATH" "$py" -m auditwheel repair -w "$dist" "$raw_whl" >"$work/auditwheel.log" 2>&1 \
    || { cat "$work/auditwheel.log"; fail "auditwheel repair"; }
whl="$(ls "$dist"/wshandle-"$version"-py3-none-manylinux_*_x86_64.whl)" || fail "no manylinux wheel"
tag="$(basename "$whl" .whl | sed 's/.*-py3-none-//')"
tag_minor="$(sed -n 's/^manylinux_2_\([0-9]*\)_x86_64.*/\1/p' <<<"$tag")"
[ -n "$tag_minor" ] && [ "$tag_minor" -ge "$need_minor" ] || fail "tag $tag for a library needing $glibc_max"
contains "$show" "\"manylinux_2_${tag_minor}_x86_64\"" "auditwheel show names the tag given"
echo "   $(basename "$whl"): the library needs $glibc_max at most; $(stat -c %s "$whl") bytes"

"$py" -m build --sdist --outdir "$dist" ./python >"$work/sdist.log" 2>&1 || { cat "$work/sdist.log"; fail "python -m build --sdist"; }
sdist="$dist/wshandle-$version.tar.gz"
members="$(tar tzf "$sdist")"
for f in setup.py pyproject.toml PKG-INFO LICENSE-MIT LICENSE-APACHE wshandle/__init__.py \
         crate/Cargo.toml crate/Cargo.lock crate/build.rs crate/cbindgen.toml crate/src/lib.rs \
         crate/include/wshandle.h crate/LICENSE-MIT; do
    grep -qx "wshandle-$version/$f" <<<"$members" || fail "sdist lacks $f"
done
grep -q "^wshandle-$version/crate/tests/" <<<"$members" && fail "the sdist carries the crate's tests"
"$py" -m twine check --strict "$whl" "$sdist" || fail "twine check"

step "Python: the manylinux wheel in a fresh venv, imported from outside the repository"
"$py" -m venv "$work/venv-wheel"
"$work/venv-wheel/bin/python" -m pip install -q --disable-pip-version-check --no-index "$whl"
cat > "$outside/check_wshandle.py" <<'EOF'
"""Imports the installed wshandle and runs an echo through its own listener."""
import os
import sys
import threading

import wshandle

site = sys.argv[1]
assert wshandle.library_path.startswith(site), (wshandle.library_path, site)
assert os.path.dirname(wshandle.__file__).startswith(site), wshandle.__file__
with wshandle.listen("ws://127.0.0.1:0/echo") as listener:
    def serve() -> None:
        with listener.accept() as ws:
            for message in ws:
                ws.send(message)

    server = threading.Thread(target=serve)
    server.start()
    with wshandle.connect(f"ws://127.0.0.1:{listener.port}/echo", receive_timeout=10) as ws:
        ws.send("hello from the wheel")
        assert ws.recv() == "hello from the wheel"
    server.join(30)
    assert not server.is_alive()
print("python ok", wshandle.__version__, wshandle.library_path)
EOF
site="$(cd "$outside" && "$work/venv-wheel/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
out="$(cd "$outside" && env -u WSHANDLE_LIBRARY -u PYTHONPATH timeout 60 "$work/venv-wheel/bin/python" check_wshandle.py "$site")"
contains "$out" "python ok $version" "the wheel imports and echoes"
echo "   $out"

step "Python: the sdist in a fresh venv (cargo builds the crate carried inside it)"
"$py" -m venv "$work/venv-sdist"
# The cargo target directory of `pip install ./python` is reused for the dependencies; the
# crate itself is compiled from the sdist's copy.
(cd "$outside" && env -u WSHANDLE_LIBRARY CARGO_TARGET_DIR="$repo/python/build/cargo-target" \
    "$work/venv-sdist/bin/python" -m pip install -q --disable-pip-version-check "$sdist") \
    || fail "pip install of the sdist"
site="$(cd "$outside" && "$work/venv-sdist/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
out="$(cd "$outside" && env -u WSHANDLE_LIBRARY -u PYTHONPATH timeout 60 "$work/venv-sdist/bin/python" check_wshandle.py "$site")"
contains "$out" "python ok $version" "the sdist's build imports and echoes"
echo "   $out"

step "all packaging checks passed"
