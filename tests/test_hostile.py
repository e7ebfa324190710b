"""Hostile peers against a real ``ccn node`` process.

* 100k random and mutated frames over TCP (and 20k datagrams over UDP) while a consumer keeps
  fetching: every fetch completes and is correct, the drops are counted in ``status.drops``, the
  node's memory stays bounded (``/proc/PID/status``), and it still serves afterwards.
* Cache poisoning: a fake neighbour answering with wrong-digest objects and a forged version
  record never gets them cached or delivered; the fetch completes from the other next hop.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ccn import codec
from ccn.client import connect
from ccn.errors import CcnError
from ccn.framing import frame
from ccn.keys import SigningKey, generate_key, key_path
from ccn.mgmt_proto import command_name
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.store.objects import Blob, Kind, Version, decode, encode, id_of
from ccn.testing import NodeProcess, free_port, memory_status, node_in_process, start_node, stop_all
from ccn.trust import Anchors

pytestmark = pytest.mark.slow

TCP_FRAMES = 100_000
UDP_DATAGRAMS = 20_000
CONNECTIONS = 10
FILE_SIZE = 8 << 20


def _seeds() -> list[bytes]:
    name = Name.parse("/h/file")
    i = Interest(name, 1, 4000, 32, True, True, None)
    return [
        codec.encode(i),
        codec.encode(Interest(name, 2, digest=bytes(32))),
        codec.encode(Data(name.with_version(1), b"x" * 200, 10)),
        codec.encode(Nack(i, NackReason.NO_ROUTE)),
    ]


def _garbage(rng: random.Random, seeds: list[bytes]) -> bytes:
    """Half random bytes, half a valid packet with a few bytes changed."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(0, 300))
    raw = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 3)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    if rng.random() < 0.2:
        del raw[rng.randrange(len(raw)) :]
    return bytes(raw)


async def _hostile_tcp(port: int, frames: int, seed: int) -> None:
    """One connection: a valid first packet (so it is not closed at once), then garbage frames.
    It reads nothing back until it has sent everything: the node's queue towards it fills up."""
    rng = random.Random(seed)
    seeds = _seeds()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(frame(seeds[0]))
        for start in range(0, frames, 1000):
            batch = b"".join(frame(_garbage(rng, seeds)) for _ in range(min(1000, frames - start)))
            await stream.send_all(batch)
        # Half-close and read to the end, so the node reads every frame before the connection
        # goes (closing with unread data would reset it and discard what the node had not read).
        await stream.send_eof()
        with trio.move_on_after(60):
            while await stream.receive_some(1 << 20):
                pass
    except (trio.BrokenResourceError, ConnectionResetError):
        pass  # the node may close a stream that breaks framing; that is the point
    finally:
        await stream.aclose()


async def _stream_killers(port: int) -> None:
    """Connections the node must close at once: garbage first, an oversized frame, HTTP."""
    for payload in (b"GET / HTTP/1.1\r\n\r\n", b"\xff\xff\xff\xff" + b"x" * 64, os.urandom(512)):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.move_on_after(5):
            try:
                await stream.send_all(payload)
                assert await stream.receive_some(1) == b""  # closed by the node
            except (trio.BrokenResourceError, ConnectionResetError):
                pass
        await stream.aclose()


async def _hostile_udp(port: int, count: int) -> None:
    rng = random.Random(7)
    seeds = _seeds()
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.connect(("127.0.0.1", port))
    with sock:
        for n in range(count):
            datagram = _garbage(rng, seeds)
            if rng.random() < 0.3:  # fragment-shaped
                datagram = b"\xc1\x01" + rng.randbytes(8) + datagram
            # ECONNREFUSED from an earlier ICMP, or a full buffer: UDP is lossy anyway
            with contextlib.suppress(OSError):
                await sock.send(datagram)
            if n % 500 == 0:
                await trio.sleep(0.001)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[NodeProcess, int, int]]:
    tcp, udp = free_port(), free_port()
    sock = f"unix://{tmp_path}/n.sock"
    listen = [sock, f"tcp://127.0.0.1:{tcp}", f"udp://127.0.0.1:{udp}"]
    proc = await start_node("n", tmp_path, listen, [], sock)
    try:
        yield proc, tcp, udp
    finally:
        await stop_all([proc])


