"""ccn on a LAN in network namespaces (root): zero-configuration start-up, and UDP against TCP.

Run: ``python benchmarks/bench_lan.py`` (``--quick`` for a smoke run). Two hosts, ``p`` and
``c``, on one bridged segment (veth, MTU 1500), one ``ccn node`` process each (ccn/netlab.py).

1. **Time to first fetch, zero configuration**: ``p`` runs and has published a small file; a
   fresh node is started on ``c`` with no routes (discovery on, the default), and a client on
   ``c`` asks for the file every 20 ms until it arrives. Measured: from spawning ``c``'s node
   process to the first byte-identical fetch (so Python start-up is included; the node process
   alone, to its first answer on its socket, is reported beside it). Median of runs; target
   under 2 s.
2. **Fetch rate over UDP faces against TCP faces**: discovery off, ``c`` routes ``/bench`` to
   ``p`` over ``udp://`` (fragmented at the 1500-byte path MTU) or ``tcp://``; each run fetches
   a distinct random file with ``ccn.fetch.fetch_version`` through ``c`` (so neither node's
   cache helps). MB/s = 10^6 bytes/s, medians, and the UDP/TCP ratio from the same run.
3. **Through a slow link with a shallow queue**: as 2, with the switch's port towards ``c``
   limited by a token bucket (``tc qdisc … tbf``: 20 Mbit/s with a 64 KiB queue, and 100 Mbit/s
   with 32 KiB), so the fragments of a window of chunks overflow the queue. UDP relies on ``c``
   asking ``p`` for the fragments it lacks (docs/protocol.md §7); TCP over the same link, in
   the same run, is the baseline. Reported: MB/s (median), the share of the link's rate, and
   the fragments asked for and sent again.

Writes ``benchmarks/results/lan.{json,md}``. Never asserts a timing. Only namespaces and
processes it made are removed / ended.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from _common import MB, command_line, machine_info, machine_line, write_results

from ccn.client import connect
from ccn.errors import CcnError
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.netlab import Lab, lab, unavailable
from ccn.testing import stop_all

#: p's address on the segment (its link is the first: 10.1.0.1)
P_ADDR = "10.1.0.1"


async def _two_hosts(net: Lab) -> None:
    net.host("p")
    net.host("c")
    net.segment("lan")
    net.link("p", "lan")
    net.link("c", "lan")


async def time_to_first_fetch(runs: int) -> dict[str, Any]:
    results: list[float] = []
    ready: list[float] = []
    payload = os.urandom(100_000)
    async with lab() as net:
        await _two_hosts(net)
        await net.start("p")
        src = net.workdir / "small.bin"
        src.write_bytes(payload)
        async with connect(net.uri("p")) as client:
            await client.put(src, "/lan/small")
        for _run in range(runs):
            store = net.workdir / "c" / "store"
            if store.exists():
                shutil.rmtree(store)
            t0 = time.monotonic()
            await net.start("c")
            t_ready = time.monotonic() - t0
            with trio.fail_after(30):
                got = b""
                while got != payload:
                    with trio.move_on_after(2):
                        try:
                            async with connect(net.uri("c")) as client:
                                got = await client.get("/lan/small/v1")
                        except* (CcnError, OSError):
                            pass  # no route yet: asked again below
                    if got != payload:
                        await trio.sleep(0.02)
            results.append(time.monotonic() - t0)
            ready.append(t_ready)
            await net.stop("c")
    return {
        "runs": runs,
        "seconds": results,
        "median_s": statistics.median(results),
        "node_ready_median_s": statistics.median(ready),
    }


#: (rate as tc says it, bits/s, queue as tc says it) of the slow links of part 3
BOTTLENECKS = [("20mbit", 20e6, "64kb"), ("100mbit", 100e6, "32kb")]


async def bottleneck_rates(size: int, runs: int) -> list[dict[str, Any]]:
    out = []
    for rate, bits, queue in BOTTLENECKS:
        counted = {"asked": 0, "resent": 0}

        async def count_udp(net: Lab, counted: dict[str, int] = counted) -> None:
            # c's face is new each run, p's is not (p runs on): its count is for all runs
            counted["asked"] += await _udp_counter(net.uri("c"), "reassembly", "asked")
            counted["resent"] = await _udp_counter(net.uri("p"), "resend", "resent")

        async with lab() as net:
            await _two_hosts(net)
            subprocess.run(
                ["tc", "-n", net.switch, "qdisc", "add", "dev", "s2", "root", "tbf",
                 "rate", rate, "burst", "16kb", "limit", queue],
                check=True, capture_output=True,
            )  # fmt: skip
            rates = await _alternate(net, size, runs, after_udp=count_udp)
        out.append(
            {
                "rate": rate,
                "queue": queue,
                "link_mb_s": bits / 8 / MB,
                **rates,
                "fragments_asked_requests": counted["asked"],
                "fragments_resent": counted["resent"],
            }
        )
    return out


async def _udp_counter(uri: str, group: str, name: str) -> int:
    """A counter of the UDP faces of the node at ``uri``, summed."""
    async with connect(uri) as client:
        faces = (await client.status())["faces"]
    return sum(f[group][name] for f in faces if "resend" in f)


async def _wait_connected(uri: str) -> None:
    """Until the node's ``/bench`` route has a face (a TCP neighbour may still be dialling)."""
    with trio.fail_after(20):
        while True:
            async with connect(uri) as client:
                status = await client.status()
            faces = {f["id"]: f["remote"] for f in status["faces"]}
            if any(
                e["prefix"] == "/bench" and any(h["face"] in faces for h in e["nexthops"])
                for e in status["fib"]
            ):
                return
            await trio.sleep(0.05)


