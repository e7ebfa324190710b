"""The client's pending Interests (ccn/pending.py): each Interest answered once, by the Data or
Nack that matches it, and nothing left registered after."""

from __future__ import annotations

import pytest

from ccn.errors import ConnectError
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.pending import Pending
from ccn.testing import RecordingFace


def _empty(p: Pending) -> bool:
    return not (p.by_digest or p.by_name or p.by_prefix or p.by_nonce)


def test_interests_under_one_key_are_each_answered_once() -> None:
    face = RecordingFace()
    pending = Pending(face)
    got: list[tuple[str, Data | Nack]] = []
    data = Data(Name.parse("/a/v1"), b"x")
    for tag, nonce in (("one", 1), ("two", 2), ("three", 3)):

        def answer(p: Data | Nack, tag: str = tag) -> None:
            got.append((tag, p))

        pending.send(Interest(data.name, nonce), answer)
    assert len(face.sent) == 3 and len(pending.by_name) == 1
    pending.deliver(face, data)
    pending.deliver(face, data)  # a second copy finds nothing waiting
    assert got == [("one", data), ("two", data), ("three", data)]
    assert _empty(pending)


def test_a_forgotten_interest_is_not_answered_but_the_others_under_its_key_are() -> None:
    face = RecordingFace()
    pending = Pending(face)
    got: list[int] = []
    blob = Data(ROOT, b"object")
    kept, dropped = (Interest(Name.parse("/loc"), n, digest=blob.digest) for n in (7, 8))
    pending.send(kept, lambda _p: got.append(7))
    pending.send(dropped, lambda _p: got.append(8))
    pending.forget(dropped)
    pending.deliver(face, blob)
    assert got == [7] and _empty(pending)


def test_a_prefix_interest_takes_a_longer_name_and_a_nack_its_own_interest() -> None:
    face = RecordingFace()
    pending = Pending(face)
    got: list[Data | Nack] = []
    latest = Interest(Name.parse("/doc"), 1, can_be_prefix=True)
    refused = Interest(Name.parse("/other"), 2)
    pending.send(latest, got.append)
    pending.send(refused, got.append)
    answer = Data(Name.parse("/doc/v3"), b"v3")
    pending.deliver(face, answer)
    pending.deliver(face, Nack(Interest(Name.parse("/other"), 99), NackReason.NO_ROUTE))  # not ours
    nack = Nack(refused, NackReason.NO_ROUTE)
    pending.deliver(face, nack)
    assert got == [answer, nack] and _empty(pending)


def test_a_closed_face_refuses_and_registers_nothing() -> None:
    face = RecordingFace()
    face.close()
    pending = Pending(face)
    with pytest.raises(ConnectError, match="closed"):
        pending.send(Interest(Name.parse("/a"), 1), lambda _p: None)
    assert face.sent == [] and _empty(pending)
