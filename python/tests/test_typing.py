"""The package's type hints hold: ``mypy --strict`` over the package (as installed) and the
asyncio example."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import require
from helpers import EXAMPLES

import wshandle


def test_mypy_strict(tmp_path: Path) -> None:
    require("mypy")
    # a copy of the package's sources: mypy refuses to check a package inside site-packages
    package = tmp_path / "src" / "wshandle"
    shutil.copytree(
        Path(wshandle.__file__).parent, package, ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(package),
            str(EXAMPLES / "seed_asyncio.py"),
        ],
        capture_output=True,
        text=True,
        cwd=package.parent,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found"), out.stdout
