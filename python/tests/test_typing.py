"""The package's type hints hold: ``mypy --strict`` over the package (as installed) and the
asyncio example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import require
from helpers import EXAMPLES

import wshandle


def test_mypy_strict(tmp_path: Path) -> None:
    require("mypy")
    package = Path(wshandle.__file__).parent
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
        cwd=tmp_path,
        env=dict(os.environ, MYPYPATH=str(package.parent)),
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found"), out.stdout
