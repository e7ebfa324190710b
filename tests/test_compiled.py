"""The install compiles the per-packet modules (setup.py, ccn/_compiled.py), and a source
changed after that is noticed rather than silently not run."""

from __future__ import annotations

import importlib.machinery
import os
import time
from pathlib import Path

import pytest

from ccn import _compiled


def test_the_install_compiled_the_per_packet_modules() -> None:
    if os.environ.get("CCN_PURE"):
        # CI runs these tests once more on a copy of the sources without extensions, by
        # PYTHONPATH beside the compiled install: make sure that is what ran.
        compiled = [m for m in _compiled.MODULES if _compiled.running_compiled(m)]
        assert not compiled, f"CCN_PURE is set, yet {', '.join(compiled)} ran compiled"
        return
    pure = [m for m in _compiled.MODULES if not _compiled.running_compiled(m)]
    assert not pure, (
        f"the install did not compile {', '.join(pure)}: install again (pip install -e .), "
        "or set CCN_PURE=1 to run the tests on pure Python"
    )


def test_every_listed_module_exists_and_is_not_compiled_twice() -> None:
    assert len(set(_compiled.MODULES)) == len(_compiled.MODULES)
    for module in _compiled.MODULES:
        assert _compiled.source(module).is_file(), module


def test_a_source_newer_than_its_extension_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "ccn"
    pkg.mkdir()
    monkeypatch.setattr(_compiled, "_ROOT", tmp_path)
    monkeypatch.setattr(_compiled, "MODULES", ("ccn.a", "ccn.b", "ccn.c"))
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    old = time.time() - 100
    for name in "abc":
        (pkg / f"{name}.py").write_text("")
        os.utime(pkg / f"{name}.py", (old, old))
    for name in "ab":  # c was never compiled
        (pkg / f"{name}{suffix}").write_bytes(b"")
        os.utime(pkg / f"{name}{suffix}", (old + 1, old + 1))
    assert _compiled.stale() == []
    os.utime(pkg / "b.py")  # edited after the build
    assert _compiled.stale() == ["ccn.b"]
    assert _compiled.extension("ccn.c") is None