async def test_node_survives_100k_hostile_frames(
    node: tuple[NodeProcess, int, int], tmp_path: Path
) -> None:
    proc, tcp, udp = node
    src = tmp_path / "file.bin"
    src.write_bytes(os.urandom(FILE_SIZE))
    expected = src.read_bytes()
    async with connect(proc.uri) as c:
        await c.put(src, "/h/file")
        assert await c.get("/h/file") == expected
    base = memory_status(proc.process.pid)
    fetched = 0
    hostile_done = trio.Event()

    async def consumer() -> None:
        nonlocal fetched
        async with connect(proc.uri) as c:
            while not hostile_done.is_set() or fetched < 3:
                assert await c.get("/h/file/v1") == expected
                fetched += 1

    async def hostile() -> None:
        async with trio.open_nursery() as n:
            for k in range(CONNECTIONS):
                n.start_soon(_hostile_tcp, tcp, TCP_FRAMES // CONNECTIONS, k)
            n.start_soon(_stream_killers, tcp)
            n.start_soon(_hostile_udp, udp, UDP_DATAGRAMS)
        hostile_done.set()

    with trio.fail_after(120):
        async with trio.open_nursery() as n:
            n.start_soon(consumer)
            n.start_soon(hostile)
    assert fetched >= 3
    async with connect(proc.uri) as c:
        assert await c.get("/h/file") == expected  # and it still serves
        # half the frames are random bytes, which never decode; mutated ones often do not
        # either. The node may still be reading what the sockets hold: wait, bounded.
        with trio.move_on_after(10):
            while (status := await c.status())["drops"]["malformed"] < TCP_FRAMES // 2:
                await trio.sleep(0.2)
    drops = status["drops"]
    assert drops["malformed"] >= TCP_FRAMES // 2, drops
    after = memory_status(proc.process.pid)
    print(f"hostile: {fetched} fetches during the attack; drops {drops}; memory {base} -> {after}")
    limits = status["limits"]
    # bounded: the CS budget plus per-face buffers, never the volume of what was thrown at it
    budget = limits["cs_bytes"] + CONNECTIONS * limits["reassembly_per_face"] + (96 << 20)
    assert after["VmHWM"] - base["VmRSS"] < budget, (base, after)
    assert proc.process.returncode is None


# -- cache poisoning -------------------------------------------------------------------------


async def _fake_neighbour(
    listener: trio.SocketListener, key: SigningKey, answers: dict[str, Any]
) -> None:
    """Speaks ccn over TCP: answers every Interest with a lie (a forged version record, or
    bytes that are not the object asked for)."""

    async def handle(stream: trio.SocketStream) -> None:
        from ccn.framing import Deframer

        deframer = Deframer()
        async with stream:
            while True:
                chunk = await stream.receive_some(1 << 16)
                if not chunk:
                    return
                for raw in deframer.feed(chunk):
                    packet = codec.decode(raw)
                    if type(packet) is not Interest:
                        continue
                    answers["asked"] += 1
                    if packet.digest is not None:
                        lie = Data(ROOT, encode(Blob(b"poison" * 100)))
                    else:
                        good: Version = answers["version"]
                        forged = replace(good, content_hash=bytes(32))
                        name = packet.name if packet.name.version else good.full_name
                        lie = Data(name, encode(forged), 3_600_000)
                    await stream.send_all(frame(codec.encode(lie)))

    await trio.serve_listeners(handle, [listener])


async def test_poisoned_answers_are_never_cached_or_delivered(tmp_path: Path) -> None:
    key = generate_key("producer", tmp_path / "home")
    key_file = key_path("producer", tmp_path / "home")
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(300_000))  # a few chunks and a manifest
    trust = [f"/p={key.public}"]
    answers: dict[str, Any] = {"asked": 0}
    async with (
        node_in_process(tmp_path, "P", tcp=True) as (p_node, p_uri),
        trio.open_nursery() as fakes,
    ):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        fake_port = listener.socket.getsockname()[1]
        async with connect(p_uri) as c:
            await c.publish(src, "/p/file", key=key_file)
        answers["version"] = _version_of(p_node, Name.parse("/p/file"))
        assert key.public.verify(answers["version"])
        fakes.start_soon(_fake_neighbour, listener, key, answers)
        p_tcp = str(p_node.bound[1])
        routes = [(Name.parse("/p"), f"tcp://127.0.0.1:{fake_port}"), (Name.parse("/p"), p_tcp)]
        async with node_in_process(tmp_path, "C", routes=routes, trust=trust) as (c_node, c_uri):
            c_node.forwarder.set_strategy(Name.parse("/p"), "multicast")
            with trio.fail_after(30):
                async with connect(c_uri, trust=Anchors([(Name.parse("/p"), key.public)])) as c:
                    got = await c.get("/p/file")
            fakes.cancel_scope.cancel()
    assert got == src.read_bytes()
    assert answers["asked"] > 0  # the liar was asked, and lied
    status = c_node.status()
    assert status["drops"]["untrusted"] >= 1  # the forged version record
    assert status["forwarder"]["unsolicited_data"] >= 1  # wrong-digest objects
    poison = Blob(b"poison" * 100)
    assert c_node.forwarder.cs.get_by_digest(id_of(poison)) is None
    assert not c_node.cache.known(id_of(poison))


