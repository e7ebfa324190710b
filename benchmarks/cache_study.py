"""The cache-hit study: named fetch from the nearest copy against host-to-host fetch.

Run: ``python benchmarks/cache_study.py`` (full: minutes) or ``--smoke`` (seconds, tiny sizes,
loopback; run by ``tests/test_cache_study.py``). Topology, real ``ccn node`` processes::

    app ──unix── consumer node C ──tcp── nearby node M ══ relay (DELAY one way) ══ origin node O
                 [host c]                [host m]                                  [host o]

Hosts are network namespaces (veth c-m and m-o) when running as root and ``ip netns`` works,
else loopback; the results say which. The relay (:mod:`ccn.relay`, one process in host o) adds
0, 5 and 20 ms one way; ccn's m→o link, the HTTP baseline and the raw TCP baseline to the origin
all pass through it. The baselines, in the same run: nginx (Debian package; installed with
apt-get when root and missing) or else Python's ``http.server`` serving the same files on host
o, fetched host-to-host from host c with a keep-alive HTTP/1.1 client; and a raw trio TCP
request/response (``bench_node.py``'s protocol) from host c to host m (the neighbour's hop) and
from host c to host o through the relay.

Cases, each answered by the node named and checked against the nodes' counters:

* local CS hit — C's CS (warmed by fetching through C);
* neighbour CS hit — M's CS (warmed by fetching from M directly; C never saw the objects);
* two-hop CS hit — O's CS, across the delayed link (warmed by fetching from O directly);
* cold — O's store through the whole chain, nothing cached anywhere;
* host-to-host — the baselines above.

1 KiB objects: latency of single Interest→Data exchanges (every fetch a distinct object, so a
miss stays a miss), p50/p90/p99 over ``--fetches``; exchanges/s with a window of 64 over
``--window-objects`` more. A ``--bulk-mib`` file (256 MiB): throughput with
``ccn.fetch.fetch_version`` (verified, written to ``--sink``), median of ``--runs``, nodes
restarted between cases so each run is answered by the intended cache. Writes
``benchmarks/results/cache_study.{md,json}`` and PNG plots (with the ``bench`` extra:
matplotlib). Never asserts a timing. Every child process is ended by pid; namespaces are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import trio
from _common import (
    MB,
    MIB,
    PYTHON,
    NodeProcess,
    command_line,
    machine_info,
    machine_line,
    stop_process,
    wait_ready,
)
from _study_net import (
    HttpClient,
    HttpError,
    Net,
    ensure_nginx,
    nginx_command,
    nginx_version,
    raw_bulk,
    raw_latency,
    raw_window,
    start_helper,
)
from bench_node import WINDOW, blob_ids, ccn_exchanges, make_small_files, write_random

from ccn.client import Client, connect, new_nonce
from ccn.config import NodeConfig
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.packet import Interest

SMALL = 1024
SETS = ("local", "neighbour", "twohop", "cold")
LABEL = {
    "local": "ccn local CS hit",
    "neighbour": "ccn neighbour CS hit",
    "direct": "ccn neighbour CS hit, app straight to M (no node on c)",
    "twohop": "ccn two-hop CS hit",
    "cold": "ccn cold, origin store via chain",
    "http": "host-to-host HTTP",
    "raw_relay": "raw TCP c→o via relay",
    "raw_hop": "raw TCP c→m (neighbour hop)",
    "raw_fwd": "raw TCP c→m via a byte forwarder on c",
}
ANSWERED = {
    "local": "C (CS)",
    "neighbour": "M (CS)",
    "direct": "M (CS)",
    "twohop": "O (CS)",
    "cold": "O (store)",
    "http": "origin host",
    "raw_relay": "origin host",
    "raw_hop": "nearby host",
    "raw_fwd": "nearby host",
}
HOST = {"C": "c", "M": "m", "O": "o"}
RESULTS = Path(__file__).resolve().parent / "results"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Settings:
    fetches: int
    window_objects: int
    bulk_mib: int
    runs: int
    delays: list[float]
    bulk_delays: list[float]
    sink: Path
    out: Path
    http: str
    install: bool
    profile: Path | None = None
    #: ``ensure_nginx``'s answer, found before this process moves into the consumer's
    #: namespace (apt-get there has no route to the package registry).
    nginx: tuple[str | None, str] | None = None


# -- the topology ----------------------------------------------------------------------------


@dataclass
class Topology:
    """The three nodes, the relay and the baseline servers, on :class:`Net` hosts."""

    net: Net
    workdir: Path
    cs_bytes: int
    ports: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, NodeProcess] = field(default_factory=dict)
    helpers: list[trio.Process] = field(default_factory=list)
    relay: trio.Process | None = None
    generation: int = 0

    def __post_init__(self) -> None:
        net = self.net
        for what in ("node", "raw", "http", "relay_node", "relay_raw", "relay_http", "forward"):
            self.ports[what] = net.port(what)
        # On loopback every host shares one port space.
        self.ports["node_m"] = net.port("node") if net.mode == "loopback" else self.ports["node"]
        self.ports["raw_m"] = net.port("raw") if net.mode == "loopback" else self.ports["raw"]

    def unix(self, label: str) -> str:
        return f"unix://{self.workdir / label}.sock"

    @property
    def m_tcp(self) -> str:
        return f"tcp://{self.net.nearby_addr}:{self.ports['node_m']}"

    @property
    def relay_node(self) -> str:
        return f"tcp://{self.net.origin_addr}:{self.ports['relay_node']}"

    async def start_node(self, label: str) -> NodeProcess:
        self.generation += 1
        home = self.workdir / label
        home.mkdir(parents=True, exist_ok=True)
        # O keeps its store (the published content); M and C start empty every time.
        store = home / "store" if label == "O" else home / f"store-{self.generation}"
        for old in home.glob("store-*"):
            shutil.rmtree(old, ignore_errors=True)
        config = home / "node.toml"
        text = f"cs_bytes = {self.cs_bytes}\ncs_max_entries = 262144\n"
        if "discovery" in {f.name for f in fields(NodeConfig)}:
            # LAN discovery would find the direct m-o link and route around the delaying relay.
            text += "discovery = false\n"
        config.write_text(text)
        host = self.net.node_listen_host(HOST[label])
        listen = [self.unix(label)]
        routes: list[str] = []
        if label == "O":
            listen.append(f"tcp://{host}:{self.ports['node']}")
        elif label == "M":
            listen.append(self.m_tcp)
            routes.append(f"/study={self.relay_node}")
        else:
            routes.append(f"/study={self.m_tcp}")
        cmd = [*self.net.prefix(HOST[label]), PYTHON, "-m", "ccn", "node", "--config", str(config)]
        cmd += ["--store", str(store)]
        for item in listen:
            cmd += ["--listen", item]
        for r in routes:
            cmd += ["--route", r]
        log = self.workdir / f"{label}.log"
        with open(log, "ab") as out:
            proc = await trio.lowlevel.open_process(cmd, stdout=out, stderr=out)
        node = NodeProcess(label, self.unix(label), "", proc, log, self.cs_bytes, cmd)
        try:
            await wait_ready(node, 30.0)
        except BaseException:
            await node.stop()
            raise
        self.nodes[label] = node
        return node

    async def restart(self, labels: str) -> None:
        """Restart the nodes named (a string like "CMO"), downstream first down, upstream
        first up, so each dials a running neighbour."""
        for label in "CMO":
            if label in labels and label in self.nodes:
                await self.nodes.pop(label).stop()
        for label in "OMC":
            if label in labels:
                await self.start_node(label)

    async def start_relay(self, delay_ms: float) -> None:
        o = self.net.node_listen_host("o")
        a = self.net.origin_addr
        p = self.ports
        maps = [
            f"{a}:{p['relay_node']}={o}:{p['node']}",
            f"{a}:{p['relay_raw']}={o}:{p['raw']}",
            f"{a}:{p['relay_http']}={o}:{p['http']}",
        ]
        self.relay = await start_helper(
            self.net.prefix("o"),
            ["relay", "--delay-ms", f"{delay_ms:g}", *maps],
            self.workdir / f"relay-{delay_ms:g}.log",
        )

    async def stop_relay(self) -> None:
        if self.relay is not None:
            await stop_process(self.relay)
            self.relay = None

    async def stop_all(self) -> None:
        for label in "CMO":
            if label in self.nodes:
                await self.nodes.pop(label).stop()
        await self.stop_relay()
        for proc in self.helpers:
            await stop_process(proc)
        self.helpers.clear()


# -- measuring -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


async def counters(topo: Topology) -> dict[str, dict[str, int]]:
    out = {}
    for label, node in topo.nodes.items():
        async with connect(node.unix_uri) as client:
            st = await client.status()
        out[label] = {
            "cs_hits": st["cs"]["hits"],
            "store_served": st["store"]["served"],
            "cache_tier_hits": st.get("cache", {}).get("hits", 0),
        }
    return out


def delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        label: {k: after[label][k] - before[label].get(k, 0) for k in after[label]}
        for label in after
        if label in before
    }


def answered_as_intended(case: str, d: dict[str, Any], n: int, slack: int = 0) -> bool:
    """Did the intended node answer all ``n`` (and nothing nearer)? ``slack``: hits allowed at
    nearer nodes (a retransmitted Interest can meet the copy that just arrived there)."""

    def hits(label: str) -> int:
        v: int = d.get(label, {}).get("cs_hits", 0)
        return v

    served = d.get("O", {}).get("store_served", 0)
    if case == "local":
        return hits("C") >= n and hits("M") <= slack
    if case == "neighbour":
        return hits("C") <= slack and hits("M") >= n and hits("O") <= slack
    if case == "twohop":
        return hits("C") + hits("M") <= slack and hits("O") >= n and served == 0
    return hits("C") + hits("M") <= slack and served >= n


async def ccn_latency(
    uri: str, locator: Name, ids: list[bytes], *, local: bool = True
) -> list[float]:
    """One exchange at a time for each of ``ids``. ``local``: the node is the app's own (it
    answers management); else the connection is warmed with the first id, asked twice."""
    out: list[float] = []
    async with connect(uri) as client:
        await _warm_connection(client, locator, ids, local)
        for digest in ids:
            interest = Interest(locator, new_nonce(), digest=digest)
            t0 = time.perf_counter()
            data = await client.express(interest, retries=0)
            out.append(time.perf_counter() - t0)
            if len(data.content) < SMALL:
                raise SystemExit(f"short answer for {digest.hex()[:16]}")
    return out


async def _warm_connection(client: Client, locator: Name, ids: list[bytes], local: bool) -> None:
    """The connection is up and warm: a status command to the app's own node, else an
    Interest (for ``ids[0]``: a node on the network refuses management)."""
    if local:
        await client.status()
    else:
        await client.express(Interest(locator, new_nonce(), digest=ids[0]), retries=0)


async def ccn_window(
    uri: str, locator: Name, ids: list[bytes], *, local: bool = True
) -> tuple[float, int]:
    async with connect(uri) as client:
        await _warm_connection(client, locator, ids, local)
        r = await ccn_exchanges(
            client, locator, ids, duration=0, min_count=0, max_seconds=300, once=True
        )
    return r.rate, r.nacks + r.lost


async def warm(uri: str, locator: Name, ids: list[bytes]) -> None:
    async with connect(uri) as client:
        r = await ccn_exchanges(
            client, locator, ids, duration=0, min_count=0, max_seconds=300, once=True
        )
    if r.nacks or r.lost or r.count != len(ids):
        raise SystemExit(f"warming {locator} failed: {r}")


async def ccn_bulk(uri: str, name: Name, dest: Path, size: int) -> tuple[float, dict[str, Any]]:
    async with connect(uri) as client:
        t0 = time.perf_counter()
        _name, _version, stats = await fetch_version(client, name, dest)
        elapsed = time.perf_counter() - t0
    got = dest.stat().st_size
    dest.unlink()
    if got != size:
        raise SystemExit(f"bulk fetch of {name}: {got} bytes, want {size}")
    return size / elapsed, asdict(stats)


@dataclass
class Content:
    locators: dict[str, Name]
    lat_ids: dict[str, list[bytes]]
    win_ids: dict[str, list[bytes]]
    http_lat: list[str]
    http_win: list[str]
    big: Name
    big_size: int
    big_hash: str


async def publish(topo: Topology, s: Settings, www: Path) -> Content:
    per_set = s.fetches + s.window_objects
    locators: dict[str, Name] = {}
    lat: dict[str, list[bytes]] = {}
    win: dict[str, list[bytes]] = {}
    o = topo.nodes["O"].unix_uri
    for case in SETS:
        make_small_files(www / "sets" / case, per_set, SMALL)
        async with connect(o) as client:
            reply = await client.publish(www / "sets" / case, f"/study/{case}")
            locator, ids = await blob_ids(client, Name.parse(reply["name"]))
        if len(ids) != per_set:
            raise SystemExit(f"{case}: {len(ids)} blobs, want {per_set}")
        locators[case], lat[case], win[case] = locator, ids[: s.fetches], ids[s.fetches :]
    files = [f"/sets/cold/d{i // 1000:03d}/f{i:06d}" for i in range(per_set)]
    size = s.bulk_mib * MIB
    big_hash = write_random(www / "big.bin", size)
    async with connect(o) as client:
        reply = await client.publish(www / "big.bin", "/study/big")
    say(f"  published 4 x {per_set} objects of {SMALL} B and {s.bulk_mib} MiB on O")
    return Content(
        locators,
        lat,
        win,
        files[: s.fetches],
        files[s.fetches :],
        Name.parse(reply["name"]),
        size,
        big_hash.hex(),
    )


async def start_baselines(topo: Topology, s: Settings, www: Path) -> dict[str, str]:
    """Raw TCP servers on hosts m and o, the HTTP server on host o. Returns what was used."""
    net, p, wd = topo.net, topo.ports, topo.workdir
    os.chmod(wd, 0o755)
    topo.helpers.append(
        await start_helper(
            net.prefix("m"), ["raw", net.nearby_addr, str(p["raw_m"])], wd / "raw-m.log"
        )
    )
    o_host = net.node_listen_host("o")
    topo.helpers.append(
        await start_helper(net.prefix("o"), ["raw", o_host, str(p["raw"])], wd / "raw-o.log")
    )
    # The floor of a forwarding process on the consumer's host: raw TCP to m through one.
    fwd = [net.node_listen_host("c"), str(p["forward"]), net.nearby_addr, str(p["raw_m"])]
    topo.helpers.append(await start_helper(net.prefix("c"), ["forward", *fwd], wd / "fwd.log"))
    used: dict[str, str] = {}
    if s.http in ("auto", "nginx"):
        path, how = s.nginx if s.nginx is not None else ensure_nginx(s.install)
        used["nginx"] = how
        if path is not None:
            cmd = [*net.prefix("o"), *nginx_command(path, wd, www, o_host, p["http"])]
            with open(wd / "nginx.log", "wb") as out:
                topo.helpers.append(await trio.lowlevel.open_process(cmd, stdout=out, stderr=out))
            used["http_server"] = f"nginx {nginx_version(path)}"
        elif s.http == "nginx":
            raise SystemExit(f"nginx asked for: {how}")
    if "http_server" not in used:
        topo.helpers.append(
            await start_helper(
                net.prefix("o"), ["http", str(www), o_host, str(p["http"])], wd / "http.log"
            )
        )
        used["http_server"] = f"Python {sys.version.split()[0]} http.server (HTTP/1.1 keep-alive)"
    return used


async def http_ready(topo: Topology, path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await HttpClient.open(topo.net.origin_addr, topo.ports["relay_http"])
            try:
                await client.get(path)
                return
            finally:
                await client.aclose()
        except (OSError, trio.BrokenResourceError, HttpError) as e:
            if time.monotonic() > deadline:
                raise SystemExit(f"HTTP server not reachable through the relay: {e}") from None
            await trio.sleep(0.1)


async def http_latency(topo: Topology, paths: list[str]) -> list[float]:
    client = await HttpClient.open(topo.net.origin_addr, topo.ports["relay_http"])
    out: list[float] = []
    try:
        for p in paths[:10]:
            await client.get(p)  # warm the connection up
        for p in paths:
            t0 = time.perf_counter()
            body = await client.get(p)
            out.append(time.perf_counter() - t0)
            if len(body) != SMALL:
                raise SystemExit(f"HTTP {p}: {len(body)} bytes")
    finally:
        await client.aclose()
    return out


async def http_window(topo: Topology, paths: list[str]) -> float:
    client = await HttpClient.open(topo.net.origin_addr, topo.ports["relay_http"])
    try:
        return len(paths) / await client.pipelined(paths)
    finally:
        await client.aclose()


async def http_bulk(topo: Topology, dest: Path, size: int) -> float:
    client = await HttpClient.open(topo.net.origin_addr, topo.ports["relay_http"])
    try:
        with open(dest, "wb") as f:
            t0 = time.perf_counter()
            n = await client.download("/big.bin", f)
            elapsed = time.perf_counter() - t0
    finally:
        await client.aclose()
        dest.unlink(missing_ok=True)
    if n != size:
        raise SystemExit(f"HTTP bulk: {n} bytes, want {size}")
    return size / elapsed


@asynccontextmanager
async def profiled(topo: Topology, s: Settings, name: str) -> AsyncIterator[None]:
    """With ``--profile DIR``: py-spy records nodes C, M and this process during the block."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if s.profile is None or not Path(spy).exists():
        yield
        return
    s.profile.mkdir(parents=True, exist_ok=True)
    pids = {label: n.pid for label, n in topo.nodes.items() if label in "CM"}
    pids["client"] = os.getpid()
    procs = []
    for label, pid in pids.items():
        out = s.profile / f"{name}-{label}.txt"
        cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
        cmd += ["--nonblocking", "--output", str(out)]
        procs.append(
            await trio.lowlevel.open_process(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    await trio.sleep(0.5)
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            with trio.move_on_after(20):
                await proc.wait()
            await stop_process(proc)


async def study_delay(topo: Topology, c: Content, s: Settings, delay: float) -> dict[str, Any]:
    """All cases with ``delay`` ms one way on the origin link."""
    say(f"delay {delay:g} ms: fresh nodes, relay")
    await topo.start_relay(delay)
    try:
        await topo.restart("CMO")
        await http_ready(topo, c.http_lat[0])
        uri = {label: n.unix_uri for label, n in topo.nodes.items()}
        # Warm each cache with its own objects: through C (C, M and O hold them), from M
        # directly (M and O), from O directly (O only); the cold set stays untouched.
        for case, via in (("local", "C"), ("neighbour", "M"), ("twohop", "O")):
            await warm(uri[via], c.locators[case], c.lat_ids[case] + c.win_ids[case])
        res: dict[str, Any] = {"cases": {}}
        for case in SETS:
            before = await counters(topo)
            async with profiled(topo, s, f"d{delay:g}-{case}-latency"):
                lat = await ccn_latency(uri["C"], c.locators[case], c.lat_ids[case])
            async with profiled(topo, s, f"d{delay:g}-{case}-window"):
                rate, lost = await ccn_window(uri["C"], c.locators[case], c.win_ids[case])
            d = delta(before, await counters(topo))
            n = len(c.lat_ids[case]) + len(c.win_ids[case])
            ok = answered_as_intended(case, d, n) and lost == 0
            _record(res, case, lat, rate, lost, d, ok)
        # The neighbour's cache once more, by an app on c with no node of its own, connected to
        # M as its node: what ccn costs over the hop without the consumer's forwarder.
        case = "neighbour"
        before = await counters(topo)
        lat = await ccn_latency(topo.m_tcp, c.locators[case], c.lat_ids[case], local=False)
        rate, lost = await ccn_window(topo.m_tcp, c.locators[case], c.win_ids[case], local=False)
        d = delta(before, await counters(topo))
        n = len(c.lat_ids[case]) + len(c.win_ids[case]) + 2  # and the two warming Interests
        hits = {k: d[k]["cs_hits"] for k in "CMO"}
        ok = hits == {"C": 0, "M": n, "O": 0} and d["O"]["store_served"] == 0 and lost == 0
        _record(res, "direct", lat, rate, lost, d, ok)
        a, p = topo.net, topo.ports
        for case, host, port in (
            ("raw_hop", a.nearby_addr, p["raw_m"]),
            ("raw_fwd", a.node_listen_host("c"), p["forward"]),
            ("raw_relay", a.origin_addr, p["relay_raw"]),
        ):
            lat = await raw_latency(host, port, SMALL, s.fetches)
            n = max(s.window_objects, 1)
            rate = n / await raw_window(host, port, SMALL, n)
            res["cases"][case] = {"latency_s": lat, "window_rate": rate}
            say(f"  {LABEL[case]}: p50 {pct(lat, 0.5) * 1e3:.3f} ms, {rate:,.0f}/s w64")
        lat = await http_latency(topo, c.http_lat)
        rate = await http_window(topo, c.http_win) if c.http_win else 0.0
        res["cases"]["http"] = {"latency_s": lat, "window_rate": rate}
        say(f"  {LABEL['http']}: p50 {pct(lat, 0.5) * 1e3:.3f} ms, {rate:,.0f}/s w64 pipelined")
        empty: dict[str, Any] = {"rates": {}, "median": {}, "verified": {}, "objects": 0}
        res["bulk"] = await study_bulk(topo, c, s) if delay in s.bulk_delays else empty
    finally:
        await topo.stop_relay()
    return res


def _record(
    res: dict[str, Any],
    case: str,
    lat: list[float],
    rate: float,
    lost: int,
    counted: dict[str, Any],
    ok: bool,
) -> None:
    """Keep a ccn case's latencies, window rate and counter deltas, and say how it went."""
    res["cases"][case] = {
        "latency_s": lat,
        "window_rate": rate,
        "lost": lost,
        "counters": counted,
        "verified": ok,
    }
    say(
        f"  {LABEL[case]}: p50 {pct(lat, 0.5) * 1e3:.3f} ms, {rate:,.0f}/s w64, "
        f"answered as intended: {ok}"
    )


async def study_bulk(topo: Topology, c: Content, s: Settings) -> dict[str, Any]:
    """``runs`` rounds: restart all → cold; again → local; restart C → neighbour; restart C and
    M → two-hop (O's CS holds it from the cold fetch); then the HTTP and raw TCP baselines."""
    rates: dict[str, list[float]] = {k: [] for k in (*SETS, "http", "raw_relay")}
    checks: dict[str, list[bool]] = {k: [] for k in SETS}
    deltas: dict[str, list[dict[str, Any]]] = {k: [] for k in SETS}
    fetch_stats: dict[str, list[dict[str, Any]]] = {k: [] for k in SETS}
    out = Path(tempfile.mkdtemp(prefix="ccn-study-", dir=s.sink))
    dest = out / "big.out"
    n_objects = 0
    try:
        for _ in range(s.runs):
            for case, restart in (
                ("cold", "CMO"),
                ("local", ""),
                ("neighbour", "C"),
                ("twohop", "CM"),
            ):
                if restart:
                    await topo.restart(restart)
                before = await counters(topo)
                async with profiled(topo, s, f"bulk-{case}"):
                    rate, stats = await ccn_bulk(topo.nodes["C"].unix_uri, c.big, dest, c.big_size)
                rates[case].append(rate)
                fetch_stats[case].append(stats)
                d = delta(before, await counters(topo))
                if case == "cold":
                    n_objects = d["O"]["store_served"]
                deltas[case].append(d)
                # The intended node must answer every object; hits at nearer nodes can then only
                # be duplicates (retransmitted Interests meeting the copy that just arrived).
                checks[case].append(answered_as_intended(case, d, max(1, n_objects), n_objects))
            rates["http"].append(await http_bulk(topo, dest, c.big_size))
            seconds = await raw_bulk(
                topo.net.origin_addr, topo.ports["relay_raw"], c.big_size, dest
            )
            rates["raw_relay"].append(c.big_size / seconds)
            say(
                "  bulk: " + ", ".join(f"{k} {v[-1] / MB:,.0f}" for k, v in rates.items()) + " MB/s"
            )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "rates": rates,
        "median": {k: statistics.median(v) for k, v in rates.items()},
        "verified": {k: all(v) for k, v in checks.items()},
        "counters": deltas,
        "fetch_stats": fetch_stats,
        "objects": n_objects,
    }


# -- output ----------------------------------------------------------------------------------

ORDER = (
    "local",
    "neighbour",
    "direct",
    "twohop",
    "cold",
    "http",
    "raw_relay",
    "raw_hop",
    "raw_fwd",
)


#: Rows of the targets table that are no targets: a case's p50 over the raw TCP c→m p50.
_BESIDE_RAW_HOP = {
    "raw_fwd": "(floor, not a target) raw TCP via a byte forwarder on c ÷ raw TCP c→m: what one "
    "forwarding process on the consumer's host costs",
    "direct": "(not a target) the same hit by an app on c straight to M, with no node on c ÷ "
    "raw TCP c→m: what ccn costs over the hop itself",
}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, r in results.items():
        d = float(key)
        cases, bulk = r["cases"], r["bulk"]["median"]
        p50 = {k: pct(v["latency_s"], 0.5) for k, v in cases.items()}
        ratio = p50["neighbour"] / p50["raw_hop"]
        out.append(
            {
                "delay_ms": d,
                "target": "neighbour hit p50 ≤ 1.5x raw TCP p50 (c→m hop)",
                "value": ratio,
                "limit": 1.5,
                "met": ratio <= 1.5,
            }
        )
        for case, what in _BESIDE_RAW_HOP.items():
            if case in p50:
                out.append(
                    {
                        "delay_ms": d,
                        "target": what,
                        "value": p50[case] / p50["raw_hop"],
                        "limit": None,
                        "met": None,
                    }
                )
        if d == 20:
            ratio = p50["neighbour"] / p50["http"]
            out.append(
                {
                    "delay_ms": d,
                    "target": "neighbour hit p50 ≤ 1/10 host-to-host p50",
                    "value": ratio,
                    "limit": 0.1,
                    "met": ratio <= 0.1,
                }
            )
        for case, limit in (("local", 0.5), ("neighbour", 0.35), ("cold", 0.25)):
            if not bulk:
                break
            ratio = bulk[case] / bulk["http"]
            out.append(
                {
                    "delay_ms": d,
                    "target": f"{LABEL[case]}, 256 MiB ≥ {limit}x HTTP",
                    "value": ratio,
                    "limit": limit,
                    "met": ratio >= limit,
                }
            )
    return out


def markdown_table(results: dict[str, Any]) -> str:
    lines = [
        "| origin link (one way) | case | answered by | p50 ms | p90 ms | p99 ms "
        "| exchanges/s, window 64 | bulk MB/s (median) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, r in results.items():
        for case in ORDER:
            v = r["cases"][case]
            lat = v["latency_s"]
            bulk = r["bulk"]["median"].get(case)
            who = ANSWERED[case]
            if not v.get("verified", True):
                who += " **(1 KiB: not verified)**"
            if not r["bulk"]["verified"].get(case, True):
                who += " **(bulk: not verified)**"
            lines.append(
                f"| {float(key):g} ms | {LABEL[case]} | {who} | {pct(lat, 0.5) * 1e3:.3f} "
                f"| {pct(lat, 0.9) * 1e3:.3f} | {pct(lat, 0.99) * 1e3:.3f} "
                f"| {v['window_rate']:,.0f} | {'—' if bulk is None else f'{bulk / MB:,.0f}'} |"
            )
    return "\n".join(lines)


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| origin link | target | ratio | met? |", "|---:|---|---:|:-:|"]
    for t in rows:
        met = "—" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['delay_ms']:g} ms | {t['target']} | {t['value']:.3f} | {met} |")
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path, stem: str) -> list[Path] | str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install -e '.[bench]')"
    delays = list(results)
    bulk_delays = [k for k in delays if results[k]["bulk"]["median"]]
    fig, axes = plt.subplots(1, len(delays), figsize=(5.2 * len(delays), 4.2), squeeze=False)
    for ax, key in zip(axes[0], delays, strict=True):
        for case in ORDER:
            lat = sorted(x * 1e3 for x in results[key]["cases"][case]["latency_s"])
            ys = [(i + 1) / len(lat) for i in range(len(lat))]
            ax.step(lat, ys, where="post", label=LABEL[case])
        ax.set_xscale("log")
        ax.set_xlabel("latency of one 1 KiB fetch, ms (log)")
        ax.set_title(f"origin link +{float(key):g} ms one way")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of fetches")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    lat_png = out / f"{stem}_latency.png"
    fig.savefig(lat_png, dpi=110)
    plt.close(fig)

    cases = ("local", "neighbour", "twohop", "cold", "http", "raw_relay")
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(cases)
    for i, case in enumerate(cases):
        xs = [j + i * width for j in range(len(bulk_delays))]
        ys = [results[k]["bulk"]["median"][case] / MB for k in bulk_delays]
        ax.bar(xs, ys, width, label=LABEL[case])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(bulk_delays))])
    ax.set_xticklabels([f"+{float(k):g} ms" for k in bulk_delays])
    ax.set_ylabel("MB/s (median)")
    ax.set_title("throughput of one large object by where it is answered")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    bulk_png = out / f"{stem}_throughput.png"
    fig.savefig(bulk_png, dpi=110)
    plt.close(fig)
    return [lat_png, bulk_png]


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("ccn", "trio", "msgpack", "blake3", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


NOTES = """\
Notes: MB = 10^6 bytes; ms one way on the origin link (m↔o), added by the user-space relay that
ccn's m→o link, the HTTP baseline and the raw TCP baseline to o all pass through. Latency = one
Interest→Data exchange by the client library (`Client.express`) on a connection to C, for a
distinct 1 KiB object each time; HTTP and raw TCP = one request/response on a keep-alive
connection. Windowed = every object once with 64 in flight (HTTP: 64 pipelined GETs). Bulk =
`fetch_version` (every chunk verified, written to the sink) against one GET / raw 64 KiB
request-response stream, median of the runs. "answered by" is checked against the nodes' CS hit
and store counters for every case (the JSON has the deltas; in bulk runs the intended node
answers every object and a nearer node may answer duplicates as well: retransmitted Interests
meeting the copy that arrived meanwhile). Raw TCP c→m has no bulk row. "via a byte forwarder
on c" is the same raw TCP exchange through a process on the consumer's host that only reads
each socket and writes what it got (os.read/os.write, as ccn's faces do): the floor of any
design where, like ccn's C, a forwarding process sits between the application and the link.
Nodes run with LAN discovery off and static routes, so that the relay is the only path to the
origin."""


async def run(s: Settings, net: Net, args: argparse.Namespace) -> int:
    load_start = os.getloadavg()
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ccn-study-", dir=args.workdir))
    size = s.bulk_mib * MIB
    topo = Topology(net, workdir, cs_bytes=max(64 * MIB, size + size // 2))
    results: dict[str, Any] = {}
    try:
        say(f"cache study on {net.describe()}; workdir {workdir}")
        www = workdir / "www"
        await topo.start_node("O")
        content = await publish(topo, s, www)
        used = await start_baselines(topo, s, www)
        say(f"  HTTP baseline: {used['http_server']}")
        for delay in s.delays:
            results[f"{delay:g}"] = await study_delay(topo, content, s, delay)
    finally:
        await topo.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    load_end = os.getloadavg()

    machine = machine_info()
    machine["tcp_congestion_control"] = net.congestion_control()
    command = command_line()
    tgt = targets(results)
    table, ttable = markdown_table(results), targets_table(tgt)
    print(table + "\n\n" + ttable)
    s.out.mkdir(parents=True, exist_ok=True)
    stem = "cache_study"
    pictures = plots(results, s.out, stem)
    picture_note = pictures if isinstance(pictures, str) else ", ".join(p.name for p in pictures)
    say(f"  {picture_note}")
    data = {
        "command": command,
        "machine": machine,
        "versions": versions(),
        "network": {"mode": net.mode, "description": net.describe()},
        "http_server": used,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(s).items()},
        "load_average": {"start": load_start, "end": load_end},
        "seconds": round(time.monotonic() - t_start, 1),
        "bulk_bytes": size,
        "bulk_content_hash": content.big_hash,
        "window": WINDOW,
        "targets": tgt,
        "results": {
            k: {
                "cases": {
                    c: {
                        **v,
                        "latency_s": [round(x, 7) for x in v["latency_s"]],
                        "p50_s": pct(v["latency_s"], 0.5),
                        "p90_s": pct(v["latency_s"], 0.9),
                        "p99_s": pct(v["latency_s"], 0.99),
                    }
                    for c, v in r["cases"].items()
                },
                "bulk": r["bulk"],
            }
            for k, r in results.items()
        },
        "plots": picture_note,
    }
    bulk_at = ", ".join(f"{d:g}" for d in s.bulk_delays)
    md = (
        "# Cache-hit study: named fetch from the nearest copy vs host-to-host fetch\n\n"
        f"Command: `{command}`\n\nMachine: {machine_line(machine)}\n\n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions().items())}\n\n"
        f"Network: {net.describe()}. HTTP baseline: {used['http_server']} ({used.get('nginx', '')})"
        f".\n\nLoad average (1/5/15 min) at start {load_start[0]:.2f}/{load_start[1]:.2f}/"
        f"{load_start[2]:.2f}, at end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}; "
        f"{s.fetches} fetches per latency case, {s.window_objects} per windowed case, "
        f"{s.bulk_mib} MiB bulk x {s.runs} runs at {bulk_at} ms; "
        f"took {data['seconds']:.0f} s.\n\n"
        f"{table}\n\n## Targets (ratios within this run)\n\n{ttable}\n\n{NOTES}\n\n"
        + (
            f"{picture_note}\n"
            if isinstance(pictures, str)
            else "".join(f"![{p.stem}]({p.name})\n" for p in pictures)
        )
    )
    (s.out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    (s.out / f"{stem}.md").write_text(md)
    say(f"wrote {s.out / stem}.md and .json")
    ok = all(v.get("verified", True) for r in results.values() for v in r["cases"].values())
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--smoke", action="store_true", help="seconds-long run, tiny sizes, loopback")
    p.add_argument("--fetches", type=int, default=1000, help="1 KiB fetches per latency case")
    p.add_argument("--window-objects", type=int, default=4000, help="objects per windowed case")
    p.add_argument("--bulk-mib", type=int, default=256)
    p.add_argument("--runs", type=int, default=3, help="bulk runs per case (median)")
    p.add_argument("--delays", type=float, nargs="+", default=[0.0, 5.0, 20.0], help="ms")
    p.add_argument(
        "--bulk-delays", type=float, nargs="+", default=[0.0, 20.0], help="delays with bulk runs"
    )
    p.add_argument("--net", choices=["auto", "netns", "loopback"], default="auto")
    p.add_argument("--http", choices=["auto", "nginx", "python"], default="auto")
    p.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    p.add_argument("--out", default=str(RESULTS), help="where results and plots go")
    p.add_argument("--workdir", default=None, help="parent of the scratch dir")
    p.add_argument("--sink", default=None, help="where fetched files go (default /dev/shm)")
    p.add_argument("--profile", default=None, help="py-spy the nodes per case into this dir")
    args = p.parse_args(argv)
    shm = Path("/dev/shm")
    sink = Path(args.sink) if args.sink else (shm if shm.is_dir() else Path(tempfile.gettempdir()))
    if args.smoke:
        args.fetches, args.window_objects, args.bulk_mib, args.runs = 20, 64, 1, 1
        args.delays = args.bulk_delays = [5.0]
        if args.net == "auto":
            args.net = "loopback"
        if args.http == "auto":
            args.http = "python"
    s = Settings(
        args.fetches,
        args.window_objects,
        args.bulk_mib,
        args.runs,
        args.delays,
        args.bulk_delays,
        sink,
        Path(args.out),
        args.http,
        not args.no_install,
        Path(args.profile) if args.profile else None,
    )
    if s.http in ("auto", "nginx"):
        # Here, not in run(): from inside the consumer's namespace an install of nginx cannot
        # reach the package registry (a fresh machine always fell back to http.server).
        s.nginx = ensure_nginx(s.install)
    net = Net.create(args.net)
    try:
        net.enter_consumer()
        return trio.run(run, s, net, args)
    finally:
        net.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
