"""A bounded soak: mixed load on a chain of three node processes, A -> B -> C, for SOAK_SECONDS.

C publishes new versions while consumers on A and B fetch random versions (cold and cached),
list names and read status, all at once. Afterwards: no operation failed, every version ever
published is still fetchable byte for byte from A, and no node's peak memory grew past its
content-store budget plus a fixed allowance.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.client import connect
from ccn.testing import NodeProcess, free_port, memory_status, start_node, stop_all

pytestmark = pytest.mark.slow

SOAK_SECONDS = float(os.environ.get("CCN_SOAK_SECONDS", "30"))
#: Per node, beyond the configured CS budget: interpreter, buffers, caches of names.
ALLOWANCE = 160 << 20


async def test_three_node_chain_soak(tmp_path: Path) -> None:
    rng = random.Random(3)
    b_port, c_port = free_port(), free_port()
    sock = {k: f"unix://{tmp_path}/{k}.sock" for k in "ABC"}
    nodes: dict[str, NodeProcess] = {}
    published: dict[int, bytes] = {}
    ops = {"put": 0, "get": 0, "ls": 0, "status": 0}
    try:
        with trio.fail_after(SOAK_SECONDS + 90):
            nodes["C"] = await start_node(
                "C", tmp_path, [sock["C"], f"tcp://127.0.0.1:{c_port}"], [], sock["C"]
            )
            nodes["B"] = await start_node(
                "B",
                tmp_path,
                [sock["B"], f"tcp://127.0.0.1:{b_port}"],
                [f"/s=tcp://127.0.0.1:{c_port}"],
                sock["B"],
            )
            nodes["A"] = await start_node(
                "A", tmp_path, [sock["A"]], [f"/s=tcp://127.0.0.1:{b_port}"], sock["A"]
            )
            base = {k: memory_status(n.process.pid)["VmRSS"] for k, n in nodes.items()}
            deadline = trio.current_time() + SOAK_SECONDS

            async def publisher() -> None:
                async with connect(sock["C"]) as c:
                    while trio.current_time() < deadline:
                        data = os.urandom(rng.choice([1_000, 200_000, 3_000_000]))
                        src = tmp_path / f"v{len(published)}.bin"
                        src.write_bytes(data)
                        name = await c.put(src, "/s/doc")
                        assert name.version is not None
                        published[name.version] = data
                        src.unlink()
                        ops["put"] += 1
                        await trio.sleep(0.5)

            async def consumer(label: str) -> None:
                async with connect(sock[label]) as c:
                    while trio.current_time() < deadline:
                        if not published:
                            await trio.sleep(0.1)
                            continue
                        n = rng.choice(list(published))
                        assert await c.get(f"/s/doc/v{n}") == published[n]
                        ops["get"] += 1

            async def watcher() -> None:
                async with connect(sock["C"]) as c, connect(sock["A"]) as a:
                    while trio.current_time() < deadline:
                        # Versions published before the listing was asked for must be in it
                        # (one finished while it was on its way may not be).
                        before = set(published)
                        listed: list[dict[str, Any]] = await c.ls("/s")
                        assert before <= set(listed[0]["versions"]) if listed else True
                        ops["ls"] += 1
                        await a.status()
                        ops["status"] += 1
                        await trio.sleep(0.2)

            async with trio.open_nursery() as n:
                n.start_soon(publisher)
                for label in ("A", "A", "B"):
                    n.start_soon(consumer, label)
                n.start_soon(watcher)
            async with connect(sock["A"]) as a:
                for number, data in published.items():
                    assert await a.get(f"/s/doc/v{number}") == data  # no lost object
                status = await a.status()
            peaks = {k: memory_status(n.process.pid)["VmHWM"] for k, n in nodes.items()}
    finally:
        await stop_all(list(nodes.values()))
    print(f"soak: {ops} in {SOAK_SECONDS:.0f} s; rss {base} -> peak {peaks}")
    assert ops["put"] >= 5 and ops["get"] >= 20
    for label, peak in peaks.items():
        assert peak - base[label] < status["limits"]["cs_bytes"] + ALLOWANCE, (label, peak)