def _version_of(node: Any, name: Name) -> Version:
    latest = node.refs.latest(name)
    assert latest is not None
    v = decode(node.store.get(latest[1]))
    assert type(v) is Version and v.root_kind in (Kind.BLOB, Kind.MANIFEST)
    return v


# -- floods: the mechanisms (bench_flood.py measures the rates) ------------------------------


async def test_stream_face_yields_after_its_read_quantum() -> None:
    """A face with thousands of costly packets already buffered hands them over for at most
    READ_QUANTUM seconds at a time and lets other tasks (other faces) run in between."""
    from ccn.faces.base import READ_QUANTUM
    from ccn.faces.stream import StreamFace

    left, right = trio.testing.memory_stream_pair()
    face = StreamFace(right, "memory://flood", local=False)
    count = 1000
    wire = b"".join(frame(codec.encode(Interest(Name.parse(f"/f/{k}"), k))) for k in range(count))
    cost = 0.0001  # each packet keeps the node busy at least this long
    delivered: list[int] = []
    seen_by_other: list[int] = []

    def deliver(_face: object, _packet: object) -> None:
        until = time.perf_counter() + cost
        while time.perf_counter() < until:
            pass
        delivered.append(1)

    async def other() -> None:
        while len(delivered) < count:
            seen_by_other.append(len(delivered))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as n:
        n.start_soon(face.run, deliver)
        await left.send_all(wire)
        n.start_soon(other)
        with trio.fail_after(30):
            while len(delivered) < count:
                await trio.sleep(0.01)
        face.close()
    steps = [b - a for a, b in itertools.pairwise(seen_by_other)]
    # trio runs each ready task once per batch, in random order: between two turns of `other`
    # the face had at most two turns, each ending with the first packet past its quantum
    per_turn = int(READ_QUANTUM / cost) + 1
    assert max(steps) <= 2 * per_turn
    assert len(seen_by_other) >= count // per_turn


