"""Configured neighbours of a node in process: dialled at start and by route add, reported
when down, dialled again at once when a route is added to them or an Interest needs them; UDP
ones probed, taken down by the kernel's ICMP errors and brought back by an answer."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import msgpack
import pytest
import trio

from ccn.client import Client, CommandError, connect
from ccn.codec import decode, encode
from ccn.errors import NoAnswer, NoRoute
from ccn.faces.liveness import PROBE
from ccn.faces.stream import StreamFace
from ccn.faces.transport import dial
from ccn.faces.uri import FaceUri
from ccn.framing import Deframer, frame
from ccn.name import Name
from ccn.neighbours import HELD_FAILURE_STANDS, Neighbour
from ccn.node import Node
from ccn.packet import Interest, Nack, NackReason
from ccn.testing import free_port, node_in_process


def dead_udp_port() -> int:
    """A UDP port on loopback where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_neighbour_that_refuses_is_reported_and_leaves_no_route(tmp_path: Path) -> None:
    # A configured neighbour that refuses the connection: the node starts without waiting out
    # the start-up grace for it and says why it is down; a route added to it fails, naming the
    # refusal, and is not kept.
    far = "tcp://127.0.0.1:1"
    routes = [(Name.parse("/far"), far)]
    with trio.fail_after(10):
        async with node_in_process(tmp_path, routes=routes) as (node, uri), connect(uri) as client:
            assert node.unreachable() == [f"cannot reach a ccn node at {far}: Connection refused"]
            _fib, _total, down = await client.route_state()
            assert down == [{"prefix": "/far", "uri": far, "error": node.unreachable()[0]}]
            assert (await client.route_state("/elsewhere"))[2] == []
            with trio.fail_after(2), pytest.raises(CommandError, match="Connection refused"):
                await client.route_add(Name.parse("/also"), far)  # at once, not after 3 s
            assert set(next(iter(node.neighbours.values())).prefixes) == {Name.parse("/far")}


async def test_a_route_added_to_a_neighbour_that_came_back_dials_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node waits REDIAL_DELAY (here 60 s) before dialling a down neighbour again; a route
    # added meanwhile dials it at once and succeeds, since the neighbour is up by then.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)
    far = f"unix://{tmp_path}/far.sock"
    with trio.fail_after(10):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            assert node.unreachable()
            async with node_in_process(tmp_path, "far"), connect(uri) as client:
                with trio.fail_after(2):
                    await client.route_add(Name.parse("/also"), far)
                assert node.unreachable() == []
                fib = {e["prefix"] for e in await client.routes()}
                assert {"/far", "/also"} <= fib


async def test_a_udp_neighbour_nobody_listens_for_is_down_and_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at the route's UDP port: the kernel's ICMP error for the probe takes
    # the neighbour down at start, as a refused TCP dial does. Its routes are listed as down,
    # the node says so on stderr, a fetch under them is Nacked "no route" at once (it used to
    # wait out every Interest lifetime, 12 s), and a route added to it fails the same way.
    far = f"udp://127.0.0.1:{dead_udp_port()}"
    refused = f"cannot reach a ccn node at {far}: Connection refused"
    with trio.fail_after(10):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert node.unreachable() == [refused]
            assert f"ccn node: {refused}; retrying in the background" in capsys.readouterr().err
            fib, _total, down = await client.route_state()
            assert down == [{"prefix": "/far", "uri": far, "error": refused}]
            assert "/far" not in {e["prefix"] for e in fib}
            with trio.fail_after(1), pytest.raises(NoRoute):
                await client.get("/far/x")
            with trio.fail_after(2), pytest.raises(CommandError, match="Connection refused"):
                await client.route_add(Name.parse("/also"), far)
            face = next(f for f in await client.faces() if f["remote"] == far)
            assert face["unreachable"] >= 1 and face["unreachable_error"] == "Connection refused"
            assert (await client.status())["drops"]["udp_unreachable"] >= 1


