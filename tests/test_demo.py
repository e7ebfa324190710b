"""``ccn demo``: a tiny run of its real topology (four node processes, a delaying relay), and
how it names the node that answered each fetch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.demo import run_demo, who_answered


def _status(hits: int = 0, produced: int = 0) -> dict[str, Any]:
    return {"cs": {"hits": hits}, "producer": {"data": produced}}


def test_who_answered_names_the_nearest_node_whose_counters_moved() -> None:
    before = {label: _status(10, 10) for label in ("C", "C2", "M", "P")}
    after = dict(before)
    assert who_answered(before, after) == "?"
    assert who_answered(before, after | {"P": _status(10, 12)}) == "the origin P's store"
    assert who_answered(before, after | {"P": _status(11, 10)}) == "the origin P's cache"
    assert who_answered(before, after | {"M": _status(15, 10)}) == "M's cache"
    # C's own cache hit while M's counters also moved: C, the nearest, answered
    moved = after | {"C": _status(11, 10), "M": _status(12, 10)}
    assert who_answered(before, moved) == "C's cache"
    assert who_answered(before, after | {"C2": _status(10, 11)}) == "C2's store"
    # a node missing from the snapshot is skipped, not an error
    partial = {k: v for k, v in (after | {"M": _status(20, 10)}).items() if k != "C"}
    assert who_answered(before, partial) == "M's cache"


def _our_processes(workdir: str) -> list[int]:
    """Pids of processes whose command line names ``workdir`` (the demo's own directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if workdir.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
async def test_a_tiny_demo_run(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(60):
        assert await run_demo(size_mib=1, delay_ms=5.0) == 0
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    assert rows["C: first fetch (cold)"][0] == "the origin P's store"
    assert rows["C: second fetch"][0] == "C's cache"
    assert rows["C2: neighbour fetch"][0] == "M's cache"
    assert rows["host-to-host from P"][0].startswith("the origin P's")
    # P gone: C2 still gets the newest version the nodes had seen, from its own cache, and says so
    assert rows["C2: P stopped, fetch again"][0] == "C2's cache"
    assert [r[3] for label, r in rows.items() if label.startswith(("C", "host"))] == ["yes"] * 5
    assert (
        "C2 was told: no producer of /demo/sample could be reached (no route to /demo/sample); "
        "/demo/sample/v1 is the newest version the nearest node that has one holds in full"
    ) in out
    assert "x the time of the host-to-host fetch" in out
    found = re.search(r"starting 4 node processes in (\S+)", out)
    assert found is not None
    workdir = found.group(1)
    assert not os.path.exists(workdir)  # cleaned up
    assert _our_processes(workdir) == []  # every node process ended


@pytest.mark.slow
def test_sigterm_stops_the_demo_and_its_nodes() -> None:
    # SIGTERM used to kill the demo before its cleanup: its 4 node processes and its directory
    # stayed behind.
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccn", "demo", "--size-mib", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(r"starting 4 node processes in (\S+)", first)
        assert found is not None, first
        workdir = found.group(1)
        lines = [proc.stdout.readline() for _ in range(2)]  # the topology, then "published"
        assert "published" in lines[-1], lines
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err == "ccn: terminated\n"
    assert not os.path.exists(workdir)
    assert _our_processes(workdir) == []
