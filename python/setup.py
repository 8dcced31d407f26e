"""Builds the Rust crate at the repository root as a cdylib and ships it inside the package.

`pip install ./python` (or `pip wheel ./python`) runs `cargo rustc --release --lib
--crate-type cdylib` on ../Cargo.toml through setuptools-rust (Binding.NoBinding: the crate has
no Python bindings; wshandle/_bindings.py loads it with ctypes) and copies the result to
`wshandle/libwshandle.so` inside the wheel. Needs cargo on PATH and the repository checkout
around this directory: pip >= 21.3 builds local directories in place, which keeps ../Cargo.toml
reachable. An sdist cannot carry the crate, so build wheels directly (`pip wheel ./python`,
`python -m build --wheel ./python`).

Cargo's target directory is `build/cargo-target` here (unless CARGO_TARGET_DIR is set), so
this build never races or invalidates `cargo build --release` in the repository's target/.
"""

import os
import re
import sys
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustExtension, Strip
from setuptools_rust import build_rust as _build_rust

HERE = Path(__file__).resolve().parent
CARGO_TOML = HERE.parent / "Cargo.toml"

if not CARGO_TOML.is_file():
    sys.exit(
        f"wshandle: the Rust crate's manifest is not at {CARGO_TOML}.\n"
        "Build from a checkout of the repository: `pip install ./python` (pip >= 21.3 builds\n"
        "in place). Building from an sdist is not supported."
    )


def crate_version() -> str:
    """The [package] version of ../Cargo.toml: the Python package has the same version."""
    text = CARGO_TOML.read_text(encoding="utf-8")
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    version = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    if not version:
        sys.exit(f"wshandle: no [package] version in {CARGO_TOML}")
    return version.group(1)


def library_file_name() -> str:
    if sys.platform == "darwin":
        return "libwshandle.dylib"
    if sys.platform == "win32":
        return "wshandle.dll"
    return "libwshandle.so"


class build_rust(_build_rust):
    """Names the copied library `libwshandle.so` (not `<name>.cpython-311-...so`): it is a
    plain C library, the same for every Python version, and _bindings.py looks for exactly
    this name."""

    def get_dylib_ext_path(self, ext, target_fname):
        path = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(path), library_file_name())


cmdclass = {"build_rust": build_rust}

try:  # setuptools >= 70.1 has bdist_wheel; pyproject.toml asks for it
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover - older setuptools with the wheel package
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel


class bdist_wheel(_bdist_wheel):
    """Tags the wheel py3-none-<platform>: the library does not use the Python C API, so one
    wheel serves every Python 3 on the platform."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


cmdclass["bdist_wheel"] = bdist_wheel

env = dict(os.environ)
env.setdefault("CARGO_TARGET_DIR", str(HERE / "build" / "cargo-target"))

setup(
    version=crate_version(),
    rust_extensions=[
        RustExtension(
            "wshandle.libwshandle",
            path=str(CARGO_TOML),
            binding=Binding.NoBinding,
            debug=False,  # release, also for editable installs
            # The crate's release profile keeps line tables (debug = 1) for its own tests;
            # the shipped library drops them (20 MB -> a few MB) but keeps its symbols.
            strip=Strip.Debug,
            env=env,
        )
    ],
    cmdclass=cmdclass,
)