async def test_a_udp_neighbour_that_comes_up_later_is_used_and_its_loss_noticed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Down at start, the neighbour is probed again (0.5 s, doubling): once a node listens
    # there, its answer puts the routes back without a restart. When that node goes away, the
    # ICMP error for the next Interest sent there answers it "no route" at once and takes
    # the routes down again.
    port = dead_udp_port()
    far = f"udp://127.0.0.1:{port}"
    (tmp_path / "f").write_bytes(b"hello")
    with trio.fail_after(20):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert node.unreachable()
            async with (
                node_in_process(tmp_path, "far", udp=True, udp_port=port) as (_far, far_uri),
                connect(far_uri) as producer,
            ):
                await producer.put(tmp_path / "f", "/far/f")
                while node.unreachable():
                    await trio.sleep(0.05)
                assert await client.get("/far/f") == b"hello"
            assert f"ccn node: {far} is reachable again" in capsys.readouterr().err
            with trio.fail_after(1), pytest.raises(NoRoute):
                await client.get("/far/other")
            assert node.unreachable() == [f"cannot reach a ccn node at {far}: Connection refused"]


async def failed_dials(nb: Neighbour, count: int) -> None:
    """Return when ``count`` more dials (or probes) of ``nb`` have failed."""
    for _ in range(count):
        await nb.attempt.wait()
        assert nb.face is None, "the neighbour came back"


async def test_a_get_right_after_a_producer_restart_dials_it_at_once(tmp_path: Path) -> None:
    # The producer goes away; the consumer's node fails its redials (0.5 s, 1 s, 2 s later,
    # then 4 s) and is 4 s from its next one when the producer is back on the same port. A
    # get at once dials it now and is answered, instead of "no route" until the next redial.
    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    for f in "ab":
        (tmp_path / f).write_bytes(f.encode() * 100)
    with trio.fail_after(30):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            nb = node.neighbours[far]
            async with (
                node_in_process(tmp_path, "far", tcp=True, tcp_port=port) as (_, far_uri),
                connect(far_uri) as producer,
            ):
                for f in "ab":
                    await producer.put(tmp_path / f, f"/far/{f}")
                while nb.face is None:  # the consumer's first dial was refused
                    await trio.sleep(0.05)
                async with connect(uri) as client:
                    assert await client.get("/far/a") == b"a" * 100
            await failed_dials(nb, 4)
            async with (
                node_in_process(tmp_path, "far", tcp=True, tcp_port=port),
                connect(uri) as client,
            ):
                with trio.fail_after(2):  # the next redial is 4 s away
                    assert await client.get("/far/b") == b"b" * 100
            assert node.links.held >= 1


