"""``benchmarks/bench_peers.py`` runs (a smoke run of well under a second), as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_peers.py"


def test_peer_lookup_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--others", "0", "20", "--lookups", "5", "--no-write"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| other connections open |")
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["0", "20"]
