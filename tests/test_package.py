"""The package as installed: what a wheel built from this tree holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_carries_the_py_typed_marker(tmp_path: Path) -> None:
    # Without ccn/py.typed, mypy --strict on a program that imports an installed ccn said
    # 'module is installed, but missing library stubs or py.typed marker' and checked nothing.
    src = tmp_path / "src"  # a copy: a build leaves build/ behind, and reuses one it finds
    shutil.copytree(ROOT / "ccn", src / "ccn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("ccn-*.whl")
    assert "ccn/py.typed" in zipfile.ZipFile(wheel).namelist()