class CrashingProducer:
    """A TCP listener playing a producer that crashes under a request: it accepts, and on the
    first Interest it reads it closes the connection and stops listening (:attr:`crashed`)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.crashed = trio.Event()
        self.asked: list[Name] = []

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started()
            await self.crashed.wait()
            nursery.cancel_scope.cancel()  # the listener closes with it

    async def _handle(self, stream: trio.SocketStream) -> None:
        deframer = Deframer(1 << 20)
        async with stream:
            while not self.crashed.is_set():
                chunk = await stream.receive_some()
                if not chunk:
                    return
                for unit in deframer.feed(chunk):
                    packet = decode(unit)
                    if isinstance(packet, Interest):
                        self.asked.append(packet.name)
                        self.crashed.set()


async def test_a_request_in_flight_when_its_producer_restarts_is_answered(tmp_path: Path) -> None:
    # The producer's connection closes under a version lookup it was sent (a crash), and the
    # producer listens again 0.3 s later (a restart: a `ccn node` listens ≈ 0.4 s after it is
    # started). The consumer's node keeps the Interest and dials the producer again and again
    # meanwhile (up to HOLD_WAIT), then sends it again: the get succeeds. It used to fail at
    # once, "no route", when the connection closed.
    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    (tmp_path / "a").write_bytes(b"a" * 100)
    with trio.fail_after(30):
        # (its store keeps /far/a for the restart)
        async with (
            node_in_process(tmp_path, "far", tcp=True) as (_, far_uri),
            connect(far_uri) as producer,
        ):
            await producer.put(tmp_path / "a", "/far/a")
        crashing = CrashingProducer(port)
        async with trio.open_nursery() as nursery:
            await nursery.start(crashing.run)
            async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (
                node,
                uri,
            ):
                nb = node.neighbours[far]
                assert nb.face is not None  # dialled at start: the crashing one accepted
                got: list[bytes] = []
                async with connect(uri) as client, trio.open_nursery() as gets:

                    async def get() -> None:
                        got.append(await client.get("/far/a"))

                    gets.start_soon(get)
                    await crashing.crashed.wait()
                    assert crashing.asked == [Name.parse("/far/a")]
                    await trio.sleep(0.3)
                    async with node_in_process(tmp_path, "far", tcp=True, tcp_port=port):
                        with trio.fail_after(2):
                            while not got:
                                await trio.sleep(0.02)
                assert got == [b"a" * 100]
                assert node.links.held == 1
                # the Interest counted in once, and not Nacked
                assert node.forwarder.counters.out_nacks == 0
                assert node.forwarder.counters.upstream_down == 1


async def test_a_udp_neighbour_is_probed_at_once_for_a_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above for UDP: down at start, probed 0.25 s, 0.5 s and 1 s later and now 2 s from
    # the next probe when a node comes up on its port; a get probes it at once and is answered.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 0.25)
    port = dead_udp_port()
    far = f"udp://127.0.0.1:{port}"
    (tmp_path / "f").write_bytes(b"hello")
    with trio.fail_after(20):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            nb = node.neighbours[far]
            assert nb.face is None
            await failed_dials(nb, 3)
            async with (
                node_in_process(tmp_path, "far", udp=True, udp_port=port) as (_, far_uri),
                connect(far_uri) as producer,
                connect(uri) as client,
            ):
                await producer.put(tmp_path / "f", "/far/f")
                with trio.fail_after(1.5):
                    assert await client.get("/far/f") == b"hello"
            assert node.links.held >= 1


async def test_with_nothing_listening_a_get_still_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The neighbour refuses (each dial takes 0.3 s here): gets fail with "no route" once the
    # dial their Interests wait for fails, not after HOLD_WAIT (here 10 s). The Interests of
    # five gets share one dial, and their second Interests (fetch asks again for the newest
    # version seen) take its failure as the answer: no second dial. Beyond MAX_HELD waiting
    # Interests, the next are Nacked at once, without a dial, and counted.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)  # no redial but the gets'
    monkeypatch.setattr("ccn.neighbours.HOLD_WAIT", 10.0)
    dials: list[FaceUri] = []

    async def slow_dial(uri: FaceUri) -> StreamFace:
        dials.append(uri)
        await trio.sleep(0.3)
        return await dial(uri)

    monkeypatch.setattr("ccn.neighbours.dial", slow_dial)
    far = f"tcp://127.0.0.1:{free_port()}"
    with trio.fail_after(15):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert len(dials) == 1 and node.unreachable()

            async def get(name: str) -> None:
                with pytest.raises(NoRoute, match=f"no route to {name}"):
                    await client.get(name)

            with trio.fail_after(2):
                async with trio.open_nursery() as nursery:
                    for i in range(5):
                        nursery.start_soon(get, f"/far/{i}")
            assert node.links.held == 5 and len(dials) == 2  # the gets' dial, one only
            await trio.sleep(HELD_FAILURE_STANDS)
            monkeypatch.setattr("ccn.neighbours.MAX_HELD", 0)
            with trio.fail_after(1):
                await get("/far/x")
            assert node.links.held == 5 and len(dials) == 2
            # each Interest counted once: held then Nacked, or Nacked at once (2)
            counters = node.forwarder.counters
            assert counters.no_route == counters.out_nacks == 12
            assert (await client.status())["drops"]["held_overflow"] == 2


FUTURE_PACKET = msgpack.packb([2, 1, [b"x"], 1, 4000, 32, 0, None])


class NewerCcn:
    """A TCP handler playing a newer ccn: it sends a packet of format version 2 on each
    connection and waits until the node closes it; :attr:`accepted` counts connections."""

    def __init__(self) -> None:
        self.accepted = 0

    async def __call__(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(frame(FUTURE_PACKET))
            await stream.receive_some()  # until the node closes


@contextlib.asynccontextmanager
async def tcp_routed(
    tmp_path: Path, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> AsyncIterator[tuple[Node, str, str]]:
    """A node in process whose route /far goes to a TCP listener on loopback that runs
    ``handler`` for each connection; yields the node, its URI and the listener's."""
    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), handler, port)
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            yield node, uri, far
        nursery.cancel_scope.cancel()