async def test_flood_into_a_black_hole_is_bounded_per_face(tmp_path: Path) -> None:
    """Interests for names nobody answers fill at most pit_max_per_face PIT entries for the
    flooding face; the rest get congestion Nacks at once, and another face still fetches."""
    per_face = 500
    flood = 3000
    hole = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    hole_port = hole.socket.getsockname()[1]

    async def black_hole() -> None:
        async def swallow(stream: trio.SocketStream) -> None:
            async with stream:
                while await stream.receive_some(1 << 16):
                    pass

        await trio.serve_listeners(swallow, [hole])

    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(2 << 20))
    routes = [(Name.parse("/bh"), f"tcp://127.0.0.1:{hole_port}")]
    async with trio.open_nursery() as holes:
        holes.start_soon(black_hole)
        async with (
            node_in_process(tmp_path, routes=routes, pit_max_per_face=per_face) as (node, uri),
            connect(uri) as flooder,
            connect(uri) as consumer,
        ):
            await consumer.put(src, "/local/f")
            nacks: list[NackReason] = []

            def answer(p: Data | Nack) -> None:
                if type(p) is Nack:
                    nacks.append(p.reason)

            with trio.fail_after(30):
                for k in range(flood):
                    flooder.send(Interest(Name.parse(f"/bh/{k}"), k, 60_000), answer)
                    if k % 200 == 0:
                        await trio.sleep(0)
                assert await consumer.get("/local/f") == src.read_bytes()
                while len(nacks) < flood - per_face:
                    await trio.sleep(0.01)
            status = node.status()
            assert status["pit"]["entries"] <= per_face
            assert nacks.count(NackReason.CONGESTION) == flood - per_face
            assert status["drops"]["congestion_nacks"] >= flood - per_face
            assert status["limits"]["pit_max_per_face"] == per_face
        holes.cancel_scope.cancel()


async def test_faces_beyond_max_faces_are_refused(tmp_path: Path) -> None:
    async with (
        node_in_process(tmp_path, max_faces=2) as (_node, uri),
        connect(uri) as first,
        connect(uri) as second,
    ):
        await first.status()
        await second.status()
        refused = False
        try:
            async with connect(uri) as third:
                with trio.fail_after(5):
                    await third.status()
        except CcnError:  # "the node closed the connection"
            refused = True
        assert refused
        status = await first.status()
        assert status["drops"]["faces_refused"] == 1
        assert status["limits"]["faces"] == 2


async def test_connections_reset_before_they_are_accepted_do_not_stop_the_node(
    tmp_path: Path,
) -> None:
    """A peer that connects and resets at once (SO_LINGER 0) leaves an accepted socket whose
    peer address cannot be read; that used to end the listener and the whole node."""
    linger_zero = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
    with trio.fail_after(30):
        async with node_in_process(tmp_path, tcp=True, ndn=["tcp://127.0.0.1:0"]) as (node, uri):
            ports = [b.port for b in (*node.bound, *node.bound_ndn) if b.scheme == "tcp"]
            assert len(ports) == 2
            for port in ports:
                for _ in range(200):
                    s = trio.socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
                    await s.connect(("127.0.0.1", port))
                    s.close()  # before the node's accept task has run: a reset socket
                await trio.sleep(0.2)
            async with connect(uri) as client:
                status = await client.status()
            assert status["faces"] is not None


class _NetworkPeers:
    """Peers on the network that open faces to an in-process node over memory streams."""

    def __init__(self, node: Any, nursery: trio.Nursery) -> None:
        self.node = node
        self.nursery = nursery
        self.faces: list[Any] = []
        self._streams: list[Any] = []

    async def arrive(self, remote: str, *, by_peer: bool = True) -> Any:
        from ccn.faces.stream import StreamFace

        ours, theirs = trio.testing.memory_stream_pair()
        face = StreamFace(ours, remote, local=False)
        face.opened_by_peer = by_peer
        self._streams.append(theirs)
        self.faces.append(face)
        self.nursery.start_soon(self.node._serve_face, face)
        await trio.sleep(0.05)
        return face

    async def speak(self, k: int) -> None:
        """Face ``k``'s peer sends a valid packet."""
        packet = frame(codec.encode(Interest(Name.parse("/x"), k + 1)))
        await self._streams[k].send_all(packet)


