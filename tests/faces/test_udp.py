"""UDP faces on loopback: demultiplexing, fragmentation, loss, idle timeout."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from ccn.codec import decode as decode_packet
from ccn.codec import encode
from ccn.faces.base import Face
from ccn.faces.liveness import PROBE
from ccn.faces.udp import (
    EARLY_MAX,
    MAX_SIZE_PROBE,
    UdpChannel,
    UdpFace,
    _is_size_probe,
    _padded_probe,
    path_datagram_size,
    receive_errors,
)
from ccn.faces.uri import FaceUri
from ccn.frag import (
    Reassembler,
    ask,
    fragment,
    is_fragment,
    is_request,
    parse_ask,
    parse_header,
)
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.testing import no_ipv6_loopback

N = Name.parse("/a/b")
_NO_V6 = no_ipv6_loopback()


class Hub:
    """Runs the faces a channel hands over and records what they deliver."""

    def __init__(self) -> None:
        self.faces: list[UdpFace] = []
        self.packets: list[tuple[Face, Packet]] = []
        self.event = trio.Event()
        self.closed: list[UdpFace] = []

    async def on_face(self, face: UdpFace) -> None:
        self.faces.append(face)
        try:
            await face.run(self.deliver)
        finally:
            self.closed.append(face)
            self.event.set()

    def deliver(self, face: Face, packet: Packet) -> None:
        self.packets.append((face, packet))
        self.event.set()

    async def wait(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not pred():
                await self.event.wait()
                self.event = trio.Event()


@asynccontextmanager
async def channel(host: str = "127.0.0.1", **kwargs: Any) -> AsyncIterator[tuple[UdpChannel, Hub]]:
    ch = await UdpChannel.open(FaceUri("udp", host=host, port=0), **kwargs)
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(ch.run, hub.on_face)
        yield ch, hub
        nursery.cancel_scope.cancel()


async def test_peers_get_one_face_each_both_ways() -> None:
    async with channel() as (a, ha), channel() as (b, hb):
        fa = a.face_for(await a.resolve(b.bound))
        # never local, even on loopback: /localhost is for stream peers (ccn.faces.peers)
        assert fa.persistent and not fa.local and str(fa.remote) == str(b.bound)
        fa.send(Interest(N, 1))
        await hb.wait(lambda: len(hb.packets) == 1)
        fb, got = hb.packets[0]
        assert got == Interest(N, 1)
        assert isinstance(fb, UdpFace) and not fb.persistent and not fb.local  # on demand
        fb.send(Data(N, b"x"))
        await ha.wait(lambda: len(ha.packets) == 1)
        assert ha.packets[0] == (fa, Data(N, b"x"))
        assert len(ha.faces) == 1 and len(hb.faces) == 1
        assert fa.counters.out_interests == 1 and fa.counters.in_data == 1


@pytest.mark.skipif(_NO_V6 is not None, reason=_NO_V6 or "")
async def test_ipv6_loopback_peers_get_one_face_each_both_ways() -> None:
    async with channel("::1") as (a, ha), channel("::1", max_datagram=1400) as (b, hb):
        assert a.family == socket.AF_INET6 and str(b.bound) == f"udp://[::1]:{b.bound.port}"
        fa = a.face_for(await a.resolve(FaceUri.parse(str(b.bound))))
        assert fa.persistent and not fa.local and fa.remote == str(b.bound)
        fa.send(Interest(N, 1))
        await hb.wait(lambda: len(hb.packets) == 1)
        fb, got = hb.packets[0]
        assert got == Interest(N, 1) and isinstance(fb, UdpFace)
        assert fb.remote == str(a.bound) and not fb.local
        big = Data(N, os.urandom(100_000))  # fragmented (1400-byte datagrams), reassembled
        fb.send(big)
        await ha.wait(lambda: len(ha.packets) == 1)
        assert ha.packets[0] == (fa, big)
        assert len(ha.faces) == 1 and len(hb.faces) == 1


async def test_large_packets_are_fragmented_and_reassembled() -> None:
    async with channel(max_datagram=1400) as (a, _ha), channel(max_datagram=1400) as (b, hb):
        fa = a.face_for(await a.resolve(b.bound))
        blobs = [os.urandom(n) for n in (1000, 1400, 200_000, 1_000_000 - 64)]
        for blob in blobs:
            fa.send(Data(Name(), blob))
        await hb.wait(lambda: len(hb.packets) == len(blobs))
        assert [p.content for _f, p in hb.packets if isinstance(p, Data)] == blobs
        face = hb.faces[0]
        assert face.reassembler.counters.reassembled == 3  # 1400 B of content + header too
        assert face.reassembler.pending == 0


async def test_a_lost_fragment_loses_only_its_packet() -> None:
    async with channel() as (b, hb):
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with raw:
            big = encode(Data(Name(), os.urandom(5000)))
            frags = fragment(big, 1000, 77)
            for f in frags[:2] + frags[3:]:  # fragment 2 lost
                raw.sendto(f, ("127.0.0.1", b.bound.port))
            whole = encode(Data(N, b"after"))
            raw.sendto(whole, ("127.0.0.1", b.bound.port))
            await hb.wait(lambda: len(hb.packets) == 1)
            await trio.sleep(0.05)
        assert [p for _f, p in hb.packets] == [Data(N, b"after")]
        assert hb.faces[0].reassembler.pending == 1


async def test_a_face_asks_its_peer_for_the_fragments_it_lost() -> None:
    async with channel() as (b, hb):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            big = Data(Name(), os.urandom(8000))
            frags = fragment(encode(big), 1000, 77)
            for k, f in enumerate(frags):
                if k not in (2, 3, len(frags) - 1):  # two in the middle and the last one lost
                    raw.sendto(f, ("127.0.0.1", b.bound.port))
                await trio.sleep(0.005)  # a slow link: the request says at what rate they came
            with trio.fail_after(5):  # (when it asks is tested on virtual time: test_frag.py)
                request = await trio.socket.from_stdlib_socket(raw).recv(2048)
            assert is_request(request)
            parsed = parse_ask(request)
            assert parsed is not None and parsed.packet_id == 77
            assert parsed.indexes(len(frags)) == [2, 3, len(frags) - 1]
            assert 10_000 < parsed.rate < 1_000_000  # about 1000 bytes every 5 ms
            for k in (2, 3, len(frags) - 1):
                raw.sendto(frags[k], ("127.0.0.1", b.bound.port))
            await hb.wait(lambda: len(hb.packets) == 1)
        assert hb.packets[0][1] == big
        assert hb.faces[0].info()["reassembly"]["asked"] == 1


async def test_a_face_sends_again_the_fragments_its_peer_asks_for() -> None:
    async with channel(max_datagram=1000) as (a, _ha):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            face = a.face_for(raw.getsockname())
            big = Data(Name(), os.urandom(8000))
            face.send(big)
            peer = trio.socket.from_stdlib_socket(raw)
            with trio.fail_after(5):
                sent = [await peer.recv(2048) for _ in range(9)]
                header = parse_header(sent[0])
                assert header is not None and header[2] == 9
                raw.sendto(ask(header[0], [1, 5], 1000), ("127.0.0.1", a.bound.port))
                again = [await peer.recv(2048) for _ in range(2)]
        assert again == [sent[1], sent[5]]
        assert face.info()["resend"] == {
            "asked": 1, "resent": 2, "invalid": 0, "unknown": 0, "refused": 0
        }  # fmt: skip
        assert not face.closed and len(a.faces) == 1  # the request opened no face of its own


async def test_a_face_paces_its_data_at_the_rate_its_peer_reports() -> None:
    """A request for lost fragments says at what rate its sender gets this face's datagrams:
    the Data that follows waits in the face's pacer, which lets it go at that rate (the token
    bucket's timing is tested on virtual time: test_pacing.py); Interests are not held back."""
    async with channel(max_datagram=1400) as (a, _ha):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            face = a.face_for(raw.getsockname())
            peer = trio.socket.from_stdlib_socket(raw)
            # a request about a packet the face never sent (a guess, a spoofed address): no
            face.send(Data(N, os.urandom(3000)))  # three fragments
            with trio.fail_after(5):
                sent = [await peer.recv(2048) for _ in range(3)]
            header = parse_header(sent[0])
            assert header is not None
            raw.sendto(ask(header[0] + 1, [0], 1400, rate=200_000), ("127.0.0.1", a.bound.port))
            # one about a packet it sent: yes
            raw.sendto(ask(header[0], [1], 1400, rate=200_000), ("127.0.0.1", a.bound.port))
            with trio.fail_after(5):
                assert await peer.recv(2048) == sent[1]
            assert face.info()["pacing"]["rate"] == 200_000
            assert face.info()["resend"]["unknown"] == 1
            for k in range(10):
                face.send(Data(Name.parse(f"/d/{k}"), os.urandom(7000)))  # 6 datagrams each
            face.send(Interest(N, 99))
            assert face.pacer.queued == 10 and face.pacer.queued_bytes > 10 * 7000  # held back
            with trio.fail_after(5):
                first = decode_packet(await peer.recv(2048))
                assert first == Interest(N, 99)  # ahead of the Data that waits
                got = [await peer.recv(2048) for _ in range(60)]
        assert face.pacer.queued == 0 and face.pacer.queued_bytes == 0
        assert all(parse_header(d) is not None for d in got)  # every fragment of the ten


