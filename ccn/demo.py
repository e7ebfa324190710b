"""``ccn demo``: a small topology of real node processes on this machine.

    consumer C ──┐
                 ├── middle M ══(relay: DELAY ms each way)══ producer P
    consumer C2 ─┘

A sample file is published on P, fetched by C (cold: from P through M), by C again (C's own
cache), by C2 (M's cache, one hop away) and host-to-host straight from P over the same delayed
link. Counters from each node's ``status`` say who answered. Processes and files are cleaned up.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from blake3 import blake3

from ccn.client import connect
from ccn.errors import CcnError, ConnectError
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.relay import run_relay

NAME = Name.parse("/demo/sample")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class NodeProcess:
    """A ``ccn node`` child process started (and ended, by pid) by us."""

    label: str
    uri: str
    process: trio.Process

    def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()


async def start_node(
    label: str, workdir: Path, listen: list[str], routes: list[str], uri: str
) -> NodeProcess:
    cmd = [sys.executable, "-m", "ccn", "node", "--store", str(workdir / label / "store")]
    for item in listen:
        cmd += ["--listen", item]
    for r in routes:
        cmd += ["--route", r]
    log = open(workdir / f"{label}.log", "wb")  # noqa: SIM115 - owned by the child
    proc = await trio.lowlevel.open_process(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    node = NodeProcess(label, uri, proc)
    await wait_ready(node, workdir)
    return node


async def wait_ready(node: NodeProcess, workdir: Path, timeout: float = 15.0) -> None:
    with trio.move_on_after(timeout):
        while True:
            if node.process.returncode is not None:
                break
            try:
                async with connect(node.uri) as client:
                    await client.status()
                    return
            except (ConnectError, OSError):
                await trio.sleep(0.05)
    log = (workdir / f"{node.label}.log").read_text(errors="replace").strip()
    raise CcnError(f"node {node.label} did not start: {log.splitlines()[-1] if log else '?'}")


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
        if produced:
            answered.append(f"{label}'s store (origin)")
        elif hits:
            answered.append(f"{label}'s cache")
    return answered[0] if answered else "?"


async def timed_fetch(uri: str, dest: Path) -> tuple[float, bytes]:
    async with connect(uri) as client:
        t0 = time.perf_counter()
        await fetch_version(client, NAME, dest)
        elapsed = time.perf_counter() - t0
    digest = blake3(dest.read_bytes()).digest()
    dest.unlink()
    return elapsed, digest


async def run_demo(size_mib: int = 16, delay_ms: float = 20.0) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ccn-demo-"))
    nodes: list[NodeProcess] = []
    try:
        p_port, m_port = free_port(), free_port()
        sock = {k: f"unix://{workdir / k}.sock" for k in ("P", "C", "C2")}
        async with trio.open_nursery() as nursery:
            relay_port = await nursery.start(run_relay, ("127.0.0.1", p_port), delay_ms / 1000)
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
                ("host-to-host from P", slow),
            ]
            rows = []
            for label, uri in cases:
                before = await snapshot(nodes)
                elapsed, digest = await timed_fetch(uri, workdir / "out.bin")
                after = await snapshot(nodes)
                ok = "yes" if digest == want else "NO"
                rate = size_mib / elapsed
                rows.append((label, who_answered(before, after), elapsed, rate, ok))
            nursery.cancel_scope.cancel()
        _print_table(rows, size_mib, delay_ms)
        return 0 if all(r[4] == "yes" for r in rows) else 1
    finally:
        for n in nodes:
            n.stop()
        for n in nodes:
            with trio.move_on_after(3):
                await n.process.wait()
            if n.process.returncode is None:
                n.process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _print_table(rows: list[tuple[str, str, float, float, str]], size: int, delay: float) -> None:
    print()
    print(f"| fetch of /demo/sample ({size} MiB) | answered by | time | rate | identical |")
    print("|---|---|---:|---:|:-:|")
    for label, who, elapsed, rate, ok in rows:
        print(f"| {label} | {who} | {elapsed * 1000:.0f} ms | {rate:.0f} MiB/s | {ok} |")
    direct = rows[-1][2]
    print()
    for label, who, elapsed, _rate, _ok in rows[1:3]:
        print(f"{label} ({who}) took {elapsed / direct:.2f}x the time of the host-to-host fetch")
    print(f"(the link to P adds {delay:g} ms each way; see README for the benchmarks)")
