"""Every example runs, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout


def test_two_nodes() -> None:
    out = _run(str(EXAMPLES / "two_nodes.py"))
    assert "hello, named data" in out
    hits = int(out.strip().splitlines()[-1].rsplit(" ", 1)[1])
    assert hits >= 1


def test_producer_and_consumer(tmp_path: Path) -> None:
    sock = f"unix://{tmp_path}/n.sock"
    with subprocess.Popen(
        [sys.executable, "-m", "ccn", "node", "--store", str(tmp_path / "s"), "--listen", sock],
        stdout=subprocess.PIPE,
        text=True,
    ) as node:
        try:
            assert node.stdout is not None and "listening" in node.stdout.readline()
            (tmp_path / "f").write_bytes(b"x" * 1000)
            out = _run(str(EXAMPLES / "producer.py"), str(tmp_path / "f"), "/ex/f", "--node", sock)
            assert out.strip() == "/ex/f/v1"
            out = _run(str(EXAMPLES / "consumer.py"), "/ex/f", "--node", sock)
            assert out.startswith("1000 bytes")
        finally:
            node.terminate()
            node.wait(timeout=5)


def test_demo_smoke() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ccn", "demo", "--size-mib", "2", "--delay-ms", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| C")]
    assert "origin" in rows[0] and "C's cache" in rows[1] and "M's cache" in rows[2]
    assert "C2's cache" in rows[3]  # P stopped
    assert out.stdout.count("| yes |") == 5 and out.stderr == ""
