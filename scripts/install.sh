#!/usr/bin/env bash
# Builds libwshandle in release and installs it the way C libraries are installed:
#
#   bash scripts/install.sh --prefix /usr/local
#   DESTDIR=/tmp/stage bash scripts/install.sh --prefix /usr --libdir lib/x86_64-linux-gnu
#
# Installs (paths under DESTDIR + prefix; LIBDIR defaults to lib):
#   LIBDIR/libwshandle.so.X.Y.Z   SONAME libwshandle.so.0.Y while 0.x (libwshandle.so.X from 1.0)
#   LIBDIR/libwshandle.so.0.Y -> libwshandle.so.X.Y.Z,  LIBDIR/libwshandle.so -> libwshandle.so.0.Y
#   LIBDIR/libwshandle.a          one relocatable object: only ws_* global (see below)
#   LIBDIR/.debug/libwshandle.so.X.Y.Z.debug   the DWARF split off the .so (gnu-debuglink)
#   LIBDIR/pkgconfig/wshandle.pc                     Libs.private for static links
#   LIBDIR/cmake/wshandle/wshandleConfig.cmake       wshandle::wshandle, wshandle::wshandle_static
#   LIBDIR/cmake/wshandle/wshandleConfigVersion.cmake
#   INCLUDEDIR/wshandle.h, INCLUDEDIR/wshandle.hpp
#   DATADIR/doc/wshandle/ README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE
#   DATADIR/man/man3/ws_*.3, wshandle.3   the C reference as man pages (`man 3 ws_close`), when
#                      built: --man builds them (scripts/docs.sh, from the header's doc
#                      comments); without it, pages already in target/docs/man/man3 are installed
#
# Options:
#   --prefix DIR       default /usr/local
#   --libdir DIR       relative to the prefix, or absolute (multiarch: lib/x86_64-linux-gnu)
#   --includedir DIR   default include;  --datadir DIR  default share
#   --no-build         install what the last build left (fails if it is missing or stale)
#   --no-strip         install the .so and .a with their debug information (distributions
#                      that split debug info themselves, e.g. dh_strip, want this)
#   --man              build the man pages first (needs python3; Sphinx goes into its own venv)
#
# The build is ONE cargo command (print it with --print-build-command): the release profile,
# crate types cdylib + staticlib, and the SONAME as a link argument of the cdylib. Running it
# again is a no-op when nothing changed, so the library the packaging tests run against
# (scripts/test-packaging.sh) is exactly the one installed. CARGO_TARGET_DIR is honoured.
#
# The static library: rustc's staticlib is an archive of every object of the crate, std and
# all dependencies, with thousands of global symbols (Rust-mangled functions, rust_eh_personality,
# __rustc::__rust_alloc, compiler-builtins' __addvti3..., ring's C symbols). A second Rust static
# library in the same program built by another rustc duplicates some of them ("multiple
# definition of `rust_eh_personality'"). So the archive is relinked into one relocatable object
# (ld -r, rooted at the ws_* functions), every defined global except ws_* is made local
# (objcopy --keep-global-symbol), the one COMDAT group (DW.ref.rust_eh_personality) is renamed
# so it is not merged with another Rust library's, and rustc's embedded LLVM bitcode is dropped.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=/usr/local
libdir=lib
includedir=include
datadir=share
build=1
strip_debug=1
print_build=0
man=0

die() { echo "install.sh: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --libdir) libdir="${2:?--libdir needs a directory}"; shift 2 ;;
        --libdir=*) libdir="${1#*=}"; shift ;;
        --includedir) includedir="${2:?}"; shift 2 ;;
        --includedir=*) includedir="${1#*=}"; shift ;;
        --datadir) datadir="${2:?}"; shift 2 ;;
        --datadir=*) datadir="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        --no-strip) strip_debug=0; shift ;;
        --print-build-command) print_build=1; shift ;;
        --man) man=1; shift ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

