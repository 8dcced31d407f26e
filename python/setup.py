"""Builds the Rust crate at the repository root as a cdylib and ships it inside the package.

`pip install ./python` (or `pip wheel ./python`) runs `cargo rustc --release --lib
--crate-type cdylib` on ../Cargo.toml through setuptools-rust (Binding.NoBinding: the crate has
no Python bindings; wshandle/_bindings.py loads it with ctypes) and copies the result to
`wshandle/libwshandle.so` inside the wheel. Needs cargo on PATH and the crate: in a checkout
it is the repository around this directory (pip >= 21.3 builds local directories in place,
which keeps ../Cargo.toml reachable); in an sdist it is `crate/`, which the sdist command
below fills with the crate exactly as `cargo package` ships it (sources, Cargo.lock, header,
licences), so the sdist builds with cargo and nothing else from the repository. The version
is the crate's, read from whichever Cargo.toml is used.

Cargo's target directory is `build/cargo-target` here (unless CARGO_TARGET_DIR is set), so
this build never races or invalidates `cargo build --release` in the repository's target/.
"""

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.sdist import sdist as _sdist
from setuptools_rust import Binding, RustExtension, Strip
from setuptools_rust import build_rust as _build_rust

HERE = Path(__file__).resolve().parent
SDIST_CRATE = HERE / "crate"  # only in an sdist
CARGO_TOML = next(
    (p for p in (SDIST_CRATE / "Cargo.toml", HERE.parent / "Cargo.toml") if p.is_file()),
    None,
)

if CARGO_TOML is None:
    sys.exit(
        f"wshandle: the Rust crate is neither at {SDIST_CRATE} (an sdist) nor at\n"
        f"{HERE.parent} (a checkout of the repository). Build from the sdist, or from a\n"
        "checkout with `pip install ./python` (pip >= 21.3 builds in place)."
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


class sdist(_sdist):
    """Adds `crate/`: the crate as `cargo package` packs it (the files listed in Cargo.toml's
    `include`, Cargo.toml normalised for a build outside the workspace, Cargo.lock)."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        if CARGO_TOML.parent == SDIST_CRATE:  # an sdist made from an sdist
            self.copy_tree(str(SDIST_CRATE), os.path.join(base_dir, "crate"))
            return
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["cargo", "package", "--no-verify", "--allow-dirty", "--quiet",
                 "--manifest-path", str(CARGO_TOML), "--target-dir", tmp],
                check=True,
            )
            (crate_file,) = Path(tmp, "package").glob("*.crate")
            with tarfile.open(crate_file) as tar:
                top = f"{crate_file.stem}/"
                for member in tar.getmembers():
                    if not member.isfile() or not member.name.startswith(top):
                        continue
                    rel = member.name[len(top):]
                    dest = Path(base_dir, "crate", rel)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(tar.extractfile(member).read())


cmdclass["sdist"] = sdist

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
