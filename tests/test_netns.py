"""Real LANs in network namespaces: one ``ccn node`` process per host, no routes configured.

Each test builds its own hosts (``ip netns``), a namespace holding one bridge per LAN segment,
and veth links (ccn/netlab.py); routers are hosts on two segments with no IP forwarding: ccn
alone carries packets between segments. Only the namespaces a test made are deleted, whether it
passed or not. Needs root and ``ip``; skipped otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import trio

from ccn.client import connect
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.netlab import lab, unavailable

_REASON = unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


async def status(uri: str) -> dict[str, Any]:
    async with connect(uri) as c:
        return await c.status()


async def wait_route(uri: str, prefix: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    with trio.fail_after(timeout):
        while True:
            for e in (await status(uri))["fib"]:
                if e["prefix"] == prefix and e["nexthops"]:
                    hops: list[dict[str, Any]] = e["nexthops"]
                    return hops
            await trio.sleep(0.1)


async def test_three_segments_zero_configuration() -> None:
    """c | r1 | r2 | p: three segments, two routers, no routes given anywhere."""
    data = os.urandom(4 * 1024 * 1024 + 5)
    with trio.fail_after(90):
        async with lab() as net:
            for h in ("c", "r1", "r2", "p"):
                net.host(h)
            for s in ("s1", "s2", "s3"):
                net.segment(s)
            for h, s in (("c", "s1"), ("r1", "s1"), ("r1", "s2"), ("r2", "s2"), ("r2", "s3"),
                         ("p", "s3")):  # fmt: skip
                net.link(h, s)
            await net.start("c", "r1", "r2", "p")
            src = net.workdir / "src.bin"
            src.write_bytes(data)
            async with connect(net.uri("p")) as client:
                await client.put(src, "/far/file")
            hops = await wait_route(net.uri("c"), "/far/file")
            assert hops[0]["cost"] == 3 and hops[0]["origin"].startswith("discovery")
            out = net.workdir / "out.bin"
            async with connect(net.uri("c")) as client:
                await client.fetch("/far/file", out)
            assert out.read_bytes() == data
            listing = await trio.run_process(
                [sys.executable, "-m", "ccn", "--node", net.uri("c"), "route", "list"],
                capture_stdout=True,
            )
            assert b"/far/file" in listing.stdout and b"discovery" in listing.stdout
            r1 = await status(net.uri("r1"))
            assert len(r1["discovery"]["neighbours"]) == 2


async def test_fetch_survives_a_link_going_down() -> None:
    """c on s1, p on s2, routers r1 and r2 both join s1 and s2. Mid-fetch, the link of the
    router carrying the traffic goes down; the fetch completes through the other one."""
    data = os.urandom(24 * 1024 * 1024)
    with trio.fail_after(120):
        async with lab() as net:
            for h in ("c", "r1", "r2", "p"):
                net.host(h)
            net.segment("s1")
            net.segment("s2")
            for h, s in (("c", "s1"), ("r1", "s1"), ("r2", "s1"), ("r1", "s2"), ("r2", "s2"),
                         ("p", "s2")):  # fmt: skip
                net.link(h, s)
            await net.start("c", "r1", "r2", "p")
            src = net.workdir / "src.bin"
            src.write_bytes(data)
            async with connect(net.uri("p")) as client:
                await client.put(src, "/far/big")
            with trio.fail_after(20):
                while len(await wait_route(net.uri("c"), "/far/big")) < 2:
                    await trio.sleep(0.1)
            out = net.workdir / "out.bin"
            halfway = trio.Event()
            cut: list[str] = []
            before: dict[str, int] = {}

            def progress(done: int, total: int) -> None:
                if done > total // 5:
                    halfway.set()

            async def cut_busiest() -> None:
                await halfway.wait()
                busy: dict[str, int] = {}
                for r in ("r1", "r2"):
                    busy[r] = (await status(net.uri(r)))["forwarder"]["out_data"]
                victim = max(busy, key=busy.__getitem__)
                net.link_down(victim, "s1")
                cut.append(victim)
                before.update(busy)

            async with connect(net.uri("c")) as client, trio.open_nursery() as nursery:
                nursery.start_soon(cut_busiest)
                await fetch_version(client, Name.parse("/far/big"), out, progress=progress)
            assert cut, "the link was never taken down"
            assert out.read_bytes() == data
            survivor = "r2" if cut[0] == "r1" else "r1"
            after = (await status(net.uri(survivor)))["forwarder"]["out_data"]
            # the rest of the content (most of it) came through the other router
            assert after - before[survivor] > 100
