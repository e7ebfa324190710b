"""What the link emulator costs: one TCP stream through ``ccn.relay``, against the same stream
sent directly, in the same run.

The cache-hit study (``cache_study.py``) passes ccn's origin link and the host-to-host baselines
through this relay, so its speed bounds the baselines: a relay slower than the kernel would
flatter ccn. The sender uses ``sendfile`` from a file in /dev/shm and the receiver ``recv_into``
one buffer, so neither end is the bottleneck. Cases: direct, relay with 0 ms and 20 ms added.
Reports MB/s (median of ``--runs``) and the relay process's CPU per MB.

    python benchmarks/bench_relay.py [--mib 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    MB,
    PYTHON,
    command_line,
    cpu_seconds,
    machine_info,
    machine_line,
    write_results,
)

from ccn.testing import free_port

DELAYS_MS = (0.0, 20.0)


def stream_once(src: Path, size: int, via: tuple[str, int] | None, sink: socket.socket) -> float:
    """Send ``size`` bytes of ``src`` to ``sink`` (a listening socket), through ``via`` if
    given; return the seconds until the receiver has them all."""
    got = 0

    def receive() -> None:
        nonlocal got
        conn, _ = sink.accept()
        with conn:
            view = memoryview(bytearray(1 << 20))
            while got < size:
                n = conn.recv_into(view)
                if not n:
                    break
                got += n

    receiver = threading.Thread(target=receive)
    receiver.start()
    target = via or sink.getsockname()
    start = time.perf_counter()
    with socket.create_connection(target) as s, open(src, "rb") as f:
        sent = 0
        while sent < size:
            sent += os.sendfile(s.fileno(), f.fileno(), sent, size - sent)
        receiver.join()
    elapsed = time.perf_counter() - start
    if got != size:
        raise RuntimeError(f"received {got} of {size} bytes")
    return elapsed


def run(mib: int, runs: int) -> list[dict[str, Any]]:
    size = mib << 20
    src = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"bench-relay-{os.getpid()}"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for _ in range(mib):
            f.write(block)
    rows: list[dict[str, Any]] = []
    try:
        with socket.socket() as sink:
            sink.bind(("127.0.0.1", 0))
            sink.listen()
            times = [stream_once(src, size, None, sink) for _ in range(runs)]
            rows.append({"case": "direct (no relay)", "mb_per_s": _rates(size, times)})
            port = sink.getsockname()[1]
            for delay in DELAYS_MS:
                rport = free_port()
                code = (
                    "import trio; from ccn.relay import run_relay; "
                    f"trio.run(lambda: run_relay(('127.0.0.1', {port}), {delay / 1000}, "
                    f"port={rport}))"
                )
                relay = subprocess.Popen([PYTHON, "-c", code])
                try:
                    _wait_listening(rport)
                    # The probe made the relay dial the sink: take that connection away.
                    sink.settimeout(10)
                    sink.accept()[0].close()
                    sink.settimeout(None)
                    cpu0 = cpu_seconds(relay.pid)
                    times = [
                        stream_once(src, size, ("127.0.0.1", rport), sink) for _ in range(runs)
                    ]
                    cpu = cpu_seconds(relay.pid) - cpu0
                finally:
                    relay.kill()
                    relay.wait()
                rows.append(
                    {
                        "case": f"through ccn.relay, +{delay:g} ms each way",
                        "mb_per_s": _rates(size, times),
                        "relay_cpu_ms_per_mb": round(cpu * 1000 / (runs * size / MB), 3),
                    }
                )
    finally:
        src.unlink()
    return rows


def _rates(size: int, times: list[float]) -> list[float]:
    return [round(size / t / MB, 1) for t in times]


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | MB/s (median) | runs | relay CPU, ms per MB |",
        "|---|---:|---|---:|",
    ]
    for r in rows:
        cpu = r.get("relay_cpu_ms_per_mb")
        lines.append(
            f"| {r['case']} | {statistics.median(r['mb_per_s']):,.0f} | "
            f"{', '.join(f'{x:,.0f}' for x in r['mb_per_s'])} | "
            f"{'—' if cpu is None else f'{cpu:.2f}'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--mib", type=int, default=512, help="size of each stream")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = p.parse_args(argv)
    rows = run(args.mib, args.runs)
    machine = machine_info()
    text = table(rows)
    print(text)
    if not args.no_write:
        md = (
            "# Relay benchmark (the cache study's link emulator)\n\n"
            f"Command: `{command_line()}`\n\nMachine: {machine_line(machine)}\n\n{text}\n\n"
            "One TCP stream on loopback: sendfile sender, recv_into receiver; the relay is "
            "`ccn.relay` in its own process. MB = 10^6 bytes.\n"
        )
        data = {"command": command_line(), "machine": machine, "mib": args.mib, "rows": rows}
        js, mdp = write_results("relay", data, md)
        print(f"wrote {js} and {mdp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
