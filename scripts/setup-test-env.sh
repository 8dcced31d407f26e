#!/usr/bin/env bash
# Create (or reuse) the Python venv that hosts the test peers in tests/peers/.
#
#   bash scripts/setup-test-env.sh                 # create/update, quiet on success
#   bash scripts/setup-test-env.sh --print-python  # ... then print the venv's python path
#
# Venv location: ${WSHANDLE_VENV:-<repo>/target/test-venv}
# Idempotent: pip install is skipped while the stamp file in the venv matches the
# sha256 of tests/peers/requirements.txt.
set -euo pipefail

print_python=0
for arg in "$@"; do
    case "$arg" in
        --print-python) print_python=1 ;;
        -h|--help)
            sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
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

[ -f "$req" ] || die "requirements file not found: $req"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

py="$venv/bin/python"

if [ ! -x "$py" ]; then
    mkdir -p "$(dirname "$venv")"
    if ! out="$(python3 -m venv "$venv" 2>&1)"; then
        echo "$out" >&2
        die "'python3 -m venv $venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    [ -x "$py" ] || die "venv created at $venv but $py is missing"
fi

if command -v sha256sum >/dev/null 2>&1; then
    want="$(sha256sum "$req" | cut -d' ' -f1)"
else
    want="$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req")"
fi
have="$(cat "$stamp" 2>/dev/null || true)"

if [ "$want" != "$have" ]; then
    rm -f "$stamp"
    if ! "$py" -m pip install -q --disable-pip-version-check -r "$req" >&2; then
        die "pip install -r $req into $venv failed (see pip output above)"
    fi
    printf '%s\n' "$want" > "$stamp"
fi

if [ "$print_python" = 1 ]; then
    echo "$py"
fi
