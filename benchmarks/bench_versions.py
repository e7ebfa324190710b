"""Benchmark: fetching version N+1 of a file when the consumer's node holds version N.

Topology: producer node P, consumer node C routed to P over TCP (loopback), both real
``ccn node`` processes, C with a small in-memory CS (1 MiB) so that what it keeps between
fetches is its on-disk cache tier. Per run, a fresh random file is published as v1, then edited
by 1 % at 8 places (overwrite + small insertion, as in bench_store) and published as v2:

* **incremental**: C fetches v1 (warm-up), then v2 is fetched through C — measured;
* **full**: v2 is fetched through a fresh consumer node D that holds nothing — measured.

Reported: wall time of the fetch and the bytes that left P (P's TCP faces), medians over
``--runs``. Results go to ``benchmarks/results/versions.{json,md}``. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from _common import (
    MIB,
    NodeProcess,
    command_line,
    machine_info,
    machine_line,
    start_node,
    write_results,
)

from ccn.client import connect
from ccn.testing import edit_one_percent


async def _sent(node: NodeProcess) -> int:
    async with connect(node.unix_uri) as c:
        status = await c.status()
    return sum(f["out_bytes"] for f in status["faces"] if f["remote"].startswith("tcp"))


async def _timed_fetch(
    consumer: NodeProcess, producer: NodeProcess, name: str, out: Path
) -> tuple[float, int]:
    before = await _sent(producer)
    async with connect(consumer.unix_uri) as c:
        t0 = time.perf_counter()
        await c.fetch(name, out)
        elapsed = time.perf_counter() - t0
    return elapsed, await _sent(producer) - before


async def bench(work: Path, size_mib: int, runs: int) -> dict[str, Any]:
    p = await start_node("P", work, cs_bytes=64 * MIB)
    nodes = [p]
    rows = []
    try:
        c = await start_node("C", work, cs_bytes=MIB, routes=[f"/p={p.tcp_uri}"])
        nodes.append(c)
        for r in range(runs):
            v1 = random.Random(r).randbytes(size_mib * MIB)
            v2 = edit_one_percent(v1, seed=100 + r)
            (work / "v1.bin").write_bytes(v1)
            (work / "v2.bin").write_bytes(v2)
            name = f"/p/file{r}"
            async with connect(p.unix_uri) as client:
                await client.put(work / "v1.bin", name)
                await client.put(work / "v2.bin", name)
            await _timed_fetch(c, p, f"{name}/v1", work / "out-v1")
            inc_t, inc_b = await _timed_fetch(c, p, f"{name}/v2", work / "out-inc")
            d = await start_node(f"D{r}", work, cs_bytes=MIB, routes=[f"/p={p.tcp_uri}"])
            nodes.append(d)
            full_t, full_b = await _timed_fetch(d, p, f"{name}/v2", work / "out-full")
            await d.stop()
            assert (work / "out-inc").read_bytes() == v2 == (work / "out-full").read_bytes()
            async with connect(c.unix_uri) as client:
                cache = (await client.status())["cache"]
            row = {
                "cache_dropped_total": cache["dropped"],
                "incremental_s": round(inc_t, 3),
                "incremental_bytes": inc_b,
                "full_s": round(full_t, 3),
                "full_bytes": full_b,
            }
            print(f"  run {r + 1}: {row}", flush=True)
            rows.append(row)
    finally:
        for n in nodes:
            await n.stop()

    def med(key: str) -> float:
        return float(statistics.median(row[key] for row in rows))

    return {
        "size_mib": size_mib,
        "runs": rows,
        "median": {k: med(k) for k in rows[0] if k != "cache_dropped_total"},
        "bytes_ratio": round(med("incremental_bytes") / med("full_bytes"), 4),
        "time_ratio": round(
            statistics.median(row["incremental_s"] / row["full_s"] for row in rows), 3
        ),
    }


def _markdown(result: dict[str, Any]) -> str:
    m = result["median"]
    size = result["size_mib"] * MIB
    return "\n".join(
        [
            "# Versions benchmark: fetch v2 when the consumer's node holds v1",
            "",
            f"Command: `{result['command']}`  ",
            f"Machine: {machine_line(result['machine'])}",
            "",
            f"{result['size_mib']} MiB random file, v2 = v1 with 1 % changed at 8 places; "
            f"median of {len(result['runs'])} runs. Bytes = what left the producer node.",
            "",
            "| fetch of v2 | seconds | bytes from producer | % of the file |",
            "|---|---:|---:|---:|",
            f"| incremental (consumer's node holds v1) | {m['incremental_s']:.2f} | "
            f"{m['incremental_bytes']:.0f} | {100 * m['incremental_bytes'] / size:.2f} |",
            f"| full download (fresh consumer node) | {m['full_s']:.2f} | "
            f"{m['full_bytes']:.0f} | {100 * m['full_bytes'] / size:.2f} |",
            "",
            f"Incremental / full: bytes **{result['bytes_ratio']:.3f}**, time "
            f"**{result['time_ratio']:.2f}** (median of per-run ratios).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ccn-bench-versions-") as tmp:
        result: dict[str, Any] = {"command": command_line(), "machine": machine_info()}
        result |= trio.run(bench, Path(tmp), args.size_mib, args.runs)
    text = _markdown(result)
    print(text)
    write_results("versions", result, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
