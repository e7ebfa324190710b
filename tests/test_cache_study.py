"""The cache-hit study harness still runs: a smoke run (tiny sizes, loopback, seconds).

Runs ``benchmarks/cache_study.py --smoke`` as a child process, as a user would, writing into a
temporary directory. Asserts that every case ran and was answered by the node it is meant to
exercise (the nodes' own counters); never asserts a timing. Plots are optional: without
matplotlib (CI installs only ``.[test]``) the results say they were skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "cache_study.py"
CASES = {
    "local",
    "neighbour",
    "direct",
    "twohop",
    "cold",
    "http",
    "raw_relay",
    "raw_hop",
    "raw_fwd",
}


@pytest.mark.slow
def test_cache_study_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "cache_study.json").read_text())
    assert data["network"]["mode"] == "loopback"
    assert "http.server" in data["http_server"]["http_server"]
    result = data["results"]["5"]
    assert set(result["cases"]) == CASES
    assert result["cases"]["direct"]["verified"], result["cases"]["direct"]["counters"]
    for case in ("local", "neighbour", "twohop", "cold"):
        assert result["cases"][case]["verified"], (case, result["cases"][case]["counters"])
        assert result["bulk"]["verified"][case], case
    for case in CASES:
        assert len(result["cases"][case]["latency_s"]) == 20
        assert result["cases"][case]["window_rate"] > 0
    assert set(result["bulk"]["median"]) == CASES - {"raw_hop", "raw_fwd", "direct"}
    assert {t["target"] for t in data["targets"]}
    md = (out / "cache_study.md").read_text()
    assert "| 5 ms | ccn neighbour CS hit | M (CS) |" in md
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "cache_study_latency.png").stat().st_size > 0
        assert (out / "cache_study_throughput.png").stat().st_size > 0
    else:
        assert "plots skipped" in md