async def test_silent_network_faces_give_way_and_cannot_take_the_apps_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faces of apps on this host and of peers on the network are bounded apart; in a full
    pool, a face whose peer has said nothing valid for SILENT_GRACE gives way to a newcomer
    (drops.silent_faces), and when every face has spoken the newcomer is refused."""
    from ccn import node as node_module

    monkeypatch.setattr(node_module, "SILENT_GRACE", 1.0)  # the steps before: ~0.2 s
    async with node_in_process(tmp_path, max_faces=2) as (node, uri), trio.open_nursery() as n:
        peers = _NetworkPeers(node, n)
        faces = peers.faces
        speak = peers.speak

        async def arrive() -> None:
            await peers.arrive(f"tcp://192.0.2.{len(faces) + 1}:6464")

        await arrive()
        await arrive()
        await speak(0)
        await arrive()  # the pool is full and face 1 is silent, but not for long yet
        assert faces[2].closed and node.drops["faces_refused"] == 1
        await trio.sleep(1.1)
        await arrive()  # face 1 has been silent past the grace: it gives way
        assert faces[1].closed and not faces[3].closed
        assert node.drops["silent_faces"] == 1
        await speak(3)
        await trio.sleep(1.1)
        await arrive()  # everyone has spoken: refused
        assert faces[4].closed and not faces[0].closed and not faces[3].closed
        async with connect(uri) as app:  # an app still gets in: its own pool
            status = await app.status()
        assert status["drops"]["faces_refused"] == 2
        assert status["limits"]["network_faces"] == 2
        n.cancel_scope.cancel()


async def test_one_network_host_cannot_take_the_whole_network_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host past max_faces_per_host is refused (drops.faces_per_host) unless one of its own
    faces has been silent past the grace; other hosts and faces the node dialled still get in."""
    from ccn import node as node_module

    monkeypatch.setattr(node_module, "SILENT_GRACE", 1.0)  # the steps before: ~0.2 s
    async with (
        node_in_process(tmp_path, max_faces=10, max_faces_per_host=2) as (node, uri),
        trio.open_nursery() as n,
    ):
        peers = _NetworkPeers(node, n)
        speak = peers.speak

        async def arrive(host: str, *, by_peer: bool = True) -> Any:
            return await peers.arrive(f"tcp://{host}:{6000 + len(peers.faces)}", by_peer=by_peer)

        a0, a1 = await arrive("192.0.2.1"), await arrive("192.0.2.1")
        await speak(0)
        a2 = await arrive("192.0.2.1")  # a1 is silent, but not for long yet
        assert a2.closed and node.drops["faces_per_host"] == 1
        b0 = await arrive("192.0.2.2")  # another host
        dialled = await arrive("192.0.2.1", by_peer=False)  # a neighbour the node chose
        assert not b0.closed and not dialled.closed
        await trio.sleep(1.1)
        a3 = await arrive("192.0.2.1")  # a1 silent past the grace: it gives way
        assert a1.closed and not a3.closed and not a0.closed
        assert node.drops["silent_faces"] == 1
        await speak(5)
        await trio.sleep(1.1)
        a4 = await arrive("192.0.2.1")
        assert a4.closed and node.drops["faces_per_host"] == 2
        assert node.drops["faces_refused"] == 0
        async with connect(uri) as app:
            status = await app.status()
        assert status["limits"]["max_faces_per_host"] == 2
        assert status["drops"]["faces_per_host"] == 2
        n.cancel_scope.cancel()


async def test_datagrams_from_strangers_that_open_no_face_are_counted(tmp_path: Path) -> None:
    async with node_in_process(tmp_path, udp=True) as (node, uri):
        port = next(b.port for b in node.bound if b.scheme == "udp")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            for junk in (b"\xc1", b"GET / HTTP/1.0\r\n\r\n", os.urandom(64), b"", b"\x00"):
                raw.sendto(junk, ("127.0.0.1", port))
        async with connect(uri) as client:
            with trio.fail_after(5):
                while (await client.status())["drops"]["udp_dropped"] < 5:
                    await trio.sleep(0.05)
        assert not [f for f in node.faces.values() if f.remote.startswith("udp")]


_OTHER_USER_CLIENT = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(bytes.fromhex(sys.argv[2]))
s.settimeout(2)
try:
    print("answered" if s.recv(1 << 16) else "closed")
