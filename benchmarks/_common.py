"""Helpers shared by the benchmarks: machine info, result files, node processes, memory readings.

Nothing here asserts a timing. Processes started here are ended here, by pid (terminate, wait a
bounded time, then kill); nothing else is ever signalled.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ccn.client import connect
from ccn.errors import CcnError, ConnectError
from ccn.testing import free_port

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000
MIB = 1 << 20
PYTHON = sys.executable


# -- machine and results ---------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _read_first_line(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine_info() -> dict[str, Any]:
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": mem_total,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "tcp_congestion_control": _read_first_line("/proc/sys/net/ipv4/tcp_congestion_control"),
        "git_commit": _git_commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [PYTHON, *sys.argv])


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / (1 << 30):.0f} GiB RAM, "
        f"{m['implementation']} {m['python']}, {m['platform']}, "
        f"tcp cc {m['tcp_congestion_control']}, commit {m['git_commit']}, {m['date']}"
    )


def write_results(stem: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    js = RESULTS / f"{stem}.json"
    md = RESULTS / f"{stem}.md"
    js.write_text(json.dumps(data, indent=2) + "\n")
    md.write_text(markdown)
    return js, md


# -- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM of our own child ``pid`` to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def stop_process(proc: trio.Process, grace: float = 5.0) -> None:
    """Terminate our child by pid, wait up to ``grace`` seconds, then kill it."""
    if proc.returncode is None:
        proc.terminate()
    with trio.move_on_after(grace):
        await proc.wait()
    if proc.returncode is None:
        proc.kill()
        with trio.move_on_after(grace):
            await proc.wait()


@dataclass
class NodeProcess:
    """A ``ccn node`` child process started (and ended, by pid) by a benchmark."""

    label: str
    unix_uri: str
    tcp_uri: str
    process: trio.Process
    log: Path
    cs_bytes: int
    command: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        await stop_process(self.process)


async def start_node(
    label: str,
    workdir: Path,
    *,
    cs_bytes: int,
    routes: list[str] | None = None,
    cs_max_entries: int = 65536,
    timeout: float = 20.0,
    listen: list[str] | None = None,
) -> NodeProcess:
    """Start ``python -m ccn node`` with a Unix and a TCP listener (and ``listen``); return
    once it answers."""
    home = workdir / label
    home.mkdir(parents=True, exist_ok=True)
    config = home / "node.toml"
    config.write_text(f"cs_bytes = {cs_bytes}\ncs_max_entries = {cs_max_entries}\n")
    sock = home / "n.sock"
    port = free_port()
    unix_uri, tcp_uri = f"unix://{sock}", f"tcp://127.0.0.1:{port}"
    cmd = [
        PYTHON,
        "-m",
        "ccn",
        "node",
        "--no-discovery",
        "--config",
        str(config),
        "--store",
        str(home / "store"),
        "--listen",
        unix_uri,
        "--listen",
        tcp_uri,
    ]
    for uri in listen or []:
        cmd += ["--listen", uri]
    for r in routes or []:
        cmd += ["--route", r]
    log = workdir / f"{label}.log"
    with open(log, "wb") as out:
        proc = await trio.lowlevel.open_process(cmd, stdout=out, stderr=subprocess.STDOUT)
    node = NodeProcess(label, unix_uri, tcp_uri, proc, log, cs_bytes, cmd)
    try:
        await wait_ready(node, timeout)
    except BaseException:
        await node.stop()
        raise
    return node


async def wait_ready(node: NodeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.process.returncode is None:
        try:
            async with connect(node.unix_uri) as client:
                await client.status()
                return
        except (ConnectError, OSError):
            await trio.sleep(0.05)
    text = node.log.read_text(errors="replace").strip() if node.log.exists() else ""
    raise CcnError(f"node {node.label} did not start: {text.splitlines()[-1] if text else '?'}")
