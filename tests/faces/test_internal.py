"""The internal face: what the forwarder sends it goes straight, synchronously, to its handler."""

from __future__ import annotations

import trio
import trio.testing

from ccn.faces.internal import InternalFace
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet

N = Name.parse("/i/x")


def test_send_calls_the_handler_at_once_and_counts() -> None:
    got: list[Packet] = []
    face = InternalFace("internal://app", got.append)
    assert face.local and face.remote == "internal://app"
    sent: list[Packet] = [Interest(N, 1), Data(N, b"x"), Nack(Interest(N, 2), NackReason.NO_ROUTE)]
    for p in sent:
        face.send(p)
    assert got == sent  # synchronously, in order, before send returned
    c = face.counters
    assert (c.out_interests, c.out_data, c.out_nacks) == (1, 1, 1)
    assert (c.in_interests, c.in_data, c.in_nacks) == (0, 0, 0)
    assert face.info()["out_interests"] == 1


def test_a_closed_face_passes_nothing_on() -> None:
    got: list[Packet] = []
    face = InternalFace("internal://app", got.append)
    face.close()
    face.close()  # idempotent
    face.send(Interest(N, 1))
    assert face.closed and got == [] and face.counters.out_interests == 0


def test_faces_get_distinct_ids() -> None:
    a = InternalFace("internal://a", lambda p: None)
    b = InternalFace("internal://b", lambda p: None)
    assert a.id != b.id


async def test_run_delivers_nothing_and_waits_until_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delivered: list[Packet] = []
    face = InternalFace("internal://app", lambda p: None)
    with trio.move_on_after(3600) as scope:
        await face.run(lambda f, p: delivered.append(p))
    assert scope.cancelled_caught and delivered == []