async def test_a_neighbour_speaking_another_packet_format_is_told_once_and_backed_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A configured neighbour that accepts the connection, then sends packets of format version
    # 2 (a newer ccn): each connection is closed at its first packet, as before, but the node
    # used to say nothing and redial every 0.5 s for good; now it says why, once, counts the
    # packets as malformed, shows the route as down with that reason, and backs off.
    newer_ccn = NewerCcn()
    with trio.fail_after(20):
        async with tcp_routed(tmp_path, newer_ccn) as (node, _uri, far):
            await trio.sleep(3.2)  # dials at 0, then after 0.5, 1 and 2 s of back-off
            error = (
                f"{far} does not speak this ccn's protocol (unsupported format version 2 "
                "(this node speaks 1)): it may run an older or newer ccn "
                "(docs/protocol.md §2), or not be ccn"
            )
            assert node.unreachable() == [error]
            assert 2 <= newer_ccn.accepted <= 4  # redialled every 0.5 s, 7 in 3.2 s
            assert node.status()["drops"]["malformed"] == newer_ccn.accepted
    err = capsys.readouterr().err
    assert err.count("does not speak") == 1
    assert f"ccn node: {error}; retrying in the background" in err
    assert "reachable again" not in err


class UdpPeer:
    """A UDP socket on loopback standing in for a ``udp://`` neighbour: it reads every
    datagram (so the kernel sends no ICMP error) and answers what ``answer`` returns for it
    (None: nothing, as behind a firewall that drops datagrams)."""

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.answer = answer
        self.sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.received = 0

    async def bind(self) -> str:
        await self.sock.bind(("127.0.0.1", 0))
        return f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    async def run(self) -> None:
        with self.sock:
            while True:
                data, addr = await self.sock.recvfrom(65536)
                self.received += 1
                reply = self.answer(data)
                if reply is not None:
                    await self.sock.sendto(reply, addr)


def drop(_data: bytes) -> bytes | None:
    return None


def answer_probes(data: bytes) -> bytes | None:
    """What a ccn node answers to a probe (a hop-limit Nack); other packets go unanswered."""
    packet = decode(data)
    if isinstance(packet, Interest) and packet.name == PROBE:
        return encode(Nack(packet, NackReason.HOP_LIMIT))
    return None


class Probes:
    """Answers probes as a ccn node does while :attr:`on`; silent (a firewall) once off."""

    def __init__(self) -> None:
        self.on = True

    def __call__(self, data: bytes) -> bytes | None:
        return answer_probes(data) if self.on else None


@contextlib.asynccontextmanager
async def routed_to(tmp_path: Path, peer: UdpPeer) -> AsyncIterator[tuple[Node, Client, str]]:
    """A node in process whose route /far goes to ``peer`` (run meanwhile), a client of it,
    and the peer's URI."""
    far = await peer.bind()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.run)
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            yield node, client, far
        nursery.cancel_scope.cancel()


