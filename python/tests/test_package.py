"""The package itself: bindings complete and alone in touching ctypes, the library found next to
the package then through WSHANDLE_LIBRARY, versions agreeing, and the wheel built by pip."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

import wshandle
from wshandle import _bindings

PACKAGE_DIR = Path(wshandle.__file__).resolve().parent
HEADER = REPO / "include" / "wshandle.h"


def cargo_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    return re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S).group(1)


def test_versions_agree() -> None:
    assert wshandle.__version__ == wshandle.version() == cargo_version()
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python 3.7
        return
    try:
        assert version("wshandle") == cargo_version()
    except PackageNotFoundError:
        assert os.environ.get("WSHANDLE_EXPECT_INSTALLED") != "1", "wshandle is not installed"


def header_functions() -> dict:
    """name -> number of parameters, for every function the header declares."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    found = {}
    for m in re.finditer(r"^[A-Za-z_][\w ]*?\*?\s*(ws_\w+)\(([^)]*)\);", text, re.M | re.S):
        params = m.group(2).strip()
        found[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    return found


def test_every_header_function_is_declared_with_argtypes_and_restype() -> None:
    functions = header_functions()
    assert len(functions) >= 17, functions
    for name, nparams in functions.items():
        fn = getattr(_bindings, name)
        assert fn.restype is not None, name
        assert fn.argtypes is not None and len(fn.argtypes) == nparams, name


def test_only_the_bindings_module_touches_ctypes() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imports.add(node.module.split(".")[0])
        assert ("ctypes" in imports) == (path.name == "_bindings.py"), path.name


def test_the_installed_package_carries_its_library() -> None:
    if os.environ.get("WSHANDLE_EXPECT_INSTALLED") != "1":
        pytest.skip("running against a source tree (scripts/test.sh tests the installed package)")
    assert "WSHANDLE_LIBRARY" not in os.environ
    assert not str(PACKAGE_DIR).startswith(str(REPO / "python")), PACKAGE_DIR
    assert Path(wshandle.library_path) == PACKAGE_DIR / "libwshandle.so"


def run_import(package_parent: Path, env_library: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WSHANDLE_LIBRARY", "PYTHONPATH")}
    if env_library is not None:
        env["WSHANDLE_LIBRARY"] = str(env_library)
    return subprocess.run(
        [sys.executable, "-c", "import wshandle; print(wshandle.library_path)"],
        cwd=package_parent,  # "" on sys.path: the copy below, not the installed package
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package's Python files, without the library, in tmp_path/wshandle."""
    dest = tmp_path / "wshandle"
    dest.mkdir()
    for path in PACKAGE_DIR.glob("*.py"):
        shutil.copy(path, dest)
    return tmp_path


def test_library_not_found_says_what_to_do(package_copy: Path) -> None:
    out = run_import(package_copy, None)
    assert out.returncode != 0
    assert "LibraryNotFoundError" in out.stderr
    assert "pip install ./python" in out.stderr
    assert "WSHANDLE_LIBRARY" in out.stderr and "cargo build --release" in out.stderr


def test_library_env_var_that_points_nowhere(package_copy: Path) -> None:
    out = run_import(package_copy, "/nonexistent/libwshandle.so")
    assert out.returncode != 0
    assert "WSHANDLE_LIBRARY='/nonexistent/libwshandle.so' is not a file" in out.stderr


def test_library_from_the_env_var(package_copy: Path) -> None:
    out = run_import(package_copy, wshandle.library_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(Path(wshandle.library_path).resolve())


def test_library_next_to_the_package_comes_first(package_copy: Path) -> None:
    shutil.copy(wshandle.library_path, package_copy / "wshandle" / "libwshandle.so")
    out = run_import(package_copy, "/nonexistent/libwshandle.so")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(package_copy / "wshandle" / "libwshandle.so")


def test_pip_builds_a_wheel_with_the_library(tmp_path: Path) -> None:
    """`pip wheel ./python`: setuptools-rust builds the crate (release, cdylib) and the wheel
    carries it as wshandle/libwshandle.so, tagged for any Python 3 on this platform."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    wheels = list(tmp_path.glob("*.whl"))
    assert len(wheels) == 1, wheels
    assert re.fullmatch(
        rf"wshandle-{re.escape(cargo_version())}-py3-none-linux_\w+\.whl", wheels[0].name
    )
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "wshandle/libwshandle.so" in names
    assert "wshandle/py.typed" in names
    assert "wshandle/_bindings.py" in names
    assert not [n for n in names if ".cpython-" in n]
