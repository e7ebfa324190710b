"""Helpers to build real topologies in tests, examples, the demo and benchmarks.

* :func:`start_node` starts a ``ccn node`` child process and waits until it answers;
  :meth:`NodeProcess.stop` ends it by pid (only processes we started).
* :func:`node_in_process` runs a :class:`~ccn.node.Node` inside the current trio run, listening on
  a Unix socket in a temporary directory, for fast tests with real sockets.
* :func:`leave_command` sends a management command and goes away while it runs.
* :func:`no_ipv6_loopback` says why IPv6 tests on ``[::1]`` must be skipped here, if they must.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ccn.client import connect
from ccn.config import NodeConfig
from ccn.errors import CcnError, ConnectError
from ccn.faces.base import Deliver, Face
from ccn.name import Name
from ccn.packet import Interest, Packet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def no_ipv6_loopback() -> str | None:
    """Why this machine has no IPv6 loopback (``[::1]``) to test on, or None if it has."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        return f"no IPv6 loopback address ::1 here: {e.strerror or e}"
    return None


def flip_byte(path: str | Path, offset: int) -> None:
    """Damage the byte at ``offset`` of a file in place (of a read-only file too; its mode is
    kept): what a bad disk does to a stored object."""
    file = Path(path)
    mode = file.stat().st_mode
    file.chmod(mode | 0o200)
    try:
        with open(file, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0xFF]))
    finally:
        file.chmod(mode)


def damage_object(where: tuple[str, int, int]) -> None:
    """Flip the middle byte of the stored object at ``where`` (``locate``'s path, offset and
    length)."""
    path, offset, length = where
    flip_byte(path, offset + length // 2)


def store_with_a_newer_index(root: Path) -> Path:
    """A store at ``root`` with one pack whose index says it was written in a newer format
    (format 2); returns the index's path."""
    from ccn.store import DiskObjectStore
    from ccn.store.files import import_bytes

    with DiskObjectStore(root, fsync=False) as s:
        import_bytes(s, os.urandom(300_000))
    [idx] = (root / "packs").glob("*.idx")
    raw = bytearray(idx.read_bytes())
    raw[7] = 2
    idx.write_bytes(bytes(raw))
    return idx


class RecordingFace(Face):
    """A face that keeps what is sent on it; the test plays the node."""

    def __init__(self, *, local: bool = True) -> None:
        super().__init__("test", local=local)
        self.sent: list[Packet] = []

    def send(self, packet: Packet) -> None:
        self.sent.append(packet)

    async def run(self, deliver: Deliver) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


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
    label: str,
    workdir: Path,
    listen: list[str],
    routes: list[str],
    uri: str,
    *,
    discovery: bool = False,
    config: Path | None = None,
) -> NodeProcess:
    """Start a node process; LAN discovery stays off unless asked for, so nodes of one test
    topology on this host only know the routes they are given. ``config``: a TOML file of
    further settings (the flags win)."""
    cmd = [sys.executable, "-m", "ccn", "node", "--store", str(workdir / label / "store")]
    if config is not None:
        cmd += ["--config", str(config)]
    if not discovery:
        cmd.append("--no-discovery")
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


@asynccontextmanager
async def node_in_process(
    workdir: Path,
    label: str = "node",
    *,
    tcp: bool = False,
    tcp_port: int = 0,
    udp: bool = False,
    udp_port: int = 0,
    routes: list[tuple[Name, str]] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[Any, str]]:
    """Run a node in this trio run; yield ``(node, unix uri)``. Extra settings go to the config.
    ``tcp``, ``udp``: listen on TCP, UDP too (on ``tcp_port``, ``udp_port``; 0: any)."""
    from ccn.node import Node

    listen = [f"unix://{workdir / label}.sock"]
    if tcp:
        listen.append(f"tcp://127.0.0.1:{tcp_port}")
    if udp:
        listen.append(f"udp://127.0.0.1:{udp_port}")
    settings.setdefault("discovery", False)  # LAN discovery only when a test asks for it
    config = NodeConfig(store=workdir / label, listen=listen, routes=routes or [], **settings)
    node = Node(config)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(node.run)
        yield node, str(bound[0])
        nursery.cancel_scope.cancel()


async def stop_all(nodes: list[NodeProcess], timeout: float = 3.0) -> None:
    """Terminate our node processes (SIGTERM), then kill any that outlive ``timeout``."""
    for n in nodes:
        n.stop()
    for n in nodes:
        with trio.move_on_after(timeout):
            await n.process.wait()
        if n.process.returncode is None:
            n.process.kill()
            await n.process.wait()


def memory_status(pid: int) -> dict[str, int]:
    """The ``Vm*`` lines of ``/proc/<pid>/status`` (VmRSS, VmHWM, ...) in bytes; empty if the
    process is gone."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("Vm") and line.endswith("kB"):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) * 1024
    return out


def edit_one_percent(data: bytes, seed: int) -> bytes:
    """``data`` with 1 % changed at 8 random places: a span overwritten, plus a small insertion
    each (the edit the version benchmarks and tests publish as v2)."""
    rng = random.Random(seed)
    out = bytearray(data)
    span = len(data) // 800
    for pos in sorted(rng.sample(range(len(data) - span), 8), reverse=True):
        out[pos : pos + span] = rng.randbytes(span + 64)
    return bytes(out)


async def leave_command(
    uri: str, node: Any, interest: Interest, started: threading.Event, stopped: threading.Event
) -> None:
    """Send the command ``interest`` to the in-process ``node`` at ``uri``, wait until its job
    sets ``started``, close the connection, and wait until the job sets ``stopped`` (it saw its
    stop flag); check that the command's PIT entry went with the client."""
    async with connect(uri) as client:
        client.send(interest, lambda _answer: None)
        assert await trio.to_thread.run_sync(started.wait, 10)
    # the client's face closed: its Interest's PIT entry went, and with it the command
    assert await trio.to_thread.run_sync(stopped.wait, 10)
    assert node.forwarder.pit.find(interest) is None


class CrowdedNode:
    """A ``ccn node`` process on a Unix socket alone (no discovery) started under an open-file
    limit of (``soft``, ``hard``), and ``clients`` plain connections to it held open (those the
    node cannot accept wait in the backlog). ``with`` it: on the way out the connections close,
    the node is stopped (SIGTERM), and :attr:`err` is what it said on stderr."""

    def __init__(self, tmp_path: Path, soft: int, hard: int, clients: int) -> None:
        import resource

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        self.sock = tmp_path / "n.sock"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "ccn", "node", "--no-discovery"),
                *("--store", str(tmp_path / "store"), "--listen", f"unix://{self.sock}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        self.clients = clients
        self.held: list[socket.socket] = []
        self.err = ""

    def __enter__(self) -> CrowdedNode:
        try:
            assert self.process.stdout is not None
            assert "listening on" in self.process.stdout.readline()
            for _ in range(self.clients):
                s = socket.socket(socket.AF_UNIX)
                self.held.append(s)
                s.settimeout(5)
                s.connect(str(self.sock))
        except BaseException:
            self.__exit__()
            raise
        return self

    def release(self) -> None:
        """Close the held connections."""
        for s in self.held:
            s.close()

    def status(self) -> subprocess.CompletedProcess[str]:
        """``ccn status`` against the node, as a separate process."""
        return subprocess.run(
            [sys.executable, "-m", "ccn", "--node", f"unix://{self.sock}", "status"],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def __exit__(self, *_exc: object) -> None:
        self.release()
        self.process.terminate()
        _out, self.err = self.process.communicate(timeout=10)