async def test_a_udp_neighbour_behind_a_firewall_is_down_and_a_get_fails_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The peer's datagrams are dropped and no ICMP error comes back (a socket that reads and
    # ignores everything). The neighbour used to be taken as up: its route stayed, and a get
    # under it waited out every Interest lifetime (12 s). Nothing came back from it, so it is
    # down, said so, and a get is held for a probe (at most 1 s), then Nacked "no route".
    peer = UdpPeer(drop)
    with trio.fail_after(15):
        async with routed_to(tmp_path, peer) as (node, client, far):
            silent = f"cannot reach a ccn node at {far}: no answer within 1 s"
            assert node.unreachable() == [f"{silent} (is a firewall dropping its datagrams?)"]
            assert f"ccn node: {silent}" in capsys.readouterr().err
            assert "/far" not in {e["prefix"] for e in await client.routes()}
            probes = peer.received
            with trio.fail_after(2.5), pytest.raises(NoRoute):
                await client.get("/far/x")
            assert peer.received > probes  # the get had it probed at once


async def test_a_udp_neighbour_that_falls_silent_is_taken_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Up while it answers (an idle neighbour is probed every IDLE_PROBE, here 0.5 s, and
    # stays up); once it goes silent without an ICMP error (a firewall), the next idle probe
    # takes it down, with no request needed.
    monkeypatch.setattr("ccn.neighbours.IDLE_PROBE", 0.5, raising=False)
    probes = Probes()
    peer = UdpPeer(probes)
    with trio.fail_after(15):
        async with routed_to(tmp_path, peer) as (node, _client, far):
            nb = node.neighbours[far]
            assert nb.face is not None and node.unreachable() == []
            await trio.sleep(2.5)
            assert nb.face is not None and peer.received >= 3  # the first, then idle ones
            probes.on = False
            with trio.fail_after(4):  # ≤ LIVENESS_INTERVAL + PROBE_WAIT after the next one
                await failed_dials(nb, 1)
            assert node.unreachable()[0].startswith(f"cannot reach a ccn node at {far}")


async def test_a_udp_neighbour_that_stops_answering_interests_is_taken_down(
    tmp_path: Path,
) -> None:
    # An Interest sent to an up neighbour that then says nothing (no Data, no Nack, no ICMP
    # error) has it probed within a second; unanswered, it is down within about 2 s — not at
    # the next idle probe (10 s) — and the next get is Nacked "no route" within HOLD_WAIT.
    probes = Probes()
    with trio.fail_after(20):
        async with routed_to(tmp_path, UdpPeer(probes)) as (node, client, far):
            nb = node.neighbours[far]
            assert nb.face is not None
            probes.on = False
            async with trio.open_nursery() as gets:
                gets.start_soon(client.get, "/far/x")  # into the void
                with trio.fail_after(3.5):
                    await failed_dials(nb, 1)
                gets.cancel_scope.cancel()
            with trio.fail_after(1.5), pytest.raises(NoRoute):
                await client.get("/far/y")


async def test_interests_pending_on_a_udp_neighbour_taken_down_are_nacked_then(
    tmp_path: Path,
) -> None:
    # The neighbour goes silent with a get's Interest on it: when the liveness probe takes it
    # down (about 2 s later), that Interest is Nacked "no route" at once, not left to wait out
    # its lifetime (4 s) and be asked again.
    probes = Probes()
    outcome: list[BaseException] = []
    with trio.fail_after(20):
        async with routed_to(tmp_path, UdpPeer(probes)) as (node, client, far):
            nb = node.neighbours[far]
            assert nb.face is not None
            probes.on = False
            got = trio.Event()

            async def get() -> None:
                try:
                    await client.get("/far/x/v1")
                except NoRoute as e:
                    outcome.append(e)
                got.set()

            async with trio.open_nursery() as gets:
                gets.start_soon(get)
                with trio.fail_after(3.5):
                    await failed_dials(nb, 1)
                with trio.fail_after(1.0):
                    await got.wait()
            assert node.forwarder.counters.upstream_down == 1
    assert [str(e) for e in outcome] == ["no route to /far/x/v1"]


async def test_a_udp_neighbour_speaking_another_packet_format_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The UDP twin of the test above: a peer that answers every datagram with a packet of
    # format version 2. Its datagrams used to count as signs of life, so its route stayed up
    # and Interests went there for nothing; it is down now, said once, with the reason.
    peer = UdpPeer(lambda _d: FUTURE_PACKET)
    with trio.fail_after(15):
        async with routed_to(tmp_path, peer) as (node, client, far):
            error = (
                f"{far} does not speak this ccn's protocol (unsupported format version 2 "
                "(this node speaks 1)): it may run an older or newer ccn (docs/protocol.md §2), "
                "or not be ccn"
            )
            assert node.unreachable() == [error]
            await failed_dials(node.neighbours[far], 2)  # probed again: still not ccn
            assert node.unreachable() == [error]
            assert "/far" not in {e["prefix"] for e in await client.routes()}
            assert node.status()["drops"]["malformed"] >= 3
    err = capsys.readouterr().err
    assert err.count("does not speak") == 1
    assert f"ccn node: {error}; retrying in the background" in err


async def test_a_held_interest_is_counted_once_and_dropped_when_its_lifetime_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The neighbour is down; the dial two Interests are held for takes 0.5 s and succeeds.
    # - The one living 0.2 s used to be forwarded anyway, 0.3 s after its lifetime (its
    #   consumer long gone): it is dropped, counted in drops.held_expired.
    # - The one living 4 s is forwarded and answered, and counted as one Interest in and one
    #   out: it used to count two in, and one "no route" and one Nack out never sent.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)  # no redial but the held ones'
    dialling = {"slow": False}

    async def slow_dial(uri: FaceUri) -> StreamFace:
        if dialling["slow"]:
            await trio.sleep(0.5)
        return await dial(uri)

    monkeypatch.setattr("ccn.neighbours.dial", slow_dial)
    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    (tmp_path / "f").write_bytes(b"hello")
    with trio.fail_after(20):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            nb = node.neighbours[far]
            assert nb.face is None
            async with (
                node_in_process(tmp_path, "far", tcp=True, tcp_port=port) as (far_node, far_uri),
                connect(far_uri) as producer,
            ):
                version = await producer.put(tmp_path / "f", "/far/f")
                dialling["slow"] = True
                counters = node.forwarder.counters
                before = dict(counters.as_dict())
                reached = far_node.forwarder.counters.in_interests
                short = Interest(Name.parse("/far/gone"), 1, lifetime_ms=200)
                wanted = Interest(version, 2, lifetime_ms=4000)
                async with trio.open_nursery() as nursery:

                    async def expired() -> None:
                        with pytest.raises(NoAnswer):
                            await client.express(short, timeout=1.0, retries=0)

                    nursery.start_soon(expired)
                    await trio.sleep(0.05)  # both held for the same dial
                    with trio.fail_after(2):
                        data = await client.express(wanted, retries=0)
                assert data.name == version
                assert node.links.held == 2
                assert node.status()["drops"]["held_expired"] == 1
                assert far_node.forwarder.counters.in_interests == reached + 1  # not the short
                moved = {k: v - before[k] for k, v in counters.as_dict().items() if v != before[k]}
                assert {k: moved.get(k, 0) for k in ("in_interests", "out_interests")} == {
                    "in_interests": 2,
                    "out_interests": 1,
                }
                assert moved.get("no_route", 0) == moved.get("out_nacks", 0) == 0
                assert moved.get("cs_misses", 0) == 2


async def test_a_get_dials_a_neighbour_speaking_another_format_once_and_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A neighbour known to speak another packet format accepts each dial, then closes on its
    # first packet. A get used to dial it twice (its second Interest had a dial of its own),
    # and each dial "succeeded": the Interest held for it was sent into the connection and
    # lost, and the get waited out every retry ("no answer", ~25 s). Now the node waits for a
    # packet of ours (it probes) before the neighbour's routes go in: one dial, "no route".
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)  # no redial but the get's
    newer_ccn = NewerCcn()

    port = free_port()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), newer_ccn, port)
            routes = [(Name.parse("/far"), f"tcp://127.0.0.1:{port}")]
            async with (
                node_in_process(tmp_path, routes=routes) as (node, uri),
                connect(uri) as client,
            ):
                with trio.fail_after(5):
                    while not node.unreachable():  # its first packet closed the connection
                        await trio.sleep(0.01)
                assert newer_ccn.accepted == 1
                with trio.fail_after(3), pytest.raises(NoRoute, match="no route to /far/x"):
                    await client.get("/far/x")
                assert newer_ccn.accepted == 2
            nursery.cancel_scope.cancel()


