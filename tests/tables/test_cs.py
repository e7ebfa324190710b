from __future__ import annotations

import pytest
from blake3 import blake3

from ccn.name import ROOT, Name
from ccn.packet import Data, Interest
from ccn.tables.cs import ContentStore

N = Name.parse


def test_exact_lookup_and_counters() -> None:
    cs = ContentStore()
    d = Data(N("/a/b"), b"hello")
    assert cs.insert(d, 0.0)
    assert cs.lookup(Interest(N("/a/b"), 1), 0.0) is d
    assert cs.lookup(Interest(N("/a"), 1), 0.0) is None
    assert cs.lookup(Interest(N("/a/b/c"), 1), 0.0) is None
    assert (cs.hits, cs.misses, cs.inserts, len(cs)) == (1, 2, 1, 1)
    assert cs.bytes == 5 + cs.entry_overhead


def test_digest_hit_across_names() -> None:
    cs = ContentStore()
    chunk = Data(ROOT, b"chunk of v3")
    cs.insert(chunk, 0.0)
    digest = blake3(b"chunk of v3").digest()
    # The chunk was fetched for /a/v3; a digest Interest located at /a/v4 finds it too.
    assert cs.lookup(Interest(N("/a/v4"), 1, digest=digest), 0.0) is chunk
    assert cs.lookup(Interest(N("/a/v4"), 1, digest=bytes(32)), 0.0) is None


def test_nameless_data_is_indexed_by_digest_only() -> None:
    cs = ContentStore()
    cs.insert(Data(ROOT, b"x"), 0.0)
    assert cs.lookup(Interest(N("/a"), 1, can_be_prefix=True), 0.0) is None
    assert cs.get_by_digest(blake3(b"x").digest()) is not None


@pytest.mark.parametrize(
    ("freshness_ms", "at", "must_be_fresh", "hit"),
    [
        (0, 0.0, False, True),
        (0, 0.0, True, False),  # 0: never fresh
        (1000, 0.5, True, True),
        (1000, 0.999, True, True),
        (1000, 1.0, True, False),
        (1000, 5.0, False, True),  # stale Data still answers Interests that allow it
    ],
)
@pytest.mark.parametrize("kind", ["exact", "prefix", "digest"])
def test_freshness(freshness_ms: int, at: float, must_be_fresh: bool, hit: bool, kind: str) -> None:
    cs = ContentStore()
    d = Data(N("/a/b"), b"x", freshness_ms=freshness_ms)
    cs.insert(d, 0.0)
    interest = Interest(
        N("/a") if kind == "prefix" else N("/a/b"),
        1,
        must_be_fresh=must_be_fresh,
        can_be_prefix=kind == "prefix",
        digest=d.digest if kind == "digest" else None,
    )
    assert (cs.lookup(interest, at) is d) is hit


def test_prefix_lookup_returns_most_recent_fresh_match() -> None:
    cs = ContentStore()
    v2 = Data(N("/a/v2"), b"2", freshness_ms=10_000)
    v3 = Data(N("/a/v3"), b"3", freshness_ms=0)
    other = Data(N("/ab/v9"), b"9", freshness_ms=10_000)
    for d in (v2, v3, other):
        cs.insert(d, 0.0)
    assert cs.lookup(Interest(N("/a"), 1, can_be_prefix=True), 1.0) is v3
    assert cs.lookup(Interest(N("/a"), 1, can_be_prefix=True, must_be_fresh=True), 1.0) is v2
    cs.insert(v2, 2.0)  # re-inserted: now the most recent
    assert cs.lookup(Interest(N("/a"), 1, can_be_prefix=True), 2.0) is v2


def test_a_version_of_a_deeper_name_never_answers_the_latest_of_a_prefix() -> None:
    """With only /n/sub/v1 cached, "latest of /n" was answered with it, and the client could do
    nothing with it: `ccn get /n` failed for a second after someone fetched /n/sub, and with
    the producer gone for as long as the record stayed cached (a hunt across three nodes)."""
    cs = ContentStore()
    cs.insert(Data(N("/n/sub/v1"), b"deeper", 1000), 0.0)
    cs.insert(Data(N("/n/sub/seg"), b"other", 1000), 0.5)
    latest = Interest(N("/n"), 1, can_be_prefix=True)
    fresh = Interest(N("/n"), 2, can_be_prefix=True, must_be_fresh=True)
    got = cs.lookup(latest, 1.0)  # a deeper name that is no version still answers
    assert got is not None and got.name == N("/n/sub/seg")
    cs.erase(N("/n/sub/seg"))
    assert cs.lookup(latest, 1.0) is None and cs.lookup(fresh, 0.5) is None
    assert cs.lookup(Interest(N("/n/sub"), 3, can_be_prefix=True), 1.0) is not None
    own = Data(N("/n/v2"), b"own", 1000)
    cs.insert(own, 2.0)
    assert cs.lookup(latest, 2.0) is own


