"""The package: the public names of ``ccn``, and what a wheel built from this tree holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import trio

import ccn
from ccn.testing import node_in_process

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


def test_every_public_name_resolves() -> None:
    assert all(getattr(ccn, name) is not None for name in ccn.__all__)


async def test_what_the_client_raises_for_a_mistake_is_public(tmp_path: Path) -> None:
    # A node refusing a command (ccn.client.CommandError) and a local mistake (a missing file,
    # ccn.errors.LocalError) could only be caught as ccn.CcnError or by importing internals.
    async with node_in_process(tmp_path) as (_node, uri), ccn.connect(uri) as node:
        with trio.fail_after(10):
            with pytest.raises(ccn.CommandError, match="is not published on this node"):
                await node.log("/nothing")
            with pytest.raises(ccn.LocalError, match="no such file or directory"):
                await node.put(tmp_path / "missing", "/x")
