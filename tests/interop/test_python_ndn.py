"""Runs the scenarios of interop/scenarios.py: ccn node processes and real python-ndn apps."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("ndn", reason="python-ndn (the 'test' extra) is needed for interop")

_PATH = Path(__file__).resolve().parents[2] / "interop" / "scenarios.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ccn_interop_scenarios", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scenarios = _load()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
async def test_scenario(name: str, tmp_path: Path) -> None:
    await scenarios.SCENARIOS[name](tmp_path)
