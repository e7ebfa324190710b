"""Network-namespace labs: hosts, LAN segments (bridges) and links on this machine, for the
multi-host tests and the LAN benchmarks. Needs root and iproute2 (:func:`unavailable` says why
not).

Every namespace a :class:`Lab` makes is named ``ccnt-<pid>-<n>-<name>``; :meth:`Lab.cleanup`
deletes exactly those, and :func:`lab` calls it (after ending the node processes it started, by
pid) whether the body succeeded or not. Unix sockets are not separated by namespaces, so a client
in the parent namespace reaches every node through its socket.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ccn.testing import NodeProcess, stop_all, wait_ready

_runs = itertools.count()


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or ``None`` if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"ccnt-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Lab:
    """Hosts, segments and links in namespaces this test made (and only those are removed)."""

    def __init__(self, workdir: Path) -> None:
        self.prefix = f"ccnt-{os.getpid()}-{next(_runs)}"
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.switch = self._netns("sw")
        self.segments: dict[str, int] = {}
        self.links = 0
        #: (host, segment) -> interface name inside the host
        self.ifaces: dict[tuple[str, str], str] = {}
        self.nodes: dict[str, NodeProcess] = {}

    def _netns(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def host(self, name: str) -> str:
        return self._netns(name)

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def segment(self, name: str) -> None:
        self.segments[name] = len(self.segments) + 1
        br = f"br{self.segments[name]}"
        ip("-n", self.switch, "link", "add", br, "type", "bridge", "mcast_snooping", "0")
        ip("-n", self.switch, "link", "set", br, "up")

    def link(self, host: str, segment: str, *, ipv4: bool = True) -> None:
        """Join ``host`` to ``segment``: IPv4 address ``10.<segment>.0.<link>/24`` and the
        kernel's own IPv6 link-local one; with ``ipv4=False``, only IPv6 link-local address
        ``fe80::<link>`` (:meth:`link_local`), usable at once (no duplicate address detection)."""
        self.links += 1
        n, seg = self.links, self.segments[segment]
        outer, inner = f"s{n}", f"e{n}"
        ip("-n", self.switch, "link", "add", outer, "type", "veth", "peer", "name", inner,
           "netns", self.ns(host))  # fmt: skip
        ip("-n", self.switch, "link", "set", outer, "master", f"br{seg}", "up")
        if ipv4:
            ip("-n", self.ns(host), "addr", "add", f"10.{seg}.0.{n}/24", "dev", inner)
        else:
            ip("-n", self.ns(host), "link", "set", inner, "addrgenmode", "none")
            ip("-n", self.ns(host), "-6", "addr", "add", f"fe80::{n:x}/64", "dev", inner, "nodad")
        ip("-n", self.ns(host), "link", "set", inner, "up")
        self.ifaces[(host, segment)] = inner

    def link_local(self, host: str, segment: str) -> str:
        """The IPv6 link-local address of a link made with ``ipv4=False`` (without a zone:
        that is the interface of whoever reaches it)."""
        return f"fe80::{int(self.ifaces[(host, segment)][1:]):x}"

    def link_down(self, host: str, segment: str) -> None:
        ip("-n", self.ns(host), "link", "set", self.ifaces[(host, segment)], "down")

    def uri(self, host: str) -> str:
        return f"unix://{self.workdir}/{host}.sock"

    async def start(self, *hosts: str, args: tuple[str, ...] = ()) -> None:
        """Start one ``ccn node`` per host (Unix socket, UDP and TCP on port 6464, discovery
        on by default; ``args`` are added) and wait until each answers."""
        procs = []
        for h in hosts:
            cmd = ["ip", "netns", "exec", self.ns(h), sys.executable, "-m", "ccn", "node",
                   "--store", str(self.workdir / h / "store"), "--listen", self.uri(h),
                   "--listen", "udp://0.0.0.0:6464", "--listen", "tcp://0.0.0.0:6464",
                   *args]  # fmt: skip
            with open(self.workdir / f"{h}.log", "wb") as log:
                proc = await trio.lowlevel.open_process(cmd, stdout=log, stderr=subprocess.STDOUT)
            self.nodes[h] = NodeProcess(h, self.uri(h), proc)
            procs.append(self.nodes[h])
        async with trio.open_nursery() as nursery:
            for node in procs:
                nursery.start_soon(wait_ready, node, self.workdir)

    def cleanup(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()

    async def stop(self, host: str) -> None:
        node = self.nodes.pop(host)
        await stop_all([node])


@asynccontextmanager
async def lab() -> AsyncIterator[Lab]:
    """A lab in a short temporary directory (Unix socket paths are limited to 108 bytes);
    everything it made is removed on the way out."""
    workdir = Path(f"/tmp/ccnt-{os.getpid()}-{next(_runs)}")
    workdir.mkdir()
    the_lab = Lab(workdir)
    try:
        yield the_lab
    finally:
        with trio.CancelScope(shield=True):
            await stop_all(list(the_lab.nodes.values()))
        the_lab.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