def test_a_version_of_the_prefix_itself_goes_before_deeper_names() -> None:
    # "latest" for /videos got /videos/talk/v1 (inserted later) instead of /videos/v3
    cs = ContentStore()
    own = Data(N("/videos/v3"), b"own", 1000)
    deeper = Data(N("/videos/talk/v1"), b"deeper", 1000)
    cs.insert(own, 0.0)
    cs.insert(deeper, 1.0)
    latest = Interest(N("/videos"), 1, can_be_prefix=True)
    assert cs.lookup(latest, 1.0) is own
    assert cs.lookup(Interest(N("/videos/talk"), 1, can_be_prefix=True), 1.0) is deeper
    cs.insert(Data(N("/videos/v"), b"not a version", 1000), 2.0)  # "v" alone is no version
    assert cs.lookup(latest, 2.0) is own
    fresh = Interest(N("/videos"), 1, can_be_prefix=True, must_be_fresh=True)
    assert cs.lookup(fresh, 0.5) is own
    assert cs.lookup(fresh, 1.5) is not own  # own is stale: fresh deeper names are all there is
    cs.erase(N("/videos/v3"))
    assert cs.lookup(latest, 3.0) is not None  # with no version of its own, any name under it


def test_lru_eviction_under_byte_budget() -> None:
    cs = ContentStore(max_bytes=3 * 110, entry_overhead=10)
    datas = [Data(N(f"/d/{i}"), bytes([i]) * 100) for i in range(4)]
    for d in datas[:3]:
        cs.insert(d, 0.0)
    assert cs.bytes == 330
    cs.lookup(Interest(N("/d/0"), 1), 0.0)  # /d/0 is now the most recently used
    cs.insert(datas[3], 0.0)
    assert cs.evictions == 1 and len(cs) == 3 and cs.bytes == 330
    assert cs.lookup(Interest(N("/d/1"), 1), 0.0) is None
    for i in (0, 2, 3):
        assert cs.lookup(Interest(N(f"/d/{i}"), 1), 0.0) is datas[i]
    # Evicted from every index.
    assert cs.get_by_digest(datas[1].digest) is None
    assert cs.lookup(Interest(N("/d"), 1, can_be_prefix=True), 0.0) is datas[3]


def test_entry_count_bound_and_oversized_data() -> None:
    cs = ContentStore(max_bytes=1000, max_entries=2, entry_overhead=0)
    assert not cs.insert(Data(N("/big"), bytes(1001)), 0.0)
    for i in range(3):
        cs.insert(Data(N(f"/d/{i}"), b"x"), 0.0)
    assert len(cs) == 2 and cs.evictions == 1
    assert ContentStore(max_entries=0).insert(Data(N("/a"), b""), 0.0) is False


def test_an_object_too_large_answers_the_next_lookup_only() -> None:
    cs = ContentStore(max_bytes=1000, entry_overhead=0)
    big = Data(ROOT, bytes(1001))
    assert not cs.insert(big, 0.0)
    asking = Interest(N("/loc"), 1, digest=big.digest)
    cs.pass_on(big)
    assert cs.lookup(asking, 0.0) is big and cs.hits == 1
    assert cs.lookup(asking, 0.0) is None and cs.misses == 1  # not kept: the budget holds
    assert len(cs) == 0 and cs.bytes == 0
    cs.pass_on(big)  # the next lookup is for something else: it is dropped all the same
    assert cs.lookup(Interest(N("/other"), 2), 0.0) is None
    assert cs.lookup(asking, 0.0) is None
    cs.pass_on(big)
    assert cs.lookup(Interest(N("/loc"), 3, digest=big.digest, must_be_fresh=True), 0.0) is None


def test_replacing_same_name_and_shared_digest() -> None:
    cs = ContentStore()
    old = Data(N("/a"), b"old")
    new = Data(N("/a"), b"new")
    cs.insert(old, 0.0)
    cs.insert(new, 0.0)
    assert len(cs) == 1 and cs.bytes == 3 + cs.entry_overhead
    assert cs.get_by_digest(old.digest) is None
    assert cs.lookup(Interest(N("/a"), 1), 0.0) is new
    # Same content under a name and nameless: both cached, the digest index survives either.
    named = Data(N("/b"), b"same")
    nameless = Data(ROOT, b"same")
    cs.insert(named, 0.0)
    cs.insert(nameless, 0.0)
    assert cs.erase(N("/b"))
    assert not cs.erase(N("/b"))
    assert cs.get_by_digest(named.digest) is nameless
    cs.clear()
    assert len(cs) == 0 and cs.bytes == 0


def test_evicted_data_is_kept_for_the_owner_only_when_asked() -> None:
    cs = ContentStore(max_bytes=3 * 100, entry_overhead=0)
    chunks = [Data(ROOT, bytes([i]) * 100) for i in range(4)]
    too_big = Data(ROOT, b"z" * 400)
    for d in chunks[:2]:
        cs.insert(d, 0.0)
    cs.keep_evicted = True
    cs.insert(chunks[2], 0.0)
    cs.lookup(Interest(N("/l"), 1, digest=chunks[0].digest), 0.0)  # 0 is now recently used
    cs.insert(chunks[3], 0.0)
    assert not cs.insert(too_big, 0.0)
    assert cs.evicted == [chunks[1], too_big]
    assert list(cs.nameless_recent_first()) == [chunks[3], chunks[0], chunks[2]]
    cs.keep_evicted = False
    cs.insert(Data(ROOT, b"y" * 100), 0.0)
    assert len(cs.evicted) == 2
