from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ccn.codec import encode
from ccn.faces import stream
from ccn.faces.base import Face
from ccn.faces.memory import memory_face_pair
from ccn.faces.stream import StreamFace
from ccn.faces.transport import dial, open_listener, serve
from ccn.faces.uri import FaceUri
from ccn.framing import frame
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.testing import no_ipv6_loopback

N = Name.parse("/a/b")
_NO_V6 = no_ipv6_loopback()


class Inbox:
    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.event = trio.Event()

    def __call__(self, face: Face, packet: Packet) -> None:
        self.packets.append(packet)
        self.event.set()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.packets) < count:
                await self.event.wait()
                self.event = trio.Event()


async def test_malformed_frame_is_dropped_and_counted_after_a_valid_one() -> None:
    left, right = trio.testing.memory_stream_pair()
    face = StreamFace(right, "memory://peer", local=False)
    inbox = Inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(face.run, inbox)
        good = encode(Interest(N, 1))
        await left.send_all(frame(good) + frame(b"\x93\x01\x02garbage") + frame(good))
        await inbox.wait_for(2)
        assert face.counters.malformed == 1
        assert not face.closed
        nursery.cancel_scope.cancel()


async def test_a_stream_that_ends_inside_a_frame_counts_it_as_malformed() -> None:
    left, right = trio.testing.memory_stream_pair()
    face = StreamFace(right, "memory://peer", local=False)
    inbox = Inbox()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(face.run, inbox)
            whole = frame(encode(Interest(N, 1)))
            await left.send_all(whole + whole[:-3])  # the second cut short, then the end
            await left.send_eof()
            await inbox.wait_for(1)
    assert face.counters.malformed == 1 and face.closed
    assert face.close_reason is not None and "into a packet" in face.close_reason


async def test_a_stream_that_is_not_ccn_is_closed_without_harm_to_others() -> None:
    a, b = memory_face_pair()
    left, right = trio.testing.memory_stream_pair()
    bad = StreamFace(right, "memory://http", local=False)
    inbox = Inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bad.run, Inbox())
        nursery.start_soon(a.run, Inbox())
        nursery.start_soon(b.run, inbox)
        await left.send_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        with trio.fail_after(5):
            while not bad.closed:
                await trio.sleep(0.01)
        assert bad.close_reason is not None and "not a ccn stream" in bad.close_reason
        a.send(Interest(N, 9))
        await inbox.wait_for(1)
        nursery.cancel_scope.cancel()


async def test_bounded_send_queue_drops_and_counts() -> None:
    left, _right = trio.testing.memory_stream_pair()  # nobody reads: a stalled peer
    face = StreamFace(left, "memory://slow", local=False, max_queue_packets=10)
    for i in range(25):
        face.send(Interest(N, i))
    assert face.counters.dropped == 15
    assert face.counters.out_interests == 10


async def test_tcp_and_unix_on_loopback(tmp_path: Path) -> None:
    for uri in (FaceUri.parse("tcp://127.0.0.1:0"), FaceUri.parse(f"unix://{tmp_path}/s.sock")):
        listener, bound = await open_listener(uri)
        inbox = Inbox()

        async def on_face(face: StreamFace, inbox: Inbox = inbox) -> None:
            await face.run(inbox)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, listener, bound, on_face)
            with trio.fail_after(5):
                client = await dial(bound)
            assert client.local
            nursery.start_soon(client.run, Inbox())
            for i in range(100):
                client.send(Interest(N, i))
            await inbox.wait_for(100)
            assert [p.nonce for p in inbox.packets if type(p) is Interest] == list(range(100))
            nursery.cancel_scope.cancel()


@pytest.mark.skipif(_NO_V6 is not None, reason=_NO_V6 or "")
async def test_tcp_over_ipv6_loopback_both_ways() -> None:
    listener, bound = await open_listener(FaceUri.parse("tcp://[::1]:0"))
    assert bound.host == "::1" and str(bound) == f"tcp://[::1]:{bound.port}"
    accepted: list[StreamFace] = []
    inbox = Inbox()

    async def on_face(face: StreamFace) -> None:
        accepted.append(face)

        def echo(f: Face, packet: Packet) -> None:
            inbox(f, packet)
            f.send(Data(N, b"back"))

        await face.run(echo)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, listener, bound, on_face)
        with trio.fail_after(5):
            client = await dial(FaceUri.parse(str(bound)))
        assert client.local and client.remote == str(bound)
        answers = Inbox()
        nursery.start_soon(client.run, answers)
        client.send(Interest(N, 1))
        await inbox.wait_for(1)
        await answers.wait_for(1)
        assert answers.packets == [Data(N, b"back")]
        (face,) = accepted
        assert face.local and face.remote.startswith("tcp://[::1]:")
        nursery.cancel_scope.cancel()