def test_a_size_probe_is_one_datagram_of_the_size_asked() -> None:
    for size in (100, 548, 1232, 1452, 1472):
        wire = _padded_probe(7, size)
        assert size - 4 <= len(wire) <= size
        probe = decode_packet(wire)
        assert type(probe) is Interest and probe.hop_limit == 0 and _is_size_probe(probe.name)
    assert len(_padded_probe(7, 9000)) == MAX_SIZE_PROBE < 9000  # a name holds 2048 bytes
    assert not _is_size_probe(PROBE)  # the liveness probe is answered by the node, as before


async def _peer_answering_up_to(raw: socket.socket, largest: int) -> None:
    """Play a peer whose link drops datagrams larger than ``largest``: answer the probes
    that are not, as a ccn node's face does."""
    peer = trio.socket.from_stdlib_socket(raw)
    while True:
        wire, addr = await peer.recvfrom(65536)
        if len(wire) > largest or is_fragment(wire):
            continue
        probe = decode_packet(wire)
        if type(probe) is Interest and probe.hop_limit == 0:
            small = Interest(PROBE, probe.nonce, 1000, hop_limit=0)
            await peer.sendto(encode(Nack(small, NackReason.HOP_LIMIT)), addr)


@pytest.mark.parametrize(("largest", "after"), [(600, 548), (65535, 1400), (0, 1400)])
async def test_a_face_falls_back_to_smaller_datagrams_its_peer_does_receive(
    largest: int, after: int
) -> None:
    """A peer behind a link with a smaller MTU (one that drops larger datagrams without a
    word) answers small probes but not one of the face's size: the face falls back (and the
    channel says so). One that answers all keeps the size; one that answers nothing too (its
    liveness is another matter)."""
    said: list[str] = []
    async with channel(max_datagram=1400) as (a, _ha), trio.open_nursery() as nursery:
        a.say = said.append
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            nursery.start_soon(_peer_answering_up_to, raw, largest)
            face = a.face_for(raw.getsockname())
            with trio.fail_after(10):
                await face.check_size()
            nursery.cancel_scope.cancel()
    assert face.fragmenter.max_datagram == after
    if after == 1400:
        assert face.size_fallback is None and not said
    else:
        assert face.size_fallback == (1400, 548) and face.info()["size_fallback"] == (1400, 548)
        assert said == [
            f"{face.remote} does not receive 1400-byte datagrams (a link on the way has a "
            "smaller MTU than this host's, and drops them without a word): sending it "
            "548-byte ones"
        ]