case "$prefix" in /*) ;; *) die "--prefix must be absolute: $prefix" ;; esac
prefix="${prefix%/}"
# Paths as written into wshandle.pc / the CMake files (relative to ${prefix} where possible).
rel() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
abs_libdir="$(rel "$libdir")"
abs_includedir="$(rel "$includedir")"
abs_datadir="$(rel "$datadir")"
dest="${DESTDIR:-}"

# ---- version and names -----------------------------------------------------------------

version="$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$repo/Cargo.toml" | head -n 1)"
[[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "no plain X.Y.Z version in Cargo.toml: '$version'"
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
if [ "$major" = 0 ]; then soname="libwshandle.so.0.$minor"; else soname="libwshandle.so.$major"; fi
real="libwshandle.so.$version"

build_cmd=(cargo rustc --manifest-path "$repo/Cargo.toml" --release --locked --lib
           --crate-type cdylib --crate-type staticlib
           -- -C "link-arg=-Wl,-soname,$soname" --print native-static-libs)
if [ "$print_build" = 1 ]; then
    printf '%q ' "${build_cmd[@]}"; echo
    exit 0
fi

for tool in objcopy ld ar readelf install; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (binutils, coreutils)"
done

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
out="$target_dir/release"
native_libs_file="$out/wshandle-native-static-libs.txt"

# ---- build -------------------------------------------------------------------------------

if [ "$build" = 1 ]; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! "${build_cmd[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        die "the build failed: ${build_cmd[*]}"
    fi
    # cargo replays the note for a fresh build, so this is there on a no-op too
    libs="$(sed -n 's/^note: native-static-libs: //p' "$log" | tail -n 1)"
    [ -n "$libs" ] || { cat "$log" >&2; die "rustc printed no native-static-libs"; }
    printf '%s\n' "$libs" > "$native_libs_file"
fi
[ -f "$out/libwshandle.so" ] && [ -f "$out/libwshandle.a" ] && [ -f "$native_libs_file" ] \
    || die "no build in $out: run without --no-build"
got_soname="$(readelf -d "$out/libwshandle.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$got_soname" = "$soname" ] \
    || die "$out/libwshandle.so has SONAME '$got_soname', not '$soname' (built by another command; run without --no-build)"
native_libs="$(cat "$native_libs_file")"

# ---- stage everything in a scratch directory, then install -------------------------------

stage="$(mktemp -d)"
trap 'rm -rf "$stage" ${log:+"$log"}' EXIT

# The shared library: DWARF split into a .debug file that gdb and valgrind find through the
# gnu-debuglink (LIBDIR/.debug/ is searched next to the library for any prefix); the symbol
# table stays, so backtraces name functions even without the .debug file.
cp "$out/libwshandle.so" "$stage/$real"
if [ "$strip_debug" = 1 ]; then
    objcopy --only-keep-debug --compress-debug-sections=zlib "$stage/$real" "$stage/$real.debug"
    objcopy --strip-debug --remove-section=.comment "$stage/$real"
    (cd "$stage" && objcopy --add-gnu-debuglink="$real.debug" "$real")
fi

# The static library (see the header comment).
roots=()
while read -r sym; do roots+=(-u "$sym"); done < <(
    readelf -sW "$out/libwshandle.a" | awk '$5 == "GLOBAL" && $7 != "UND" && $8 ~ /^ws_/ {print $8}' | sort -u)
[ "${#roots[@]}" -gt 0 ] || die "no ws_* symbol in $out/libwshandle.a"
ld -r "${roots[@]}" -o "$stage/wshandle.o" "$out/libwshandle.a" 2>"$stage/ld.err" \
    || { cat "$stage/ld.err" >&2; die "ld -r failed"; }
objcopy_args=(--remove-section=.llvmbc --remove-section=.llvmcmd --wildcard --keep-global-symbol='ws_*')
[ "$strip_debug" = 1 ] && objcopy_args+=(--strip-debug)
objcopy "${objcopy_args[@]}" "$stage/wshandle.o"
groups="$(readelf -gW "$stage/wshandle.o" | grep '^COMDAT group section' | grep -o '\[[^]]*\] contains' | sed 's/^\[//; s/\] contains$//')"
for g in $groups; do
    objcopy --redefine-sym "$g=wshandle.$g" "$stage/wshandle.o"
done
leaked="$(readelf -sW "$stage/wshandle.o" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" && $8 !~ /^ws_/ {print $8}')"
[ -z "$leaked" ] || die "global symbols other than ws_* left in the static library: $leaked"
(cd "$stage" && ar rcD libwshandle.a wshandle.o)

# pkg-config: paths relative to ${prefix} when they are under it, so the file stays right
# when a package is relocated; Libs.private is what rustc says a static link needs.
pc_path() { case "$1" in "$prefix"/*) echo "\${prefix}${1#"$prefix"}" ;; *) echo "$1" ;; esac; }
cat > "$stage/wshandle.pc" <<EOF
prefix=$prefix
libdir=$(pc_path "$abs_libdir")
includedir=$(pc_path "$abs_includedir")

Name: wshandle
Description: WebSockets with a C ABI in the style of WinHTTP
Version: $version
Libs: -L\${libdir} -lwshandle
Libs.private: $native_libs
Cflags: -I\${includedir}
EOF

# CMake: the config file finds the prefix from its own location (relocatable), unless a
# directory is outside the prefix.
cmake_dir="$abs_libdir/cmake/wshandle"
case "$cmake_dir" in
    "$prefix"/*)
        up="$(echo "${cmake_dir#"$prefix"/}" | sed 's#[^/][^/]*#..#g')"
        cmake_prefix="\${CMAKE_CURRENT_LIST_DIR}/$up" ;;
    *) cmake_prefix="$prefix" ;;
esac
cmake_path() { case "$1" in "$prefix"/*) echo "\${_wshandle_prefix}${1#"$prefix"}" ;; *) echo "$1" ;; esac; }
cmake_libs="$(for l in $native_libs; do printf '%s;' "${l#-l}"; done)"
sed -e "s#@PREFIX@#$cmake_prefix#g" \
    -e "s#@LIBDIR@#$(cmake_path "$abs_libdir")#g" \
    -e "s#@INCLUDEDIR@#$(cmake_path "$abs_includedir")#g" \
    -e "s#@REAL@#$real#g" -e "s#@SONAME@#$soname#g" -e "s#@VERSION@#$version#g" \
    -e "s#@NATIVE_LIBS@#${cmake_libs%;}#g" \
    "$repo/packaging/wshandleConfig.cmake.in" > "$stage/wshandleConfig.cmake"
sed -e "s#@VERSION@#$version#g" \
    "$repo/packaging/wshandleConfigVersion.cmake.in" > "$stage/wshandleConfigVersion.cmake"

# ---- install -----------------------------------------------------------------------------

L="$dest$abs_libdir"
install -d "$L" "$L/pkgconfig" "$dest$cmake_dir" "$dest$abs_includedir" \
    "$dest$abs_datadir/doc/wshandle"
install -m 0755 "$stage/$real" "$L/$real"
ln -sfn "$real" "$L/$soname"
ln -sfn "$soname" "$L/libwshandle.so"
if [ "$strip_debug" = 1 ]; then
    install -d "$L/.debug"
    install -m 0644 "$stage/$real.debug" "$L/.debug/$real.debug"
fi
install -m 0644 "$stage/libwshandle.a" "$L/libwshandle.a"
install -m 0644 "$stage/wshandle.pc" "$L/pkgconfig/wshandle.pc"
install -m 0644 "$stage/wshandleConfig.cmake" "$stage/wshandleConfigVersion.cmake" "$dest$cmake_dir/"
install -m 0644 "$repo/include/wshandle.h" "$repo/include/wshandle.hpp" "$dest$abs_includedir/"
install -m 0644 "$repo/README.md" "$repo/CHANGELOG.md" "$repo/LICENSE-MIT" "$repo/LICENSE-APACHE" \
    "$dest$abs_datadir/doc/wshandle/"

man_src="$repo/target/docs/man/man3"
if [ "$man" = 1 ]; then
    bash "$repo/scripts/docs.sh" >/dev/null || die "building the man pages failed (bash scripts/docs.sh)"
fi
if compgen -G "$man_src/*.3" >/dev/null; then
    install -d "$dest$abs_datadir/man/man3"
    install -m 0644 "$man_src"/*.3 "$dest$abs_datadir/man/man3/"
else
    echo "install.sh: man pages not built, not installed (add --man to build them)" >&2
fi

echo "installed wshandle $version (SONAME $soname) into ${dest}${prefix}"
