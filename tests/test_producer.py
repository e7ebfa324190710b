"""The store-backed producer on its own: a real on-disk store and refs, Interests handed to it
directly or through its internal face, answers collected as the node would inject them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.producer import LATEST_FRESHNESS_MS, VERSION_FRESHNESS_MS, Producer
from ccn.store.files import publish
from ccn.store.objects import Kind, children, decode, id_of
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import DiskRefStore

DOC = Name.parse("/t/doc")


class Published:
    """A producer over a store holding two versions of ``/t/doc`` (v2: several chunks)."""

    def __init__(self, root: Path) -> None:
        self.store = DiskObjectStore(root / "store", fsync=False)
        self.refs = DiskRefStore(root / "store", fsync=False)
        self.root = root
        self.answers: list[tuple[int, Packet]] = []
        self.producer = Producer(
            self.store, self.refs, lambda face_id, p: self.answers.append((face_id, p))
        )
        src = root / "doc.bin"
        src.write_bytes(b"first version")
        self.v1 = publish(self.store, self.refs, DOC, src)
        src.write_bytes(os.urandom(400_000))
        self.v2 = publish(self.store, self.refs, DOC, src)

    def ask(self, name: Name | str, **fields: object) -> Data | Nack:
        n = Name.parse(name) if isinstance(name, str) else name
        return self.producer.answer(Interest(n, 1, **fields))  # type: ignore[arg-type]


@pytest.fixture
def pub(tmp_path: Path) -> Iterator[Published]:
    p = Published(tmp_path)
    yield p
    p.store.close()
    p.refs.close()


def _not_found(reply: Data | Nack, interest_name: str) -> None:
    assert type(reply) is Nack, reply
    assert reply.reason == NackReason.NOT_FOUND
    assert reply.interest.name == Name.parse(interest_name)


def test_a_version_record_by_its_number(pub: Published) -> None:
    for number, version in ((1, pub.v1), (2, pub.v2)):
        reply = pub.ask(f"/t/doc/v{number}")
        assert type(reply) is Data
        assert reply.name == DOC.with_version(number)
        assert reply.freshness_ms == VERSION_FRESHNESS_MS == 0
        assert reply.digest == id_of(version)
        assert decode(reply.content) == version
    # can-be-prefix changes nothing for a versioned name: still exactly that version
    reply = pub.ask("/t/doc/v1", can_be_prefix=True, must_be_fresh=True)
    assert type(reply) is Data and reply.name == DOC.with_version(1)


def test_the_latest_version_for_a_prefix_interest(pub: Published) -> None:
    interest = Interest(DOC, 5, can_be_prefix=True, must_be_fresh=True)
    reply = pub.producer.answer(interest)
    assert type(reply) is Data
    assert reply.name == DOC.with_version(2)
    assert interest.matches(reply)
    # short but non-zero freshness: a must-be-fresh Interest may take it from a cache a while
    assert reply.freshness_ms == LATEST_FRESHNESS_MS > 0
    assert decode(reply.content) == pub.v2
    # a third version becomes the answer at once
    src = pub.root / "doc3.bin"
    src.write_bytes(b"third")
    publish(pub.store, pub.refs, DOC, src)
    reply = pub.producer.answer(interest)
    assert type(reply) is Data and reply.name == DOC.with_version(3)


def test_a_name_without_version_and_without_can_be_prefix_is_not_found(pub: Published) -> None:
    _not_found(pub.ask("/t/doc"), "/t/doc")
    _not_found(pub.ask("/t/doc", must_be_fresh=True), "/t/doc")


def test_nameless_objects_by_digest_under_the_locator(pub: Published) -> None:
    version = pub.v2
    assert version.root_kind is Kind.MANIFEST  # 400 kB: a manifest of several chunks
    wanted = [(version.root, Kind.MANIFEST), *children(decode(pub.store.get(version.root)))]
    assert len(wanted) > 2
    for oid, kind in wanted:
        reply = pub.ask("/t/doc/v2", digest=oid)
        assert type(reply) is Data, kind
        assert reply.name == ROOT and reply.is_nameless
        assert reply.digest == oid  # its id is its integrity check
        assert reply.content == pub.store.get(oid)
        assert reply.freshness_ms == 0
    # the digest decides, not the versioned name it travels under: v1's name, v2's chunk
    reply = pub.ask("/t/doc/v1", digest=version.root)
    assert type(reply) is Data and reply.is_nameless and reply.digest == version.root


def test_what_is_not_here_is_a_not_found_nack(pub: Published) -> None:
    _not_found(pub.ask("/t/doc/v9"), "/t/doc/v9")
    _not_found(pub.ask("/t/doc/v0"), "/t/doc/v0")  # no version 0: the store refuses it
    _not_found(pub.ask("/t/other", can_be_prefix=True), "/t/other")
    _not_found(pub.ask("/t/doc/sub", can_be_prefix=True), "/t/doc/sub")
    _not_found(pub.ask("/t/doc/v2", digest=bytes(32)), "/t/doc/v2")
    # names no ref can have: the root, and a version of the root
    _not_found(pub.ask(ROOT, can_be_prefix=True), "/")
    _not_found(pub.ask("/v1"), "/v1")


def test_a_published_version_whose_object_is_gone_is_not_found(pub: Published) -> None:
    missing = bytes(range(32))
    pub.refs.compare_and_swap(Name.parse("/t/lost"), None, 1, missing)
    _not_found(pub.ask("/t/lost/v1"), "/t/lost/v1")
    _not_found(pub.ask("/t/lost", can_be_prefix=True), "/t/lost")


def test_the_internal_face_answers_interests_and_counts(pub: Published) -> None:
    face = pub.producer.face
    assert face.local and face.remote == "internal://producer"
    face.send(Interest(DOC.with_version(1), 1))
    face.send(Interest(DOC, 2, can_be_prefix=True))
    face.send(Interest(DOC.with_version(2), 3, digest=pub.v2.root))
    face.send(Interest(Name.parse("/t/nothing"), 4, can_be_prefix=True))
    assert [fid for fid, _ in pub.answers] == [face.id] * 4
    replies = [p for _, p in pub.answers]
    assert [type(p) for p in replies] == [Data, Data, Data, Nack]
    c = pub.producer.counters
    assert (c.interests, c.data, c.nacks) == (4, 3, 1)
    assert c.bytes == sum(len(p.content) for p in replies if type(p) is Data)
    assert face.counters.out_interests == 4
    # Data and Nacks sent to the producer are not questions: no answer, nothing counted
    face.send(replies[0])
    face.send(replies[3])
    assert len(pub.answers) == 4 and (c.interests, c.data, c.nacks) == (4, 3, 1)
    # a closed face passes nothing on
    face.close()
    face.send(Interest(DOC.with_version(1), 5))
    assert len(pub.answers) == 4 and c.interests == 4