async def test_a_face_answers_its_peer_s_size_probe_itself_and_briefly() -> None:
    async with channel() as (b, hb):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            raw.sendto(_padded_probe(99, 1400), ("127.0.0.1", b.bound.port))
            with trio.fail_after(5):
                answer = decode_packet(await trio.socket.from_stdlib_socket(raw).recv(65536))
        assert answer == Nack(Interest(PROBE, 99, 1000, hop_limit=0), NackReason.HOP_LIMIT)
        assert hb.packets == []  # not the node's business


async def test_junk_from_a_stranger_opens_no_face() -> None:
    async with channel() as (b, hb):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"GET / HTTP/1.0\r\n\r\n", ("127.0.0.1", b.bound.port))
            raw.sendto(encode(Interest(N, 5)), ("127.0.0.1", b.bound.port))
            await hb.wait(lambda: len(hb.packets) == 1)
        assert len(hb.faces) == 1 and b.dropped == 1


async def test_a_fragment_header_alone_opens_no_face() -> None:
    # One byte (the fragment marker) or a header that contradicts itself must not open a face
    # (each on-demand face holds a slot of the node's max_faces); a real fragment does.
    header_only = bytes([0xC1])
    bad_count = bytes([0xC1, 1, 0, 0, 0, 7, 0, 0, 0, 1]) + b"x"  # count 1
    real = fragment(encode(Data(N, os.urandom(3000))), 1400, packet_id=9)
    async with channel() as (b, hb):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(header_only, ("127.0.0.1", b.bound.port))
            raw.sendto(bad_count, ("127.0.0.1", b.bound.port))
            for piece in real:
                raw.sendto(piece, ("127.0.0.1", b.bound.port))
            await hb.wait(lambda: len(hb.packets) == 1)
        assert len(hb.faces) == 1
        assert b.dropped == 2
        assert hb.faces[0].opened_by_peer and not hb.faces[0].persistent


