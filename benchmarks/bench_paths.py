"""Where the time goes: the per-packet cost of the node's own paths, and the CPU each process
spends, measured as the benchmarks/README analysis quotes them.

Run: ``python benchmarks/bench_paths.py [--runs 3] [--chain-mib 256]`` →
``benchmarks/results/paths.{json,md}``.

1. In process, no sockets: a node (``ccn.node.Node``) fed over an in-memory stream face —
   µs per 1 KiB cache-hit exchange (Interest in, Data out), and µs per Interest for a name that
   does not exist under a published prefix (Interest in, not-found Nack out; what a flood costs).
2. Real processes on loopback: 1 KiB cache-hit exchanges between a client and one ``ccn node``
   (window 64), with the CPU each process used (CPU seconds / wall seconds).
3. Real processes on loopback: a cold 256 MiB fetch through a chain client ← C ← M ← O, with
   the CPU of every process.

Medians of ``--runs``. Never asserts a timing; every child process is ended by pid.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing
from _common import (
    MIB,
    NodeProcess,
    command_line,
    cpu_seconds,
    machine_info,
    machine_line,
    start_node,
    write_results,
)
from bench_node import blob_ids, ccn_exchanges, make_small_files, write_random
from blake3 import blake3

from ccn.client import connect
from ccn.codec import encode
from ccn.faces.stream import StreamFace
from ccn.fetch import fetch_version
from ccn.framing import frame
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest
from ccn.store.objects import Blob
from ccn.store.objects import encode as encode_object
from ccn.testing import node_in_process


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- 1. in process ------------------------------------------------------------------------------


async def _through_memory_face(node: Any, wire: bytes, expected: int, answered: str) -> float:
    """Feed ``wire`` to ``node`` over an in-memory stream face; seconds until the face has sent
    ``expected`` packets of kind ``answered`` (a counter name)."""
    a, b = trio.testing.memory_stream_pair()
    face = StreamFace(a, "memory://bench", local=False)

    async def sink() -> None:
        while await b.receive_some(1 << 20):
            pass

    node.nursery.start_soon(sink)
    node.nursery.start_soon(node._serve_face, face)
    await trio.sleep(0.05)
    start = time.perf_counter()
    for i in range(0, len(wire), 1 << 16):
        await b.send_all(wire[i : i + (1 << 16)])
    while getattr(face.counters, answered) < expected:
        await trio.sleep(0)
    elapsed = time.perf_counter() - start
    face.close()
    return elapsed


async def in_process(n_hits: int, n_flood: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ccn-paths-") as tmp:
        work = Path(tmp)
        (work / "f.bin").write_bytes(os.urandom(100_000))
        async with node_in_process(work) as (node, uri):
            async with connect(uri) as c:
                await c.put(work / "f.bin", "/flood/file")
            blobs = [encode_object(Blob(os.urandom(1000))) for _ in range(2000)]
            ids = [blake3(raw).digest() for raw in blobs]
            now = trio.current_time()
            for raw, oid in zip(blobs, ids, strict=True):
                node.forwarder.cs.insert(Data(ROOT, raw, 0, oid), now)
            loc = Name.parse("/bench/x")
            hits = b"".join(
                frame(encode(Interest(loc, k, digest=ids[k % len(ids)]))) for k in range(n_hits)
            )
            hit_s = await _through_memory_face(node, hits, n_hits, "out_data")
            base = Name.parse("/flood/file")
            flood = b"".join(
                frame(encode(Interest(base / f"x{k}", k, 1000))) for k in range(n_flood)
            )
            flood_s = await _through_memory_face(node, flood, n_flood, "out_nacks")
    return {"cache_hit_us": hit_s / n_hits * 1e6, "flood_interest_us": flood_s / n_flood * 1e6}


# -- 2. exchanges with CPU ------------------------------------------------------------------


async def exchanges_cpu(work: Path, seconds: float) -> dict[str, float]:
    node = await start_node("X", work, cs_bytes=256 * MIB)
    try:
        src = work / "small"
        make_small_files(src, 2000, 1024)
        async with connect(node.tcp_uri) as client:
            reply = await client.publish(src, "/bench/paths")
            locator, ids = await blob_ids(client, Name.parse(reply["name"]))
            await ccn_exchanges(
                client, locator, ids, duration=0, min_count=0, max_seconds=60, once=True
            )
            node0, own0 = cpu_seconds(node.pid), _own_cpu()
            r = await ccn_exchanges(
                client, locator, ids, duration=seconds, min_count=0, max_seconds=seconds + 2
            )
            node1, own1 = cpu_seconds(node.pid), _own_cpu()
    finally:
        await node.stop()
    return {
        "rate": r.rate,
        "client_cpu": (own1 - own0) / r.elapsed,
        "node_cpu": (node1 - node0) / r.elapsed,
    }


# -- 3. a cold chain with CPU -------------------------------------------------------------------


async def chain_cpu(work: Path, mib: int) -> dict[str, float]:
    nodes: list[NodeProcess] = []
    try:
        o = await start_node("O", work, cs_bytes=64 * MIB)
        nodes.append(o)
        m = await start_node("M", work, cs_bytes=64 * MIB, routes=[f"/p={o.tcp_uri}"])
        nodes.append(m)
        c = await start_node("C", work, cs_bytes=64 * MIB, routes=[f"/p={m.tcp_uri}"])
        nodes.append(c)
        src = work / "bulk.bin"
        write_random(src, mib * MIB)
        async with connect(o.tcp_uri) as client:
            name = Name.parse((await client.publish(src, "/p/bulk"))["name"])
        dest = work / "chain.out"
        async with connect(c.unix_uri) as client:
            before = [cpu_seconds(n.pid) for n in nodes] + [_own_cpu()]
            start = time.perf_counter()
            await fetch_version(client, name, dest)
            elapsed = time.perf_counter() - start
            after = [cpu_seconds(n.pid) for n in nodes] + [_own_cpu()]
        dest.unlink()
    finally:
        for n in reversed(nodes):
            await n.stop()
    cpu = [(b - a) / elapsed for a, b in zip(before, after, strict=True)]
    return {
        "mb_s": mib * MIB / elapsed / 1e6,
        "cpu_O": cpu[0],
        "cpu_M": cpu[1],
        "cpu_C": cpu[2],
        "cpu_client": cpu[3],
    }


# -- running --------------------------------------------------------------------------------


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    inproc: list[dict[str, float]] = []
    exch: list[dict[str, float]] = []
    chain: list[dict[str, float]] = []
    for i in range(args.runs):
        inproc.append(await in_process(args.hits, args.flood))
        with tempfile.TemporaryDirectory(prefix="ccn-paths-") as tmp:
            exch.append(await exchanges_cpu(Path(tmp), args.seconds))
        with tempfile.TemporaryDirectory(prefix="ccn-paths-") as tmp:
            chain.append(await chain_cpu(Path(tmp), args.chain_mib))
        print(f"  run {i + 1}: {inproc[-1]} {exch[-1]} {chain[-1]}", file=sys.stderr)
    return {
        "machine": machine_info(),
        "command": command_line(),
        "runs": args.runs,
        "chain_mib": args.chain_mib,
        "in_process": {"runs": inproc, "median": _median(inproc)},
        "exchanges": {"runs": exch, "median": _median(exch)},
        "chain": {"runs": chain, "median": _median(chain)},
    }


def markdown(r: dict[str, Any]) -> str:
    ip, ex, ch = r["in_process"]["median"], r["exchanges"]["median"], r["chain"]["median"]
    return "\n".join(
        [
            "# Where the time goes: node paths and CPU per process",
            "",
            machine_line(r["machine"]),
            "",
            f"`{r['command']}` (medians of {r['runs']} runs)",
            "",
            "| measurement | value |",
            "|---|---:|",
            f"| in process: one 1 KiB cache-hit exchange through the node | "
            f"{ip['cache_hit_us']:.1f} µs |",
            f"| in process: one Interest for a name that does not exist (→ not-found Nack) | "
            f"{ip['flood_interest_us']:.1f} µs |",
            f"| loopback: 1 KiB cache-hit exchanges/s, window 64 | {ex['rate']:,.0f} |",
            f"| … CPU of the client / of the node | {ex['client_cpu']:.2f} / "
            f"{ex['node_cpu']:.2f} |",
            f"| loopback: cold {r['chain_mib']} MiB through client ← C ← M ← O, MB/s | "
            f"{ch['mb_s']:.0f} |",
            f"| … CPU of O / M / C / the client | {ch['cpu_O']:.2f} / {ch['cpu_M']:.2f} / "
            f"{ch['cpu_C']:.2f} / {ch['cpu_client']:.2f} |",
            "",
            "CPU = CPU seconds (user + system) / wall seconds of the measured part; 1.00 is one "
            "core busy. Timings on this 2-core machine are noisy; read them together.",
            "",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hits", type=int, default=100_000, help="in-process cache-hit exchanges")
    p.add_argument("--flood", type=int, default=20_000, help="in-process flood Interests")
    p.add_argument("--seconds", type=float, default=3.0, help="loopback exchanges per run")
    p.add_argument("--chain-mib", type=int, default=256)
    args = p.parse_args()
    result = trio.run(run, args)
    md = markdown(result)
    write_results("paths", result, md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
