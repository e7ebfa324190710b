"""``ccn demo``: a small topology of real node processes on this machine.

    consumer C ──┐
                 ├── middle M ══(relay: DELAY ms each way)══ producer P
    consumer C2 ─┘

A sample file is published on P, fetched by C (cold: from P through M), by C again (C's own
cache), by C2 (M's cache, one hop away) and host-to-host straight from P over the same delayed
link; then P is stopped and C2 fetches ``/demo/sample`` once more: the newest version the nodes
have seen, from C2's own cache. Counters from each node's ``status`` say who answered.
Processes and files are cleaned up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from blake3 import blake3

from ccn.client import connect
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.producer import LATEST_FRESHNESS_MS
from ccn.relay import run_relay
from ccn.testing import NodeProcess, free_port, start_node, stop_all

NAME = Name.parse("/demo/sample")
DIRECT = "host-to-host from P"
OFFLINE = "C2: P stopped, fetch again"


async def snapshot(nodes: list[NodeProcess]) -> dict[str, dict[str, Any]]:
    out = {}
    for n in nodes:
        async with connect(n.uri) as client:
            out[n.label] = await client.status()
    return out


def who_answered(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Name the node whose counters show it answered: the nearest cache that hit."""
    answered = []
    for label in ("C", "C2", "M", "P"):
        if label not in after:
            continue
        hits = after[label]["cs"]["hits"] - before[label]["cs"]["hits"]
        produced = after[label]["producer"]["data"] - before[label]["producer"]["data"]
        who = "the origin P" if label == "P" else label
        if produced:
            answered.append(f"{who}'s store")
        elif hits:
            answered.append(f"{who}'s cache")
    return answered[0] if answered else "?"


async def timed_fetch(uri: str, dest: Path) -> tuple[float, bytes, list[str]]:
    """Fetch NAME from ``uri`` into ``dest``: the time, blake3 of what came, and the notes."""
    async with connect(uri) as client:
        t0 = time.perf_counter()
        await fetch_version(client, NAME, dest)
        elapsed = time.perf_counter() - t0
    digest = blake3(dest.read_bytes()).digest()
    dest.unlink()
    return elapsed, digest, list(client.notes)


async def run_demo(size_mib: int = 16, delay_ms: float = 20.0) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ccn-demo-"))
    nodes: list[NodeProcess] = []
    try:
        p_port, m_port = free_port(), free_port()
        sock = {k: f"unix://{workdir / k}.sock" for k in ("P", "C", "C2")}
        link = trio.CancelScope()  # the relay: the delayed link to P

        async def relay(*, task_status: trio.TaskStatus[int]) -> None:
            with link:
                await run_relay(("127.0.0.1", p_port), delay_ms / 1000, task_status=task_status)

        async with trio.open_nursery() as nursery:
            relay_port = await nursery.start(relay)
            slow = f"tcp://127.0.0.1:{relay_port}"
            m_uri = f"tcp://127.0.0.1:{m_port}"
            print(f"ccn demo: starting 4 node processes in {workdir}", flush=True)
            nodes.append(
                await start_node(
                    "P", workdir, [sock["P"], f"tcp://127.0.0.1:{p_port}"], [], sock["P"]
                )
            )
            nodes.append(await start_node("M", workdir, [m_uri], [f"/demo={slow}"], m_uri))
            nodes.append(await start_node("C", workdir, [sock["C"]], [f"/demo={m_uri}"], sock["C"]))
            nodes.append(
                await start_node("C2", workdir, [sock["C2"]], [f"/demo={m_uri}"], sock["C2"])
            )
            print(
                f"  C, C2 -> M -> [{delay_ms:g} ms each way] -> P; publishing {size_mib} MiB on P",
                flush=True,
            )
            sample = workdir / "sample.bin"
            with open(sample, "wb") as f:
                for _ in range(size_mib):
                    f.write(os.urandom(1 << 20))
            want = blake3(sample.read_bytes()).digest()
            async with connect(sock["P"]) as client:
                reply = await client.publish(sample, NAME)
            print(f"  published {reply['name']} id {reply['id'][:16]}…", flush=True)

            cases = [
                ("C: first fetch (cold)", sock["C"]),
                ("C: second fetch", sock["C"]),
                ("C2: neighbour fetch", sock["C2"]),
                (DIRECT, slow),
                (OFFLINE, sock["C2"]),
            ]
            rows = []
            notes: list[str] = []
            for label, uri in cases:
                if label == OFFLINE:
                    link.cancel()
                    await stop_all([nodes.pop(0)])
                    # past the freshness of the "latest" record C2 holds: C2 must ask P again
                    print("  stopped P and its link; C2 asks for /demo/sample again", flush=True)
                    await trio.sleep(LATEST_FRESHNESS_MS / 1000)
                before = await snapshot(nodes)
                elapsed, digest, notes = await timed_fetch(uri, workdir / "out.bin")
                after = await snapshot(nodes)
                ok = "yes" if digest == want else "NO"
                rate = size_mib / elapsed
                rows.append((label, who_answered(before, after), elapsed, rate, ok))
            nursery.cancel_scope.cancel()
        _print_table(rows, size_mib, delay_ms)
        for note in notes:  # the last fetch's: why its version came from a cache
            print(f"C2 was told: {note}")
        return 0 if all(r[4] == "yes" for r in rows) else 1
    finally:
        with trio.CancelScope(shield=True):  # also when Ctrl-C or SIGTERM cancelled the demo
            await stop_all(nodes)
        shutil.rmtree(workdir, ignore_errors=True)


def _print_table(rows: list[tuple[str, str, float, float, str]], size: int, delay: float) -> None:
    print()
    print(f"| fetch of /demo/sample ({size} MiB) | answered by | time | rate | identical |")
    print("|---|---|---:|---:|:-:|")
    for label, who, elapsed, rate, ok in rows:
        print(f"| {label} | {who} | {elapsed * 1000:.0f} ms | {rate:.0f} MiB/s | {ok} |")
    direct = next(elapsed for label, _who, elapsed, _rate, _ok in rows if label == DIRECT)
    print()
    for label, who, elapsed, _rate, _ok in rows[1:3]:
        print(f"{label} ({who}) took {elapsed / direct:.2f}x the time of the host-to-host fetch")
    print(f"(the link to P adds {delay:g} ms each way; see README for the benchmarks)")