async def test_packets_before_a_new_face_runs_are_kept_up_to_a_bound_then_counted() -> None:
    async with channel() as (ch, _hub):
        face = UdpFace(ch, ("127.0.0.1", 9), persistent=False, idle_timeout=5.0, max_datagram=1400)
        now = trio.current_time()
        for k in range(EARLY_MAX + 6):
            face.datagram_received(encode(Interest(N, k + 1)), now)
        assert ch.dropped == 6
        got: list[Packet] = []
        with trio.move_on_after(0.05):
            await face.run(lambda _f, p: got.append(p))
        assert [p.nonce for p in got if type(p) is Interest] == list(range(1, EARLY_MAX + 1))


async def test_incomplete_packets_expire_though_the_peer_falls_silent() -> None:
    # They used to be dropped only when the same peer sent again: a peer that sends first
    # fragments and stops pinned up to 16 MiB per face until the face's idle timeout.
    pieces = fragment(encode(Data(N, os.urandom(5000))), 1400, packet_id=3)
    async with channel() as (b, hb):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(encode(Interest(N, 1)), ("127.0.0.1", b.bound.port))  # opens the face
            await hb.wait(lambda: len(hb.packets) == 1)
            face = hb.faces[0]
            face.reassembler = Reassembler(timeout=0.2)
            raw.sendto(pieces[0], ("127.0.0.1", b.bound.port))
            with trio.fail_after(5):
                while face.reassembler.pending == 0:
                    await trio.sleep(0.01)
                while face.reassembler.pending:  # no more datagrams: the timer must do it
                    await trio.sleep(0.05)
        assert face.reassembler.counters.timed_out == 1 and not face.closed


async def test_on_demand_faces_time_out_when_idle() -> None:
    async with channel(idle_timeout=0.2) as (a, _ha), channel(idle_timeout=0.2) as (b, hb):
        fa = a.face_for(await a.resolve(b.bound))
        fa.send(Interest(N, 1))
        await hb.wait(lambda: len(hb.faces) == 1)
        await hb.wait(lambda: len(hb.closed) == 1)
        assert hb.faces[0].close_reason == "idle" and not b.faces
        assert not fa.closed  # the persistent side stays
        # the peer speaks again: a new face
        fa.send(Interest(N, 2))
        await hb.wait(lambda: len(hb.faces) == 2)


