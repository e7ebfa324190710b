"""Forwarder core throughput without I/O: Interest -> CS hit, and Interest -> forward -> Data.

Run: ``python benchmarks/bench_core.py [--runs 7] [--n 100000]``. Prints a markdown table and
writes ``benchmarks/results/core.{json,md}`` with the machine, the command and every run.

Packets and events are built in batches of 256 just before they are handled, as a node decodes
them from one read, and only the handling is timed (decoding is the codec's cost, not the core's).
The Data digest is *not* precomputed: the core hashes every Data it caches. A baseline (one Python
call, a dict lookup and a list append per event) is measured in the same run, interleaved, since
timings on this machine are noisy: compare ratios, not absolute numbers. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccn.fw import DataIn, FaceUp, Forwarder, ForwarderConfig, InterestIn
from ccn.name import Name
from ccn.packet import Data, Interest

RESULTS = Path(__file__).parent / "results"
CONTENT = bytes(1024)
CACHED = 1000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


BATCH = 256


def _timed(fn: Callable[[], float]) -> float:
    """Run ``fn`` (which returns the seconds it spent handling ``n`` exchanges) with GC off."""
    gc.collect()
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


def _batches(n: int) -> range:
    return range(0, n, BATCH)


def bench_baseline(n: int) -> Callable[[], float]:
    """One Python call, a dict lookup and a list append per event: the floor of any core."""
    table = {i: i for i in range(CACHED)}

    def step(event: InterestIn, now: float) -> list[int]:
        out: list[int] = []
        value = table.get(event.face_id)
        if value is not None:
            out.append(value)
        return out

    def run() -> float:
        spent = 0.0
        for start in _batches(n):
            events = [
                InterestIn(1, Interest(Name.parse(f"/b/{i % CACHED}"), i))
                for i in range(start, start + BATCH)
            ]
            t0 = time.perf_counter()
            for ev in events:
                step(ev, 1.0)
            spent += time.perf_counter() - t0
        return spent

    return run


def bench_cs_hit(n: int) -> Callable[[], float]:
    """A neighbour asks for one of 1000 cached objects; the CS answers."""
    fw = Forwarder(ForwarderConfig())
    fw.handle(FaceUp(1, local=False), 0.0)
    for i in range(CACHED):
        fw.cs.insert(Data(Name.parse(f"/bench/cached/obj{i}"), CONTENT, freshness_ms=60_000), 0.0)
    handle = fw.handle

    def run() -> float:
        spent = 0.0
        hits = fw.counters.cs_hits
        for start in _batches(n):
            # Decoded from the wire in a real node: distinct objects, distinct nonces.
            events = [
                InterestIn(1, Interest(Name.parse(f"/bench/cached/obj{i % CACHED}"), i))
                for i in range(start, start + BATCH)
            ]
            t0 = time.perf_counter()
            for ev in events:
                handle(ev, 1.0)
            spent += time.perf_counter() - t0
        assert fw.counters.cs_hits - hits == len(_batches(n)) * BATCH
        return spent

    return run


def bench_forward(n: int) -> Callable[[], float]:
    """Consumer face 1, producer face 2 routed for /bench; every Interest is new (a CS miss),
    is forwarded, and the producer's Data comes back as DataIn and is cached."""
    fw = Forwarder(ForwarderConfig())
    fw.handle(FaceUp(1, local=False), 0.0)
    fw.handle(FaceUp(2, local=False), 0.0)
    fw.add_route(Name.parse("/bench"), 2)
    handle = fw.handle
    serial = iter(range(1 << 62))

    def run() -> float:
        spent = 0.0
        now = 1.0
        for _ in _batches(n):
            pairs = []
            for _ in range(BATCH):
                i = next(serial)
                name = Name.parse(f"/bench/fwd/obj{i}")
                pairs.append(
                    (
                        InterestIn(1, Interest(name, i & 0xFFFFFFFF)),
                        DataIn(2, Data(name, CONTENT, freshness_ms=1000)),
                    )
                )
            t0 = time.perf_counter()
            for interest_in, data_in in pairs:
                handle(interest_in, now)
                handle(data_in, now)
            spent += time.perf_counter() - t0
            now += 0.001
        return spent

    # Warm up: fill the CS and dead-nonce list to their steady state (evicting from here on).
    run()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=100_000, help="exchanges per run")
    parser.add_argument("--no-write", action="store_true", help="do not write results files")
    args = parser.parse_args(argv)

    cases: dict[str, Callable[[int], Callable[[], float]]] = {
        "baseline (call + dict lookup + append)": bench_baseline,
        "Interest -> CS hit": bench_cs_hit,
        "Interest -> forward -> Data": bench_forward,
    }
    runs: dict[str, list[float]] = {label: [] for label in cases}
    # Interleave the cases so drift in machine speed hits all of them alike.
    for _ in range(args.runs):
        for label, make in cases.items():
            count = len(range(0, args.n, BATCH)) * BATCH
            runs[label].append(count / _timed(make(args.n)))

    baseline = statistics.median(runs["baseline (call + dict lookup + append)"])
    rows = []
    for label, values in runs.items():
        med = statistics.median(values)
        rows.append(
            {
                "case": label,
                "median_per_s": round(med),
                "min_per_s": round(min(values)),
                "max_per_s": round(max(values)),
                "us_per_exchange": round(1e6 / med, 3),
                "ratio_to_baseline": round(med / baseline, 3),
                "runs": [round(v) for v in values],
            }
        )

    lines = [
        f"Forwarder core, no I/O, one core; n={args.n} exchanges per run, "
        f"median of {args.runs} runs.",
        "",
        "| case | median exchanges/s | min | max | µs/exchange | vs baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['median_per_s']:,} | {r['min_per_s']:,} | {r['max_per_s']:,} "
            f"| {r['us_per_exchange']} | {r['ratio_to_baseline']} |"
        )
    table = "\n".join(lines)
    print(table)

    if not args.no_write:
        command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
        machine: dict[str, Any] = {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        result = {
            "command": command,
            "machine": machine,
            "n": args.n,
            "runs": args.runs,
            "results": rows,
        }
        (RESULTS / "core.json").write_text(json.dumps(result, indent=2) + "\n")
        md = (
            f"# Forwarder core benchmark\n\nCommand: `{command}`\n\n"
            f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, "
            f"{machine['implementation']} {machine['python']}, {machine['platform']}\n\n"
            f"{table}\n"
        )
        (RESULTS / "core.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