except socket.timeout:
    print("no answer")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a client as another user")
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
async def test_a_loopback_peer_of_another_user_is_not_local(tmp_path: Path) -> None:
    """Management (/localhost) is for apps of the node's user: over the Unix socket its file
    mode sees to that; over loopback TCP the peer's socket owner is looked up. Before, any
    local user could have the node publish a file only the node's user may read."""
    status = codec.encode(Interest(Name.parse("/localhost/ccn/status"), 7, must_be_fresh=True))
    async with node_in_process(tmp_path, tcp=True) as (node, _uri):
        port = next(b.port for b in node.bound if b.scheme == "tcp")
        violations = node.forwarder.counters.scope_violations

        def as_user(uid: int) -> str:
            out = subprocess.run(
                ["/usr/bin/python3", "-c", _OTHER_USER_CLIENT, str(port), frame(status).hex()],
                user=uid,
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            )
            return out.stdout.strip()

        assert await trio.to_thread.run_sync(as_user, 65534) == "no answer"
        assert node.forwarder.counters.scope_violations == violations + 1
        assert await trio.to_thread.run_sync(as_user, 0) == "answered"  # the node's own user


_SEND_AND_CLOSE = """
import socket, sys
port, frames = int(sys.argv[1]), sys.stdin.read().split()
for f in frames:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes.fromhex(f))
    s.close()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a client as another user")
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
async def test_a_command_whose_sender_closes_at_once_is_not_taken_for_roots(
    tmp_path: Path,
) -> None:
    """A socket closed since lingers in the kernel's tables as root's (FIN_WAIT, TIME_WAIT): a
    user who sends a command and closes at once must not pass for root, however late the node
    looks (it looks up the very connection, and a socket no process holds is no one's)."""
    frames = [
        frame(
            codec.encode(
                Interest(
                    command_name(
                        "route-add", {"prefix": f"/pwned/{i}", "uri": "tcp://192.0.2.1:1"}
                    ),
                    1000 + i,
                    must_be_fresh=True,
                )
            )
        ).hex()
        for i in range(30)
    ]
    async with node_in_process(tmp_path, tcp=True) as (node, uri):
        port = next(b.port for b in node.bound if b.scheme == "tcp")
        violations = node.forwarder.counters.scope_violations
        # Run while this trio loop, the node's, is blocked: the connections wait in the
        # listener's backlog, so the node looks them up only after their senders closed them.
        subprocess.run(
            ["/usr/bin/python3", "-c", _SEND_AND_CLOSE, str(port)],
            input="\n".join(frames),
            user=65534,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        # still blocked: a closed socket turns from its user's into a TIME_WAIT or FIN_WAIT2
        # entry, root's, within ~0.2 s
        time.sleep(1)
        await trio.sleep(1)  # the node accepts them and reads what they sent
        # each command read, and dropped as from a face that is not local
        assert node.forwarder.counters.scope_violations == violations + len(frames)
        assert node.forwarder.fib.count(Name.parse("/pwned")) == 0
        async with connect(uri) as app:  # the node's user, over its Unix socket: still served
            assert (await app.status())["faces"]


async def test_udp_peers_never_manage_the_node(tmp_path: Path) -> None:
    """A datagram's address names a port whose owner may change while its face lives: a UDP
    peer is never local, even of the node's own user on loopback. Its /localhost Interests are
    dropped and counted; its other Interests are served."""
    async with node_in_process(tmp_path, udp=True) as (node, _uri):
        port = next(b.port for b in node.bound if b.scheme == "udp")
        violations = node.forwarder.counters.scope_violations
        command = Interest(
            command_name("route-add", {"prefix": "/via/udp", "uri": "tcp://192.0.2.1:1"}),
            7,
            must_be_fresh=True,
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect(("127.0.0.1", port))
            u.send(codec.encode(command))
            u.send(codec.encode(Interest(Name.parse("/nothing/here"), 8)))
            u.settimeout(5)
            answer = await trio.to_thread.run_sync(u.recv, 1 << 16)
        nack = codec.decode(answer)  # the plain Interest is answered (no route), not the command
        assert type(nack) is Nack and nack.interest.nonce == 8
        assert node.forwarder.counters.scope_violations == violations + 1
        assert node.forwarder.fib.count(Name.parse("/via")) == 0
        assert not [f for f in node.faces.values() if f.remote.startswith("udp") and f.local]