def dead_port() -> int:
    """A UDP port on loopback where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_peer_nobody_listens_for_answers_no_route_at_once() -> None:
    # The kernel's ICMP "port unreachable" for an Interest sent to the peer reaches that
    # peer's face: counted, and the Interest comes back as a "no route" Nack instead of
    # waiting for its timeout. Other peers of the socket are not affected: the error does not
    # cost the next datagram sent to another peer.
    async with channel() as (a, ha), channel() as (b, hb):
        dead = a.face_for(await a.resolve(FaceUri.parse(f"udp://127.0.0.1:{dead_port()}")))
        live = a.face_for(await a.resolve(b.bound))
        dead.send(Interest(N, 1))
        live.send(Interest(N, 2))  # right behind it, before the channel has read the error
        await ha.wait(lambda: len(ha.packets) == 1)
        assert ha.packets == [(dead, Nack(Interest(N, 1), NackReason.NO_ROUTE))]
        assert dead.unreachable == 1 and dead.unreachable_error == "Connection refused"
        assert dead.info()["unreachable"] == 1 and a.unreachable == 1
        await hb.wait(lambda: len(hb.packets) == 1)
        assert hb.packets[0][1] == Interest(N, 2)
        assert live.unreachable == 0 and a.dropped == 0 and not dead.closed
        # read to the end: a queued error would wake the channel's loop again and again
        assert receive_errors(a.sock) == ([], False)


async def test_a_probe_tells_an_answer_a_refusal_and_silence_apart() -> None:
    async with channel() as (a, _ha), channel() as (b, hb):
        dead = a.face_for(await a.resolve(FaceUri.parse(f"udp://127.0.0.1:{dead_port()}")))
        with trio.fail_after(2):
            assert await dead.probe(5.0) is False

        live = a.face_for(await a.resolve(b.bound))
        async with trio.open_nursery() as nursery:
            results: list[bool | None] = []

            async def probe() -> None:
                results.append(await live.probe(5.0))

            nursery.start_soon(probe)
            await hb.wait(lambda: len(hb.packets) == 1)
            face, asked = hb.packets[0]
            assert isinstance(asked, Interest) and asked.name == PROBE and asked.hop_limit == 0
            face.send(Nack(asked, NackReason.HOP_LIMIT))  # what a node answers
        assert results == [True]

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:  # bound, never answers
            mute.bind(("127.0.0.1", 0))
            silent = a.face_for(await a.resolve(FaceUri("udp", "127.0.0.1", mute.getsockname()[1])))
            assert await silent.probe(0.2) is None


class ReportingSocket:
    """A channel's socket on which the kernel has left a report of an ICMP error: the next
    recvfrom fails once with it, as Linux's does (here: "fragmentation needed")."""

    def __init__(self, sock: socket.socket, error: int) -> None:
        self.sock = sock
        self.error: int | None = error

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        if self.error is not None:
            error, self.error = self.error, None
            raise OSError(error, os.strerror(error))
        return self.sock.recvfrom(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


async def test_a_reported_icmp_error_of_any_kind_does_not_stop_the_channel() -> None:
    # With the socket's error queue on, every ICMP error (not only "unreachable") fails the
    # next recvfrom once: the channel skips it and goes on receiving.
    b = await UdpChannel.open(FaceUri.parse("udp://127.0.0.1:0"))
    reporting = ReportingSocket(b.sock, errno.EMSGSIZE)
    b.sock = reporting  # type: ignore[assignment]
    hb = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run, hb.on_face)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(encode(Interest(N, 1)), ("127.0.0.1", b.bound.port))
            await hb.wait(lambda: len(hb.packets) == 1)
        assert hb.packets[0][1] == Interest(N, 1) and reporting.error is None
        nursery.cancel_scope.cancel()


def test_path_datagram_size_on_loopback() -> None:
    size = path_datagram_size(socket.AF_INET, ("127.0.0.1", 9))
    assert 1400 <= size <= 65507


async def test_uri_round_trip() -> None:
    uri = FaceUri.parse("udp://10.0.0.1:6464")
    assert uri.scheme == "udp" and str(uri) == "udp://10.0.0.1:6464"
    assert str(FaceUri.parse("udp://[fe80::1]:6464")) == "udp://[fe80::1]:6464"