async def test_replies_to_a_burst_leave_in_one_write_when_it_ends(monkeypatch: Any) -> None:
    """What the node sends while a face delivers a burst is written when the burst ends, by the
    reading task, in one write; the face's write loop never has to be woken for it."""
    monkeypatch.setattr(stream, "READ_QUANTUM", 60.0)  # one burst, however slow the machine
    a, b = socket.socketpair()
    face = StreamFace(trio.SocketStream(trio.socket.from_stdlib_socket(a)), "pair", local=True)
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    woken: list[int] = []
    sends = face._send

    async def counting_send(parts: list[bytes | memoryview], total: int) -> None:
        woken.append(total)
        await sends(parts, total)

    monkeypatch.setattr(face, "_send", counting_send)

    def echo(f: Face, packet: Packet) -> None:
        assert type(packet) is Interest
        f.send(Nack(packet, NackReason.NO_ROUTE))

    count = 50
    wire = b"".join(frame(encode(Interest(N, i))) for i in range(count))
    expected = b"".join(
        frame(encode(Nack(Interest(N, i), NackReason.NO_ROUTE))) for i in range(count)
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(face.run, echo)
        await peer.send_all(wire)
        with trio.fail_after(5):
            got = b""
            while len(got) < len(expected):
                got += await peer.receive_some(1 << 20)
        nursery.cancel_scope.cancel()
    assert got == expected
    assert woken == [] and face.counters.out_bytes == len(expected)
    await peer.aclose()


async def test_packets_coming_one_at_a_time_cost_one_read_each(monkeypatch: Any) -> None:
    """A read that took less than it asked for emptied the socket: the face then waits for the
    next packet before reading, rather than trying a read that fails (a system call and an
    exception per packet when a peer sends one and waits for the answer)."""
    a, b = socket.socketpair()
    face = StreamFace(trio.SocketStream(trio.socket.from_stdlib_socket(a)), "pair", local=True)
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    fd, reads, real_read = a.fileno(), [0], os.read

    def counting_read(at: int, size: int) -> bytes:
        reads[0] += at == fd
        return real_read(at, size)

    monkeypatch.setattr(os, "read", counting_read)
    inbox = Inbox()
    count = 20
    async with trio.open_nursery() as nursery:
        nursery.start_soon(face.run, inbox)
        for i in range(count):
            await peer.send_all(frame(encode(Interest(N, i))))
            await inbox.wait_for(i + 1)
        nursery.cancel_scope.cancel()
    # One read per packet, and one that found the socket empty before the first arrived.
    assert len(inbox.packets) == count and reads[0] <= count + 1
    await peer.aclose()


def test_a_packet_sent_outside_a_burst_is_written_at_once() -> None:
    """A client's Interest goes to the socket inside ``send``: no write loop, no scheduler."""
    a, b = socket.socketpair()
    face = StreamFace(trio.SocketStream(trio.socket.from_stdlib_socket(a)), "pair", local=True)
    interest = Interest(N, 7)
    face.send(interest)  # no trio run, no face.run: only a direct write can deliver it
    b.setblocking(False)
    assert b.recv(1 << 16) == frame(encode(interest))
    assert face.counters.out_bytes == len(frame(encode(interest))) and not face._queue
    a.close()
    b.close()


def test_partial_writes_resume_where_they_stopped() -> None:
    """The non-blocking writer hands over what the socket takes and returns the rest, exactly:
    large pieces as they are, a full socket mid-piece, many pieces past the iovec limit."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    rng = random.Random(5)
    parts: list[bytes | memoryview] = [
        rng.randbytes(rng.choice([3, 700, 40_000, 1 << 20])) for _ in range(1500)
    ]
    expected = b"".join(parts)
    views = stream._views(parts, len(expected))
    assert len(views) == len(parts)  # large pieces: no joined copy
    got = bytearray()
    for _ in range(100_000):
        if not views:
            break
        with contextlib.suppress(BlockingIOError):
            views = stream._write_some(a.fileno(), views)
        while True:
            try:
                chunk = b.recv(1 << 20)
            except BlockingIOError:
                break
            got += chunk
    while len(got) < len(expected):
        got += b.recv(1 << 20)
    assert not views and bytes(got) == expected
    a.close()
    b.close()
