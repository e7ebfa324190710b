"""Interest flood against one ``ccn node`` process: does a concurrent fetch keep its rate?

Run: ``python benchmarks/bench_flood.py [--rate 50000] [--seconds 4] [--runs 3]``.

A node publishes a 32 MiB file. The fetch — a client on the node's Unix socket fetching the file
again and again for ``--seconds`` — is measured alone (unloaded) and while a flooder process
on a TCP face sends ``--rate`` Interests/s for names that do not exist (under the published
prefix, so each one reaches the producer and comes back as a not-found Nack; the flooder reads
and discards them). Runs alternate unloaded / loaded; medians are reported, and the ratio
loaded/unloaded is the result (target ≥ 0.5). Writes ``benchmarks/results/flood.{json,md}``.
Never asserts a timing; every child process is ended by pid.
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
from _common import (
    MB,
    MIB,
    PYTHON,
    command_line,
    machine_info,
    machine_line,
    start_node,
    stop_process,
    write_results,
)

from ccn import codec
from ccn.client import connect
from ccn.framing import frame
from ccn.name import Name
from ccn.packet import Interest, Nack, NackReason

FILE_SIZE = 32 * MIB
PREFIX = "/flood/file"
#: Framed size of one not-found Nack for a flood name (to turn answered bytes into packets).
NACK_BYTES = 4 + len(
    codec.encode(Nack(Interest(Name.parse(PREFIX + "/x10000"), 1, 1000), NackReason.NOT_FOUND))
)


async def flooder(uri: str, rate: int, seconds: float) -> None:
    """Send ``rate`` Interests/s for names that do not exist, paced in 1 ms steps, and read and
    drop whatever comes back. The packets are encoded before the clock starts, so the flooder
    spends its CPU on sending, not on building packets. Prints "ready", then at the end how
    many Interests were sent, the bytes answered and the elapsed time."""
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    base = Name.parse(PREFIX)
    total = int(rate * seconds)
    frames = [frame(codec.encode(Interest(base / f"x{k}", k, 1000))) for k in range(total)]
    stream = await trio.open_tcp_stream(host, int(port))
    answered = 0

    async def reader() -> None:
        nonlocal answered
        while chunk := await stream.receive_some(1 << 20):
            answered += len(chunk)

    print("ready", flush=True)
    sent = 0
    start = trio.current_time()
    async with trio.open_nursery() as n:
        n.start_soon(reader)
        # A node that reads slower than the flood makes send_all wait: that is the node
        # pushing back. The flood stops on time either way.
        with trio.move_on_at(start + seconds):
            while sent < total:
                due = min(total, int((trio.current_time() - start) * rate)) - sent
                if due > 0:
                    await stream.send_all(b"".join(frames[sent : sent + due]))
                    sent += due
                await trio.sleep(0.001)
        n.cancel_scope.cancel()
    elapsed = trio.current_time() - start
    print(f"{sent} {answered} {elapsed:.3f}", flush=True)


async def _fetch_rate(uri: str, seconds: float) -> float:
    """MB/s of repeated whole-file fetches for ``seconds`` (at least one)."""
    done = 0
    start = time.monotonic()
    async with connect(uri) as c:
        while True:
            data = await c.get(PREFIX + "/v1")
            done += len(data)
            if time.monotonic() - start >= seconds:
                break
    return done / (time.monotonic() - start) / MB


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ccn-flood-") as tmp:
        work = Path(tmp)
        node = await start_node("n", work, cs_bytes=64 * MIB)
        try:
            src = work / "file.bin"
            src.write_bytes(os.urandom(FILE_SIZE))
            async with connect(node.unix_uri) as c:
                await c.put(src, PREFIX)
                await c.get(PREFIX)
            unloaded: list[float] = []
            loaded: list[float] = []
            floods: list[dict[str, float]] = []
            for _ in range(args.runs):
                unloaded.append(await _fetch_rate(node.unix_uri, args.seconds))
                cmd = [PYTHON, __file__, "--flooder", node.tcp_uri, str(args.rate)]
                cmd += [str(args.seconds + 1.0)]
                proc = await trio.lowlevel.open_process(cmd, stdout=-1)
                try:
                    assert proc.stdout is not None
                    out = b""
                    with trio.move_on_after(60):
                        while b"ready" not in out:
                            out += await proc.stdout.receive_some(4096)
                    await trio.sleep(0.5)  # let the flood build up
                    loaded.append(await _fetch_rate(node.unix_uri, args.seconds))
                    out = b""
                    with trio.move_on_after(args.seconds + 10):
                        while chunk := await proc.stdout.receive_some(4096):
                            out += chunk
                    sent, answered, elapsed = out.split()[-3:]
                    floods.append(
                        {
                            "sent_per_s": int(sent) / float(elapsed),
                            "answered_bytes_per_s": int(answered) / float(elapsed),
                        }
                    )
                finally:
                    await stop_process(proc)
            async with connect(node.unix_uri) as c:
                status = await c.status()
        finally:
            await node.stop()
    u, lo = statistics.median(unloaded), statistics.median(loaded)
    return {
        "machine": machine_info(),
        "command": command_line(),
        "rate": args.rate,
        "seconds": args.seconds,
        "unloaded_mb_s": unloaded,
        "loaded_mb_s": loaded,
        "median_unloaded_mb_s": u,
        "median_loaded_mb_s": lo,
        "ratio": lo / u if u else 0.0,
        "flood": floods,
        "drops": status.get("drops", {}),
        "limits": status.get("limits", {}),
    }


def markdown(r: dict[str, Any]) -> str:
    flood = statistics.median(f["sent_per_s"] for f in r["flood"])
    answered = statistics.median(f["answered_bytes_per_s"] for f in r["flood"]) / NACK_BYTES
    return "\n".join(
        [
            "# Interest flood vs a concurrent fetch (issue 8)",
            "",
            machine_line(r["machine"]),
            "",
            f"`{r['command']}`",
            "",
            "| | MB/s (median) | runs |",
            "|---|---:|---|",
            f"| fetch alone | {r['median_unloaded_mb_s']:.1f} | "
            + ", ".join(f"{x:.1f}" for x in r["unloaded_mb_s"])
            + " |",
            f"| fetch during the flood | {r['median_loaded_mb_s']:.1f} | "
            + ", ".join(f"{x:.1f}" for x in r["loaded_mb_s"])
            + " |",
            "",
            f"**ratio loaded / unloaded: {r['ratio']:.2f}** (target ≥ 0.50)",
            "",
            f"Flood: {flood:,.0f} Interests/s sent (target {r['rate']:,}), "
            f"{answered:,.0f}/s answered (not-found Nacks). Node drops: {r['drops']}.",
            "",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=int, default=50_000)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--flooder", nargs=3, metavar=("URI", "RATE", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.flooder:
        uri, rate, seconds = args.flooder
        trio.run(flooder, uri, int(rate), float(seconds))
        return
    result = trio.run(run, args)
    md = markdown(result)
    write_results("flood", result, md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
