from __future__ import annotations

from ccn.name import Name
from ccn.tables.dnl import DeadNonceList

A = Name.parse("/a")
B = Name.parse("/b")


def test_remembers_name_and_nonce_pairs_only() -> None:
    dnl = DeadNonceList(lifetime=6.0)
    dnl.add(A, None, 1, now=0.0)
    assert dnl.has(A, None, 1, now=1.0)
    assert not dnl.has(A, None, 2, now=1.0)
    assert not dnl.has(B, None, 1, now=1.0)
    assert dnl.hits == 1


def test_the_digest_is_part_of_the_interest() -> None:
    # The objects of one fetch share a locator: the same nonce drawn for two of them is no loop.
    dnl = DeadNonceList(lifetime=6.0)
    dnl.add(A, b"\x01" * 32, 5, now=0.0)
    assert dnl.has(A, b"\x01" * 32, 5, now=1.0)
    assert not dnl.has(A, b"\x02" * 32, 5, now=1.0)
    assert not dnl.has(A, None, 5, now=1.0)
    dnl.add(A, b"\x02" * 32, 5, now=0.5)
    assert len(dnl) == 2 and dnl._nonces == {5: 2}
    dnl.purge(now=7.0)
    assert not dnl._nonces


def test_entries_expire_after_lifetime() -> None:
    dnl = DeadNonceList(lifetime=2.0)
    dnl.add(A, None, 1, now=0.0)
    dnl.add(B, None, 2, now=1.0)
    assert dnl.has(A, None, 1, now=1.99)
    assert not dnl.has(A, None, 1, now=2.0)
    dnl.purge(now=2.5)
    assert len(dnl) == 1
    assert dnl.has(B, None, 2, now=2.5)
    dnl.purge(now=3.0)
    assert len(dnl) == 0
    assert not dnl._nonces


def test_size_bound_evicts_oldest() -> None:
    dnl = DeadNonceList(max_entries=2, lifetime=10.0)
    dnl.add(A, None, 1, 0.0)
    dnl.add(A, None, 2, 0.0)
    dnl.add(A, None, 1, 0.5)  # re-adding refreshes: now the newest
    dnl.add(A, None, 3, 1.0)
    assert len(dnl) == 2
    assert dnl.evictions == 1
    assert not dnl.has(A, None, 2, 1.0)
    assert dnl.has(A, None, 1, 1.0) and dnl.has(A, None, 3, 1.0)


def test_shared_nonce_across_names_survives_one_removal() -> None:
    dnl = DeadNonceList(max_entries=1, lifetime=10.0)
    dnl.add(A, None, 7, 0.0)
    dnl.add(B, None, 7, 0.0)
    assert not dnl.has(A, None, 7, 0.0)
    assert dnl.has(B, None, 7, 0.0)


def test_zero_size_remembers_nothing() -> None:
    dnl = DeadNonceList(max_entries=0)
    dnl.add(A, None, 1, 0.0)
    assert not dnl.has(A, None, 1, 0.0)


def test_discard_forgets_one_interest_and_keeps_the_others() -> None:
    dnl = DeadNonceList()
    a, b = A, B
    dnl.add(a, None, 7, now=0.0)
    dnl.add(b, None, 7, now=0.0)
    dnl.discard(a, None, 7)
    assert not dnl.has(a, None, 7, now=1.0)
    assert dnl.has(b, None, 7, now=1.0)  # the same nonce under another name stays
    dnl.discard(a, None, 7)  # not there: nothing happens
    dnl.discard(b, None, 7)
    assert not dnl.has(b, None, 7, now=1.0) and len(dnl) == 0
    dnl.add(a, None, 7, now=2.0)  # and it can come back
    assert dnl.has(a, None, 7, now=3.0)
