"""``benchmarks/bench_relay.py`` runs (a seconds-long smoke run), as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_relay.py"


def test_relay_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--mib", "4", "--runs", "1", "--no-write"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| case |")
    cases = [r.split("|")[1].strip() for r in rows[1:]]
    assert cases == [
        "direct (no relay)",
        "through ccn.relay, +0 ms each way",
        "through ccn.relay, +20 ms each way",
    ]