async def fetch_rates(size: int, runs: int) -> dict[str, Any]:
    async with lab() as net:
        await _two_hosts(net)
        return await _alternate(net, size, runs)


async def _alternate(
    net: Lab,
    size: int,
    runs: int,
    *,
    after_udp: Callable[[Lab], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """``runs`` rounds of a fetch of a distinct random file of ``size`` bytes from p over UDP
    and one over TCP (the order alternating), each through a fresh node on c; the MB/s of each
    and the medians. ``after_udp`` runs after each UDP fetch, while c's node still runs."""
    rates: dict[str, list[float]] = {"udp": [], "tcp": []}
    await net.start("p", args=("--no-discovery",))
    files = []
    for i in range(2 * runs):
        src = net.workdir / f"f{i}.bin"
        src.write_bytes(os.urandom(size))
        async with connect(net.uri("p")) as client:
            await client.put(src, f"/bench/f{i}")
        files.append(src)
    i = 0
    for run in range(runs):
        for kind in ("tcp", "udp") if run % 2 else ("udp", "tcp"):
            route = f"/bench={kind}://{P_ADDR}:6464"
            await net.start("c", args=("--no-discovery", "--route", route))
            await _wait_connected(net.uri("c"))
            out = net.workdir / "out.bin"
            t0 = time.monotonic()
            with trio.fail_after(300):
                async with connect(net.uri("c")) as client:
                    await fetch_version(client, Name.parse(f"/bench/f{i}"), out)
            dt = time.monotonic() - t0
            assert out.read_bytes() == files[i].read_bytes()
            rates[kind].append(size / dt / MB)
            if kind == "udp" and after_udp is not None:
                await after_udp(net)
            out.unlink()
            await net.stop("c")
            i += 1
    await stop_all(list(net.nodes.values()))
    udp, tcp = statistics.median(rates["udp"]), statistics.median(rates["tcp"])
    return {
        "size_bytes": size,
        "runs": runs,
        "udp_mb_s": rates["udp"],
        "tcp_mb_s": rates["tcp"],
        "udp_median_mb_s": udp,
        "tcp_median_mb_s": tcp,
        "udp_over_tcp": udp / tcp,
    }


def markdown(data: dict[str, Any]) -> str:
    f, r = data["first_fetch"], data["rates"]
    return f"""# LAN: zero-configuration start-up and UDP against TCP (issue 5)

`{data["command"]}`

Machine: {machine_line(data["machine"])}

Two hosts in network namespaces on one bridged segment (veth, MTU 1500), one `ccn node` each.

| measure | result |
|---|---|
| node start → first fetch, zero configuration (median of {f["runs"]}) \
| **{f["median_s"]:.2f} s** (target < 2 s) |
| of which: node process start → answering on its socket | {f["node_ready_median_s"]:.2f} s |
| fetch over UDP faces, {r["size_bytes"] / MB:.0f} MB (median of {r["runs"]}) \
| {r["udp_median_mb_s"]:.0f} MB/s |
| fetch over TCP faces, same | {r["tcp_median_mb_s"]:.0f} MB/s |
| UDP / TCP | **{r["udp_over_tcp"]:.2f}** |

Runs: first fetch {", ".join(f"{s:.2f}" for s in f["seconds"])} s; UDP
{", ".join(f"{x:.0f}" for x in r["udp_mb_s"])} MB/s; TCP
{", ".join(f"{x:.0f}" for x in r["tcp_mb_s"])} MB/s.

Through a slow link with a shallow queue (a token bucket on the switch's port towards `c`);
TCP over the same link is the baseline:

| link, queue | UDP MB/s | TCP MB/s | UDP / TCP | UDP, share of the link \
| requests for fragments / fragments sent again (all UDP runs) |
|---|---:|---:|---:|---:|---:|
{"".join(_bottleneck_row(b) for b in data["bottlenecks"])}
"""


def _bottleneck_row(b: dict[str, Any]) -> str:
    runs = f"{b['size_bytes'] / MB:.0f} MB, median of {b['runs']}"
    return (
        f"| {b['rate']}, {b['queue']} ({runs}) | {b['udp_median_mb_s']:.2f} "
        f"| {b['tcp_median_mb_s']:.2f} | **{b['udp_over_tcp']:.2f}** "
        f"| {b['udp_median_mb_s'] / b['link_mb_s']:.2f} "
        f"| {b['fragments_asked_requests']} / {b['fragments_resent']} |\n"
    )


async def main(args: argparse.Namespace) -> int:
    reason = unavailable()
    if reason is not None:
        print(f"bench_lan: skipped: {reason}", file=sys.stderr)
        return 0
    size = (4 if args.quick else args.size_mib) * 1024 * 1024
    runs = 1 if args.quick else args.runs
    data: dict[str, Any] = {"machine": machine_info(), "command": command_line()}
    data["first_fetch"] = await time_to_first_fetch(2 if args.quick else args.runs)
    data["rates"] = await fetch_rates(size, runs)
    data["bottlenecks"] = await bottleneck_rates((2 if args.quick else 8) * 1024 * 1024, runs)
    md = markdown(data)
    print(md)
    write_results("lan-quick" if args.quick else "lan", data, md)
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size-mib", type=int, default=64)
    sys.exit(trio.run(main, p.parse_args()))
