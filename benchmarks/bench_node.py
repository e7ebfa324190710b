"""A real ``ccn node`` process on loopback, against a plain trio TCP baseline from the same run.

Run: ``python benchmarks/bench_node.py`` (full, several minutes) or ``--quick`` (seconds, tiny
sizes). Cases:

1. cache-hit exchanges/s, window 64, 1 KiB and 8 KiB Data: directories of distinct small random
   files are published (each file is one blob object); the client walks the trees over the
   network, fetches every blob once with digest Interests (fills the CS), then measures digest
   Interests that the node answers from its CS (checked against the node's CS hit counter);
2. a 256 MiB file fetched again from the node's cache with ``ccn.fetch.fetch_version``, MB/s
   (10^6 bytes/s), median of runs;
3. the baseline: a trio TCP server subprocess answering 4-byte-length-prefixed requests with a
   fixed-size payload, window 64, the same sizes, and a bulk transfer in 64 KiB responses; both
   sides read everything available and write in one ``send_all``, like a ccn face;
4. peak RSS of two nodes and of a ``ccn get`` subprocess while a 1 GiB object is fetched through
   them (client -> A -> B, published on B), with the CS budget stated.

Prints a markdown table and writes ``benchmarks/results/node.{json,md}`` (``--quick`` writes
``node-quick.*``). Never asserts a timing. Every child process is ended by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    reset_peak_rss,
    start_node,
    stop_process,
    write_results,
)
from blake3 import blake3

from ccn.client import Client, connect
from ccn.fetch import Stats, fetch_version, resolve
from ccn.name import Name
from ccn.packet import DEFAULT_HOP_LIMIT, DEFAULT_LIFETIME_MS, Data, Interest, Nack
from ccn.store.objects import Kind, Tree, decode
from ccn.testing import free_port, memory_status

WINDOW = 64
BULK_RESPONSE = 64 * 1024
HEADER = 4
NONCE_MASK = (1 << 32) - 1


@dataclass
class Settings:
    files: int
    duration: float
    min_exchanges: int
    max_seconds: float
    runs: int
    bulk_mib: int
    rss_mib: int
    rss_cs_mib: int
    sink: Path


def settings(args: argparse.Namespace) -> Settings:
    shm = Path("/dev/shm")
    sink = Path(args.sink) if args.sink else (shm if shm.is_dir() else Path("/tmp"))
    if args.quick:
        return Settings(200, 0.3, 1000, 3.0, 1, 8, 32, 16, sink)
    return Settings(
        args.files,
        args.duration,
        args.min_exchanges,
        15.0,
        args.runs,
        args.bulk_mib,
        args.rss_mib,
        args.rss_cs_mib,
        sink,
    )


# -- the baseline: a plain trio request/response server in its own process ------------------


async def answer_requests(stream: trio.SocketStream, payload: bytes) -> None:
    """Answer each request ``[u32 len][u32 size][u32 seq]`` with ``[u32 size][size bytes]`` (a
    prefix of ``payload``), every reply to what one read brought in one write."""
    buf = bytearray()
    try:
        while True:
            chunk = await stream.receive_some(1 << 20)
            if not chunk:
                return
            buf += chunk
            pos = 0
            out: list[bytes] = []
            while len(buf) - pos >= HEADER + 8:
                n = int.from_bytes(buf[pos : pos + HEADER], "big")
                size = int.from_bytes(buf[pos + HEADER : pos + HEADER + 4], "big")
                pos += HEADER + n
                out.append(size.to_bytes(HEADER, "big"))
                out.append(payload[:size])
            del buf[:pos]
            if out:
                await stream.send_all(b"".join(out))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return


async def baseline_server(port: int) -> None:
    """The request/response baseline in its own process (see :func:`answer_requests`)."""
    payload = os.urandom(1 << 20)

    async def handle(stream: trio.SocketStream) -> None:
        await answer_requests(stream, payload)

    await trio.serve_tcp(handle, port, host="127.0.0.1")


class BaselineClient:
    """Window-of-requests client for the baseline server; one coalesced write per read."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    @classmethod
    async def open(cls, port: int, timeout: float = 10.0) -> BaselineClient:
        deadline = time.monotonic() + timeout
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await trio.sleep(0.05)
                continue
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)  # as ccn's faces
            return cls(stream)

    @staticmethod
    def request(size: int, seq: int) -> bytes:
        return (8).to_bytes(HEADER, "big") + size.to_bytes(4, "big") + seq.to_bytes(4, "big")

    async def responses(self) -> list[bytes]:
        """Read what is available; return the complete payloads (one copy each, as a client
        that keeps them would make)."""
        chunk = await self.stream.receive_some(1 << 20)
        if not chunk:
            raise EOFError("baseline server closed")
        buf = self.buf
        buf += chunk
        pos, end, out = 0, len(buf), []
        while end - pos >= HEADER:
            n = int.from_bytes(buf[pos : pos + HEADER], "big")
            stop = pos + HEADER + n
            if stop > end:
                break
            out.append(bytes(buf[pos + HEADER : stop]))
            pos = stop
        del buf[:pos]
        return out

    async def windowed(
        self, count: int, size: int, keep: Callable[[bytes], object] | None = None
    ) -> float:
        """``count`` requests for ``size``-byte answers with ``WINDOW`` in flight, each answer
        handed to ``keep``; return the seconds it took."""
        start = time.perf_counter()
        issued = min(WINDOW, count)
        await self.stream.send_all(b"".join(self.request(size, i) for i in range(issued)))
        received = 0
        while received < count:
            got = await self.responses()
            received += len(got)
            if keep is not None:
                for payload in got:
                    keep(payload)
            more = min(len(got), count - issued)
            if more:
                await self.stream.send_all(
                    b"".join(self.request(size, issued + i) for i in range(more))
                )
                issued += more
        return time.perf_counter() - start

    async def bulk(self, total: int, piece: int, dest: Path) -> float:
        """Fetch ``total`` bytes in ``piece``-byte answers, window 64, into ``dest``; return the
        seconds it took. Closes the stream and removes ``dest``."""
        try:
            with open(dest, "wb") as f:
                return await self.windowed(-(-total // piece), piece, f.write)
        finally:
            await self.stream.aclose()
            dest.unlink(missing_ok=True)


async def baseline_exchanges(port: int, size: int, s: Settings) -> tuple[int, float]:
    client = await BaselineClient.open(port)
    seq = itertools.count()
    try:
        first = b"".join(client.request(size, next(seq)) for _ in range(WINDOW))
        await client.stream.send_all(first)
        outstanding = WINDOW
        count = 0
        start = time.perf_counter()
        elapsed = 0.0
        stopping = False
        while outstanding:
            got = await client.responses()
            outstanding -= len(got)
            if stopping:
                continue
            count += len(got)
            elapsed = time.perf_counter() - start
            if (elapsed >= s.duration and count >= s.min_exchanges) or elapsed >= s.max_seconds:
                stopping = True
                continue
            await client.stream.send_all(
                b"".join(client.request(size, next(seq)) for _ in range(len(got)))
            )
            outstanding += len(got)
        return count, elapsed
    finally:
        await client.stream.aclose()


async def baseline_bulk(port: int, total: int, dest: Path) -> float:
    """Bytes/s for ``total`` bytes in 64 KiB responses, window 64, written to ``dest``."""
    n = -(-total // BULK_RESPONSE)
    client = await BaselineClient.open(port)
    return n * BULK_RESPONSE / await client.bulk(total, BULK_RESPONSE, dest)


# -- ccn: cache-hit exchanges ----------------------------------------------------------------


async def blob_ids(client: Client, name: Name) -> tuple[Name, list[bytes]]:
    """Walk the published directory's trees over the network; return its blob ids."""
    versioned, version = await resolve(client, name)
    if version.root_kind != Kind.TREE:
        raise SystemExit(f"{versioned} is not a directory")
    ids: list[bytes] = []
    stack = [version.root]
    nonce = itertools.count(1)
    while stack:
        data = await client.express(Interest(versioned, next(nonce), digest=stack.pop()))
        tree = decode(data.content)
        if type(tree) is not Tree:
            raise SystemExit("expected a tree object")
        for e in tree.entries:
            if e.kind == Kind.TREE:
                stack.append(e.id)
            elif e.kind == Kind.BLOB:
                ids.append(e.id)
    return versioned, ids


@dataclass
class ExchangeResult:
    count: int
    elapsed: float
    nacks: int
    lost: int
    content_bytes: int

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


async def ccn_exchanges(
    client: Client,
    locator: Name,
    ids: list[bytes],
    *,
    duration: float,
    min_count: int,
    max_seconds: float,
    once: bool = False,
) -> ExchangeResult:
    """Keep ``WINDOW`` digest Interests outstanding, cycling over ``ids``; the next Interest is
    sent from the answer callback. ``once``: every id exactly once (the CS fill).

    Written as an application after many small objects would write it: Interests built with
    positional arguments (a compiled constructor parses keywords slowly when called from
    Python) and handed to the client's compiled registry (``client.pending.send``)."""
    nonces = itertools.count(int.from_bytes(os.urandom(4), "big"))
    nids = len(ids)
    send = client.pending.send
    next_id = count = outstanding = nacks = content_bytes = 0
    stopping = False
    drained = trio.Event()

    def issue() -> None:
        nonlocal next_id, outstanding
        i = next_id
        next_id = i + 1
        digest = ids[i % nids]
        nonce = next(nonces) & NONCE_MASK
        send(
            Interest(locator, nonce, DEFAULT_LIFETIME_MS, DEFAULT_HOP_LIMIT, False, False, digest),
            answer,
        )
        outstanding += 1

    def answer(packet: Data | Nack) -> None:
        nonlocal outstanding, count, nacks, content_bytes
        outstanding -= 1
        if stopping:
            if outstanding == 0:
                drained.set()
            return
        count += 1
        if type(packet) is Nack:
            nacks += 1
        else:
            assert type(packet) is Data
            content_bytes += len(packet.content)
        if once and next_id >= nids:
            if outstanding == 0:
                drained.set()
            return
        issue()

    start = time.perf_counter()
    for _ in range(min(WINDOW, nids) if once else WINDOW):
        issue()
    elapsed = 0.0
    while not drained.is_set():
        with trio.move_on_after(0.02):
            await drained.wait()
        elapsed = time.perf_counter() - start
        if once:
            if elapsed >= max_seconds:
                break
            continue
        if (elapsed >= duration and count >= min_count) or elapsed >= max_seconds:
            break
    elapsed = time.perf_counter() - start
    stopping = True  # answers after this are not counted
    if outstanding:
        with trio.move_on_after(5):
            await drained.wait()
    return ExchangeResult(count, elapsed, nacks, outstanding, content_bytes)


def make_small_files(root: Path, count: int, size: int) -> None:
    per_dir = 1000  # a tree holds at most 1600 entries
    for i in range(count):
        d = root / f"d{i // per_dir:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(os.urandom(size))


def write_random(path: Path, size: int) -> bytes:
    hasher = blake3()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(left, 4 * MIB))
            f.write(piece)
            hasher.update(piece)
            left -= len(piece)
    return hasher.digest()


async def cs_hits(client: Client) -> int:
    status = await client.status()
    hits: int = status["cs"]["hits"]
    return hits


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    ccn: float | None
    baseline: float | None
    unit: str
    target: str
    met: bool | None
    detail: dict[str, Any]

    @property
    def ratio(self) -> float | None:
        if self.ccn is None or not self.baseline:
            return None
        return self.ccn / self.baseline


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def bench_exchanges(
    node: NodeProcess, workdir: Path, base_port: int, s: Settings
) -> list[Row]:
    rows: list[Row] = []
    for size, target in ((1024, 100_000), (8192, 60_000)):
        label = f"{size // 1024}k"
        src = workdir / f"small{label}"
        make_small_files(src, s.files, size)
        async with connect(node.tcp_uri) as client:
            reply = await client.publish(src, f"/bench/small{label}")
            locator, ids = await blob_ids(client, Name.parse(reply["name"]))
            _say(f"  {size} B: {len(ids)} blobs published as {locator}; filling the CS")
            fill = await ccn_exchanges(
                client, locator, ids, duration=0, min_count=0, max_seconds=120, once=True
            )
            runs: list[ExchangeResult] = []
            hit_deltas: list[int] = []
            for _ in range(s.runs):
                before = await cs_hits(client)
                r = await ccn_exchanges(
                    client,
                    locator,
                    ids,
                    duration=s.duration,
                    min_count=s.min_exchanges,
                    max_seconds=s.max_seconds,
                )
                hit_deltas.append(await cs_hits(client) - before)
                runs.append(r)
                _say(f"  ccn {size} B: {r.rate:,.0f} exchanges/s ({r.count} in {r.elapsed:.2f} s)")
        uds: list[ExchangeResult] = []
        async with connect(node.unix_uri) as client:
            for _ in range(s.runs):
                uds.append(
                    await ccn_exchanges(
                        client,
                        locator,
                        ids,
                        duration=s.duration,
                        min_count=s.min_exchanges,
                        max_seconds=s.max_seconds,
                    )
                )
        base: list[float] = []
        for _ in range(s.runs):
            count, elapsed = await baseline_exchanges(base_port, size, s)
            base.append(count / elapsed)
            _say(f"  baseline {size} B: {base[-1]:,.0f} exchanges/s")
        med = statistics.median(r.rate for r in runs)
        rows.append(
            Row(
                f"cache-hit exchanges/s, {size // 1024} KiB Data, window {WINDOW}, tcp",
                med,
                statistics.median(base),
                "exchanges/s",
                f">= {target:,}",
                med >= target,
                {
                    "data_size": size,
                    "objects": len(ids),
                    "runs": [round(r.rate) for r in runs],
                    "exchanges": [r.count for r in runs],
                    "seconds": [round(r.elapsed, 3) for r in runs],
                    "cs_hits_counted_by_node": hit_deltas,
                    "nacks": sum(r.nacks for r in runs),
                    "lost": sum(r.lost for r in runs),
                    "baseline_runs": [round(b) for b in base],
                    "cs_fill_from_store_per_s": round(fill.rate),
                },
            )
        )
        rows.append(
            Row(
                "  same over the unix socket (info)",
                statistics.median(r.rate for r in uds),
                statistics.median(base),
                "exchanges/s",
                "",
                None,
                {"runs": [round(r.rate) for r in uds]},
            )
        )
        rows.append(
            Row(
                f"  CS fill from the store, {size // 1024} KiB (info)",
                fill.rate,
                None,
                "exchanges/s",
                "",
                None,
                {"exchanges": fill.count, "seconds": round(fill.elapsed, 3)},
            )
        )
    return rows


async def timed_fetch(client: Client, name: Name, dest: Path) -> tuple[float, Stats, int]:
    """Fetch ``name`` into ``dest``: the seconds it took, the fetch's stats and the size of the
    file, which is then removed."""
    t0 = time.perf_counter()
    _name, _version, stats = await fetch_version(client, name, dest)
    seconds = time.perf_counter() - t0
    got = dest.stat().st_size
    dest.unlink()
    return seconds, stats, got


async def bench_bulk(node: NodeProcess, workdir: Path, base_port: int, s: Settings) -> list[Row]:
    size = s.bulk_mib * MIB
    src = workdir / "bulk.bin"
    want = write_random(src, size)
    out = Path(tempfile.mkdtemp(prefix="ccn-bench-out-", dir=s.sink))
    try:
        async with connect(node.tcp_uri) as client:
            reply = await client.publish(src, "/bench/file")
            name = Name.parse(reply["name"])
            src.unlink()
            dest = out / "bulk.out"
            seconds, _st, _got = await timed_fetch(client, name, dest)
            cold = size / seconds
            _say(f"  ccn {s.bulk_mib} MiB cold (from the store): {cold / MB:,.0f} MB/s")
            rates: list[float] = []
            hit_deltas: list[int] = []
            stats_objects = 0
            for _ in range(s.runs):
                before = await cs_hits(client)
                seconds, st, got = await timed_fetch(client, name, dest)
                rates.append(size / seconds)
                hit_deltas.append(await cs_hits(client) - before)
                stats_objects = st.objects
                _say(f"  ccn from the CS: {rates[-1] / MB:,.0f} MB/s, size ok {got == size}")
        uds: list[float] = []
        async with connect(node.unix_uri) as client:
            for _ in range(s.runs):
                seconds, _st, _got = await timed_fetch(client, name, dest)
                uds.append(size / seconds)
                _say(f"  ccn from the CS over the unix socket: {uds[-1] / MB:,.0f} MB/s")
        base: list[float] = []
        for _ in range(s.runs):
            base.append(await baseline_bulk(base_port, size, out / "base.out"))
            _say(f"  baseline {s.bulk_mib} MiB: {base[-1] / MB:,.0f} MB/s")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    med = statistics.median(rates)
    return [
        Row(
            f"{s.bulk_mib} MiB file from the node's cache (fetch_version, tcp), MB/s",
            med / MB,
            statistics.median(base) / MB,
            "MB/s",
            ">= 800",
            med / MB >= 800,
            {
                "bytes": size,
                "content_hash": want.hex(),
                "objects_per_fetch": stats_objects,
                "runs_mb_s": [round(r / MB, 1) for r in rates],
                "cs_hits_counted_by_node": hit_deltas,
                "baseline_runs_mb_s": [round(b / MB, 1) for b in base],
                "cold_fetch_mb_s": round(cold / MB, 1),
                "sink": str(s.sink),
            },
        ),
        Row(
            "  same over the unix socket (info)",
            statistics.median(uds) / MB,
            statistics.median(base) / MB,
            "MB/s",
            "",
            None,
            {"runs_mb_s": [round(r / MB, 1) for r in uds]},
        ),
        Row(
            "  same, first fetch from the store (info)",
            cold / MB,
            statistics.median(base) / MB,
            "MB/s",
            "",
            None,
            {},
        ),
    ]


async def bench_rss(workdir: Path, s: Settings) -> list[Row]:
    cs = s.rss_cs_mib * MIB
    nodes: list[NodeProcess] = []
    out = Path(tempfile.mkdtemp(prefix="ccn-bench-rss-", dir=s.sink))
    try:
        b = await start_node("B", workdir, cs_bytes=cs)
        nodes.append(b)
        a = await start_node("A", workdir, cs_bytes=cs, routes=[f"/bench={b.tcp_uri}"])
        nodes.append(a)
        idle = {n.label: memory_status(n.pid).get("VmRSS", 0) for n in nodes}
        size = s.rss_mib * MIB
        src = workdir / "big.bin"
        want = write_random(src, size)
        async with connect(b.unix_uri) as client:
            reply = await client.publish(src, "/bench/big")
        src.unlink()
        after_publish = {n.label: memory_status(n.pid).get("VmHWM", 0) for n in nodes}
        reset = all(reset_peak_rss(n.pid) for n in nodes)
        dest = out / "big.out"
        cmd = [PYTHON, "-m", "ccn", "--node", a.unix_uri, "get", reply["name"], "-o", str(dest)]
        _say(f"  {' '.join(cmd)}")
        sampled = {"A": 0, "B": 0, "get": 0}
        t0 = time.perf_counter()
        with open(workdir / "get.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        rusage = None
        status = -1
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                for n in nodes:
                    sampled[n.label] = max(sampled[n.label], memory_status(n.pid).get("VmRSS", 0))
                sampled["get"] = max(sampled["get"], memory_status(proc.pid).get("VmRSS", 0))
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    rusage = ru
                    break
                await trio.sleep(0.02)
        finally:
            if rusage is None:
                proc.kill()
                os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status) if rusage is not None else None
        ok = code == 0 and dest.exists() and dest.stat().st_size == size
        if ok:
            h = blake3()
            with open(dest, "rb") as f:
                for piece in iter(lambda: f.read(4 * MIB), b""):
                    h.update(piece)
            ok = h.digest() == want
        peak = {n.label: memory_status(n.pid).get("VmHWM", 0) for n in nodes}
        get_peak = rusage.ru_maxrss * 1024 if rusage is not None else sampled["get"]
        rate = size / elapsed / MB
        _say(f"  {s.rss_mib} MiB via A -> B: exit {code}, identical {ok}, {rate:,.0f} MB/s")
    finally:
        for n in nodes:
            await n.stop()
        shutil.rmtree(out, ignore_errors=True)
    limit = 150 * MB
    rows: list[Row] = []
    for label in ("A", "B"):
        beyond = peak[label] - cs
        rows.append(
            Row(
                f"peak RSS node {label} during a {s.rss_mib} MiB fetch via A -> B, MB above the "
                f"{s.rss_cs_mib} MiB CS budget",
                beyond / MB,
                idle[label] / MB,
                "MB",
                "<= 150",
                beyond <= limit,
                {
                    "vmhwm_bytes": peak[label],
                    "vmrss_sampled_max_bytes": sampled[label],
                    "idle_rss_bytes": idle[label],
                    "vmhwm_after_publish_bytes": after_publish[label],
                    "hwm_reset_before_fetch": reset,
                    "cs_budget_bytes": cs,
                },
            )
        )
    rows.append(
        Row(
            f"peak RSS of `ccn get` ({s.rss_mib} MiB via A -> B), MB",
            get_peak / MB,
            None,
            "MB",
            "<= 150",
            get_peak <= limit,
            {
                "ru_maxrss_bytes": get_peak,
                "vmrss_sampled_max_bytes": sampled["get"],
                "exit_code": code,
                "identical": ok,
                "seconds": round(elapsed, 3),
                "mb_s": round(size / elapsed / MB, 1),
                "command": " ".join(cmd),
            },
        )
    )
    rows.append(
        Row(
            f"  {s.rss_mib} MiB `ccn get` through A -> B, cold (info)",
            size / elapsed / MB,
            None,
            "MB/s",
            "",
            None,
            {},
        )
    )
    return rows


# -- output ----------------------------------------------------------------------------------


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "exchanges/s":
        return f"{v:,.0f}"
    return f"{v:,.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| case | ccn | baseline | ratio | target | met? |",
        "|---|---:|---:|---:|---|:-:|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None or r.unit == "MB" else f"{r.ratio:.2f}"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.case} | {_fmt(r.ccn, r.unit)} | {_fmt(r.baseline, r.unit)} | {ratio} "
            f"| {r.target} | {met} |"
        )
    return "\n".join(lines)


NOTES = """\
Notes: MB = 10^6 bytes. Baseline = a plain trio TCP request/response pair of processes (4-byte
length-prefixed requests, fixed-size responses, window 64, coalesced reads and writes), measured
in the same run. For the RSS rows the baseline column is the node's RSS right after start (idle),
and the ccn column is peak RSS (VmHWM, reset after publishing) minus the CS budget; the `ccn get`
peak is its ru_maxrss. Exchanges are digest Interests answered from the node's CS (the node's own
hit counter is in the JSON). Medians over the runs; timings on this machine are noisy."""


async def run(args: argparse.Namespace) -> int:
    s = settings(args)
    workdir = Path(tempfile.mkdtemp(prefix="ccn-bench-node-", dir=args.workdir))
    rows: list[Row] = []
    node: NodeProcess | None = None
    base: trio.Process | None = None
    cs_single = max(64 * MIB, 2 * s.bulk_mib * MIB)
    node_hwm = 0
    try:
        port = free_port()
        base = await trio.lowlevel.open_process(
            [PYTHON, str(Path(__file__).resolve()), "--baseline-server", str(port)]
        )
        _say(f"bench_node: workdir {workdir}; single node with cs_bytes={cs_single}")
        node = await start_node("N", workdir, cs_bytes=cs_single)
        if "exchanges" in args.cases:
            rows += await bench_exchanges(node, workdir, port, s)
        if "bulk" in args.cases:
            rows += await bench_bulk(node, workdir, port, s)
        node_hwm = memory_status(node.pid).get("VmHWM", 0)
        await node.stop()
        node = None
        if "rss" in args.cases:
            rows += await bench_rss(workdir, s)
    finally:
        if node is not None:
            await node.stop()
        if base is not None:
            await stop_process(base)
        shutil.rmtree(workdir, ignore_errors=True)

    machine = machine_info()
    command = command_line()
    text = table(rows)
    print(text)
    print()
    print(NOTES)
    result = {
        "command": command,
        "machine": machine,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(s).items()},
        "single_node_cs_bytes": cs_single,
        "single_node_vmhwm_bytes": node_hwm,
        "window": WINDOW,
        "results": [
            {
                "case": r.case.strip(),
                "ccn": r.ccn,
                "baseline": r.baseline,
                "ratio": r.ratio,
                "unit": r.unit,
                "target": r.target,
                "met": r.met,
                **r.detail,
            }
            for r in rows
        ],
    }
    if not args.no_write:
        stem = "node-quick" if args.quick else "node"
        md = (
            f"# Node benchmark (one `ccn node` process on loopback)\n\n"
            f"Command: `{command}`\n\nMachine: {machine_line(machine)}\n\n"
            f"Single node: cs_bytes = {cs_single}; peak RSS {node_hwm / MB:.0f} MB.\n\n"
            f"{text}\n\n{NOTES}\n"
        )
        js, mdp = write_results(stem, result, md)
        _say(f"wrote {js} and {mdp}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run, tiny sizes")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=2.0, help="seconds per exchange run (min)")
    p.add_argument("--min-exchanges", type=int, default=100_000)
    p.add_argument("--files", type=int, default=4000, help="small files per size")
    p.add_argument("--bulk-mib", type=int, default=256)
    p.add_argument("--rss-mib", type=int, default=1024)
    p.add_argument("--rss-cs-mib", type=int, default=64, help="CS budget of nodes A and B")
    p.add_argument(
        "--cases",
        nargs="+",
        default=["exchanges", "bulk", "rss"],
        choices=["exchanges", "bulk", "rss"],
    )
    p.add_argument("--workdir", default=None, help="parent of the scratch dir (default: $TMPDIR)")
    p.add_argument("--sink", default=None, help="where fetched files go (default: /dev/shm)")
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    p.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.baseline_server:
        with contextlib.suppress(KeyboardInterrupt):
            trio.run(baseline_server, args.baseline_server)
        return 0
    return trio.run(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
