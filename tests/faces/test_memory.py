"""In-memory face pairs: two stream faces joined by a trio memory stream pair."""

from __future__ import annotations

import trio
import trio.testing

from ccn.faces.base import Deliver, Face
from ccn.faces.memory import memory_face_pair
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet

N = Name.parse("/a/b")


def _inbox() -> tuple[trio.MemoryReceiveChannel[Packet], Deliver]:
    send, receive = trio.open_memory_channel[Packet](100)

    def deliver(_face: Face, packet: Packet) -> None:
        send.send_nowait(packet)

    return receive, deliver


async def _receive(inbox: trio.MemoryReceiveChannel[Packet], count: int) -> list[Packet]:
    with trio.fail_after(5):
        return [await inbox.receive() for _ in range(count)]


async def test_memory_pair_carries_every_packet_type() -> None:
    a, b = memory_face_pair()
    inbox, deliver = _inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run, lambda f, p: None)
        nursery.start_soon(b.run, deliver)
        sent: list[Packet] = [
            Interest(N, 1),
            Data(N, b"x" * 70000, 10),
            Nack(Interest(N, 2), NackReason.CONGESTION),
        ]
        for p in sent:
            a.send(p)
        assert await _receive(inbox, 3) == sent
        assert (a.counters.out_interests, a.counters.out_data, a.counters.out_nacks) == (1, 1, 1)
        assert (b.counters.in_interests, b.counters.in_data, b.counters.in_nacks) == (1, 1, 1)
        assert a.counters.out_bytes == b.counters.in_bytes > 70000
        nursery.cancel_scope.cancel()


async def test_both_ways_names_and_locality() -> None:
    a, b = memory_face_pair(local=(True, False))
    assert (a.remote, b.remote) == ("memory://a", "memory://b")
    assert (a.local, b.local) == (True, False)
    assert [f.local for f in memory_face_pair()] == [False, False]
    to_a, deliver_a = _inbox()
    to_b, deliver_b = _inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run, deliver_a)
        nursery.start_soon(b.run, deliver_b)
        a.send(Interest(N, 7))
        assert await _receive(to_b, 1) == [Interest(N, 7)]
        b.send(Data(N, b"answer"))
        assert await _receive(to_a, 1) == [Data(N, b"answer")]
        nursery.cancel_scope.cancel()


async def test_closing_one_face_ends_the_other() -> None:
    a, b = memory_face_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, lambda f, p: None)
            nursery.start_soon(b.run, lambda f, p: None)
            await trio.testing.wait_all_tasks_blocked()
            a.close()
        # both runs returned: the nursery closed by itself
    assert a.closed and b.closed
    assert b.close_reason == "peer closed"
    b.send(Interest(N, 1))  # sending on a closed face is harmless