class CcnListener:
    """A TCP handler playing a ccn node that answers probes (as one does, with a hop-limit
    Nack) while :attr:`on`, and reads everything and answers nothing once it is off: a
    stopped process, or a host gone, whose connection TCP keeps."""

    def __init__(self) -> None:
        self.on = True
        self.accepted = 0

    async def __call__(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        deframer = Deframer(1 << 20)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while chunk := await stream.receive_some():
                for unit in deframer.feed(chunk):
                    packet = decode(unit)
                    if self.on and isinstance(packet, Interest) and packet.name == PROBE:
                        await stream.send_all(frame(encode(Nack(packet, NackReason.HOP_LIMIT))))


async def test_a_tcp_neighbour_that_stops_answering_is_taken_down_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A neighbour whose connection stays open but which answers nothing (a stopped process, a
    # host gone without a word) stayed up: every fetch through it waited out all its retries
    # (about 54 s). Now an Interest it leaves unanswered has it probed within a second, and
    # the unanswered probe closes the connection: down within about 2 s, the pending get is
    # Nacked "no route" then, and the next get fails within a few seconds. Its redials are
    # accepted (by the kernel) but routes go back in only once a probe is answered.
    peer = CcnListener()
    with trio.fail_after(30):
        async with tcp_routed(tmp_path, peer) as (node, uri, far), connect(uri) as client:
            nb = node.neighbours[far]
            assert nb.face is not None
            peer.on = False
            outcome: list[BaseException] = []

            async def get() -> None:
                with contextlib.suppress(NoRoute):
                    await client.get("/far/x/v1")
                    return
                outcome.append(NoRoute())

            async with trio.open_nursery() as gets:
                gets.start_soon(get)
                with trio.fail_after(3.5):
                    await failed_dials(nb, 1)
            assert outcome and node.forwarder.counters.upstream_down == 1
            silent = f"cannot reach a ccn node at {far}: a probe went unanswered for 1 s"
            assert f"ccn node: {silent}; retrying in the background" in capsys.readouterr().err
            with trio.fail_after(4), pytest.raises(NoRoute):
                await client.get("/far/y/v1")
            assert "/far" not in {e["prefix"] for e in await client.routes()}
            with trio.fail_after(10):  # redials are accepted, answered by no one
                await failed_dials(nb, 1)
            assert peer.accepted >= 2
            assert node.unreachable() == [f"cannot reach a ccn node at {far}: no answer within 1 s"]
            peer.on = True  # it wakes up: the next redial (≤ 5 s of back-off) has it up
            with trio.fail_after(8):
                while nb.face is None:
                    await nb.attempt.wait()
            assert "/far" in {e["prefix"] for e in await client.routes()}
            assert f"ccn node: {far} is reachable again" in capsys.readouterr().err


async def test_an_idle_tcp_neighbour_that_answers_probes_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Idle, it is probed every IDLE_PROBE (here 0.3 s) and stays up on the same connection.
    monkeypatch.setattr("ccn.neighbours.IDLE_PROBE", 0.3, raising=False)
    monkeypatch.setattr("ccn.neighbours.LIVENESS_INTERVAL", 0.1, raising=False)
    peer = CcnListener()
    with trio.fail_after(20):
        async with tcp_routed(tmp_path, peer) as (node, _uri, far):
            nb = node.neighbours[far]
            face = nb.face
            assert face is not None
            await trio.sleep(1.5)
            assert nb.face is face and not face.closed and peer.accepted == 1
            assert face.counters.out_interests >= 3 and face.counters.in_nacks >= 3
