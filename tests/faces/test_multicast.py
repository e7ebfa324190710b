"""UDP multicast faces: the interface list, and faces of two hosts on one LAN segment exchanging
packets. The hosts are network namespaces this test makes (ccn/netlab.py: each host joined to a
bridge by a veth pair; all removed afterwards). The faces run in this process: their sockets are
opened by a thread that entered the host's namespace (a socket stays in the namespace it was
made in), then used from the trio run as usual. Needs root and ``ip``; skipped otherwise."""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import trio

from ccn.codec import encode
from ccn.errors import ConnectError
from ccn.faces.base import Face
from ccn.faces.multicast import DEFAULT_PORT, GROUP_V4, Interface, MulticastFace
from ccn.name import Name
from ccn.netlab import Lab, lab, unavailable
from ccn.packet import Data, Interest, Nack, NackReason, Packet

T = TypeVar("T")
N = Name.parse("/lan/x")
_CLONE_NEWNET = 0x40000000
_REASON = unavailable()
needs_netns = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def test_joining_on_an_address_no_interface_has_is_one_clear_error() -> None:
    nowhere = Interface("ccnt-none0", 999_999, 1500, "192.0.2.77", None)
    with pytest.raises(ConnectError, match=f"^cannot join {GROUP_V4} on ccnt-none0: "):
        MulticastFace(nowhere, socket.AF_INET, port=0)


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` on a new thread that entered network namespace ``ns`` (and then ends)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            out.append(fn())
        except BaseException as e:
            errors.append(e)
        finally:
            os.close(fd)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=10)
    if errors:
        raise errors[0]
    assert out, "the thread in the namespace did not finish"
    return out[0]


_LIST = (
    "import dataclasses, json, sys\n"
    "from ccn.faces.multicast import list_interfaces\n"
    "print(json.dumps([dataclasses.asdict(i) for i in list_interfaces(sys.argv[1:] or None)]))\n"
)


async def listed(ns: str, *names: str) -> list[dict[str, Any]]:
    """``list_interfaces(names)`` in a process inside ``ns`` (all of /proc/net is that
    namespace's there, which it is not for a thread that only entered it)."""
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", _LIST, *names]
    done = await trio.run_process(cmd, capture_stdout=True)
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@dataclass
class Host:
    ns: str
    iface: str
    address: str
    faces: list[MulticastFace]

    async def face(self, family: int = socket.AF_INET) -> MulticastFace:
        (found,) = await listed(self.ns, self.iface)
        iface = Interface(**found)
        face = in_netns(self.ns, lambda: MulticastFace(iface, family))
        self.faces.append(face)
        return face


@asynccontextmanager
async def two_hosts() -> AsyncIterator[tuple[Lab, Host, Host]]:
    """Hosts a and b on one segment, IPv6 duplicate address detection off (so that the
    link-local addresses are usable at once)."""
    async with lab() as net:
        hosts: list[Host] = []
        net.segment("s1")
        for name in ("a", "b"):
            ns = net.host(name)
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"],
                check=True,
                capture_output=True,
                timeout=10,
            )
            net.link(name, "s1")
            iface = net.ifaces[(name, "s1")]
            hosts.append(Host(ns, iface, f"10.1.0.{len(hosts) + 1}", []))
        try:
            yield net, hosts[0], hosts[1]
        finally:
            for face in hosts[0].faces + hosts[1].faces:
                face.sock.close()  # closed already unless its run never started


class Inbox:
    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[Packet](1000)

    def deliver(self, _face: Face, packet: Packet) -> None:
        self.send.send_nowait(packet)

    async def next(self) -> Packet:
        with trio.fail_after(5):
            return await self.receive.receive()


@needs_netns
async def test_list_interfaces_inside_a_host() -> None:
    with trio.fail_after(30):
        async with two_hosts() as (_net, a, _b):
            ip = ["ip", "-n", a.ns]
            subprocess.run([*ip, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                           check=True, capture_output=True, timeout=10)  # fmt: skip
            subprocess.run([*ip, "addr", "add", "10.9.0.1/24", "dev", "d0"], check=True, timeout=10)
            (only,) = await listed(
                a.ns,
            )  # lo (loopback) and d0 (down) are left out
            assert only["name"] == a.iface and only["ipv4"] == a.address
            assert only["mtu"] == 1500 and only["index"] > 0
            assert only["ipv6_link_local"].startswith("fe80::")
            assert await listed(a.ns, a.iface) == [only]
            assert await listed(a.ns, "d0", "lo", "nosuch") == []
            subprocess.run([*ip, "link", "set", "d0", "up"], check=True, timeout=10)
            subprocess.run([*ip, "link", "set", "d1", "up"], check=True, timeout=10)
            assert {
                i["name"]
                for i in await listed(
                    a.ns,
                )
            } == {a.iface, "d0", "d1"}
            d1 = (await listed(a.ns, "d1"))[0]  # no IPv4 address: listed for its link-local one
            assert d1["ipv4"] is None and d1["ipv6_link_local"].startswith("fe80::")


@needs_netns
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
async def test_two_hosts_exchange_packets_over_the_group(family: int) -> None:
    with trio.fail_after(30):
        async with two_hosts() as (_net, a, b):
            fa, fb = await a.face(family), await b.face(family)
            assert not fa.local and fa.address is not None
            group = "[ff02::1:cc%" + a.iface + "]" if family == socket.AF_INET6 else GROUP_V4
            assert fa.remote == f"udp+multicast://{group}:{DEFAULT_PORT}#{a.iface}"
            to_a, to_b = Inbox(), Inbox()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fa.run, to_a.deliver)
                nursery.start_soon(fb.run, to_b.deliver)
                fa.send(Interest(N, 1))
                assert await to_b.next() == Interest(N, 1)
                big = Data(N, os.urandom(200_000), 1000)  # fragmented at the MTU, reassembled
                fb.send(big)
                assert await to_a.next() == big
                assert (fa.counters.out_interests, fb.counters.in_interests) == (1, 1)
                assert (fb.counters.out_data, fa.counters.in_data) == (1, 1)
                assert fb.counters.out_bytes > 200_000 and fa.counters.in_bytes > 200_000
                # a Nack never goes to the group: the next thing b hears is the Interest after it
                fa.send(Nack(Interest(N, 2), NackReason.NO_ROUTE))
                fa.send(Interest(N, 3))
                assert await to_b.next() == Interest(N, 3)
                assert fa.nacks_suppressed == 1 and fa.counters.out_nacks == 0
                assert fa.info()["nacks_suppressed"] == 1 and fa.info()["interface"] == a.iface
                fa.close()
                fb.close()
            assert fa.closed and fa.sock.fileno() == -1  # run closed its socket


@needs_netns
async def test_nacks_and_garbage_from_the_group_are_not_delivered() -> None:
    with trio.fail_after(30):
        async with two_hosts() as (_net, a, b):
            fa = await a.face()

            def sender() -> socket.socket:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(b.address))
                return s

            with in_netns(b.ns, sender) as raw:
                to_a = Inbox()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(fa.run, to_a.deliver)
                    for payload in (
                        encode(Nack(Interest(N, 1), NackReason.NO_ROUTE)),
                        b"\x00not a ccn packet",
                        encode(Interest(N, 2)),
                    ):
                        raw.sendto(payload, (GROUP_V4, DEFAULT_PORT))
                    assert await to_a.next() == Interest(N, 2)
                    assert fa.nacks_suppressed == 1 and fa.counters.malformed == 1
                    assert fa.counters.in_nacks == 0 and fa.counters.in_interests == 1
                    fa.close()


@needs_netns
async def test_large_packets_go_out_in_datagrams_that_fit_the_interface() -> None:
    with trio.fail_after(30):
        async with two_hosts() as (_net, a, b):
            fa, fb = await a.face(), await b.face()

            def listener() -> socket.socket:  # a plain member of the group next to a's face
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind((GROUP_V4, DEFAULT_PORT))
                mreq = socket.inet_aton(GROUP_V4) + socket.inet_aton(a.address)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                s.setblocking(False)
                return s

            with in_netns(a.ns, listener) as plain:
                to_a = Inbox()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(fa.run, to_a.deliver)
                    big = Data(N, os.urandom(100_000))
                    fb.send(big)
                    assert await to_a.next() == big
                    sizes: list[int] = []
                    while len(sizes) < 1000:
                        try:
                            sizes.append(len(plain.recv(1 << 16)))
                        except BlockingIOError:
                            break
                    fa.close()
            # not left to IP fragmentation: every datagram fits the 1500-byte MTU
            assert len(sizes) > 60 and max(sizes) <= 1500 - 28
