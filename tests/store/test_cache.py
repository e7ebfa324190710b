"""The persistent cache tier: segment files, verify on read, byte budget, LRU order that
survives a restart, recovery from a torn append, concurrent readers, the bounded feeder."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import trio

from ccn.errors import CorruptObject, NewerFormat, ObjectNotFound
from ccn.store.cache import BATCH_MAX_BYTES, CacheFeeder, CacheInUse, CacheTier
from ccn.store.objects import Blob, encode, object_id
from ccn.store.objstore import DiskObjectStore
from ccn.store.segment import HEADER_SIZE
from ccn.testing import flip_byte


def _obj(size: int) -> tuple[bytes, bytes]:
    raw = encode(Blob(os.urandom(size)))
    return object_id(raw), raw


def _segments(root: Path) -> list[Path]:
    return sorted(root.glob("seg-*.log"))


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.iterdir())


def test_objects_are_appended_to_a_segment_and_read_back(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    objs = [_obj(70_000), _obj(10), _obj(5000)]
    assert tier.add_many(objs) == 3
    assert tier.add_many(objs) == 0  # known: not written again
    [seg] = _segments(tmp_path)
    for oid, raw in objs:
        assert tier.known(oid)
        assert tier.get(oid) == raw == tier.verify(oid)
        where = tier.locate(oid)
        assert where is not None and where[0] == str(seg) and where[2] == len(raw)
    assert tier.bytes == sum(len(raw) for _, raw in objs)
    assert seg.stat().st_size == 8 + sum(HEADER_SIZE + len(raw) for _, raw in objs)
    assert not (tmp_path / "objects").exists()  # no loose files
    assert tier.counters.hits == 3 and tier.counters.writes == 3
    with pytest.raises(ObjectNotFound):
        tier.verify(b"\x01" * 32)
    tier.close()


def test_budget_evicts_least_recently_used(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path, max_bytes=3500)
    objs = [_obj(1000) for _ in range(3)]
    assert tier.add_many(objs) == 3
    assert tier.get(objs[0][0]) == objs[0][1]  # a hit: now most recent
    d = _obj(1000)
    tier.add_many([d])
    assert not tier.known(objs[1][0])  # the least recently used went
    assert all(tier.known(o) for o in (objs[0][0], objs[2][0], d[0]))
    assert tier.bytes <= 3500 and tier.counters.evictions == 1
    assert tier.locate(objs[1][0]) is None and tier.get(objs[1][0]) is None
    tier.close()


def test_the_number_of_objects_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    # The index costs ~250 B of memory per object and only bytes were bounded: 1 GiB of tiny
    # objects is millions of entries. max_entries bounds them as the byte budget does.
    tier = CacheTier(tmp_path, max_bytes=1 << 30, max_entries=100)
    objs = [_obj(10) for _ in range(100)]
    assert tier.add_many(objs) == 100
    assert tier.get(objs[0][0]) == objs[0][1]  # a hit: now most recent
    more = [_obj(10) for _ in range(30)]
    tier.add_many(more)
    assert tier.status()["objects"] == 100 and tier.status()["max_entries"] == 100
    assert tier.known(objs[0][0]) and all(tier.known(oid) for oid, _ in more)
    assert not any(tier.known(oid) for oid, _ in objs[1:31])  # the least recently used went
    assert tier.counters.evictions == 30 and tier.bytes == sum(len(r) for _, r in more) + sum(
        len(r) for _, r in [objs[0], *objs[31:]]
    )
    tier.close()
    fewer = CacheTier(tmp_path, max_entries=10)  # a smaller bound evicts at open, LRU first
    assert fewer.ids() == [oid for oid, _ in more[-10:]]
    fewer.close()
    assert len(CacheTier(tmp_path).ids()) == 10  # and the evictions are remembered


def test_objects_and_their_order_survive_a_restart(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path, max_bytes=1 << 20)
    objs = [_obj(1000) for _ in range(3)]
    tier.add_many(objs)
    assert tier.get(objs[0][0]) is not None  # recency written back at close
    tier.close()
    again = CacheTier(tmp_path, max_bytes=1 << 20)
    assert again.ids() == [objs[1][0], objs[2][0], objs[0][0]]
    assert again.get(objs[2][0]) == objs[2][1]
    again.close()
    smaller = CacheTier(tmp_path, max_bytes=2100)  # a smaller budget evicts at open, LRU first
    assert smaller.ids() == [objs[0][0], objs[2][0]]
    smaller.close()
    assert CacheTier(tmp_path).ids() == [objs[0][0], objs[2][0]]  # evictions are remembered


def test_bad_offers_are_not_stored(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    oid, raw = _obj(100)
    noncanonical = b"\x92\x01\xc5\x00\x01x"  # a 1-byte blob with a 2-byte length
    pairs = [
        (oid, b"not an object"),
        (b"\x00" * 32, raw),  # a valid object under another id
        (object_id(noncanonical), noncanonical),
        (oid[:16], raw),
    ]
    assert tier.add_many(pairs) == 0
    assert tier.ids() == [] and tier.bytes == 0
    assert tier.add_many([(oid, raw), (oid, raw)]) == 1


def test_damaged_cache_object_is_not_served(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    oid, raw = _obj(100)
    other = _obj(100)
    tier.add_many([(oid, raw), other])
    where = tier.locate(oid)
    assert where is not None
    flip_byte(where[0], where[1] + where[2] - 1)
    with pytest.raises(CorruptObject):
        tier.verify(oid)
    assert tier.known(oid)  # verify changes nothing
    assert tier.get(oid) is None and not tier.known(oid)
    assert tier.counters.corrupt == 1 and tier.bytes == len(other[1])
    tier.close()
    again = CacheTier(tmp_path)  # forgotten for good, until it is written again
    assert again.ids() == [other[0]]
    assert again.add_many([(oid, raw)]) == 1 and again.get(oid) == raw
    again.close()


def test_a_recently_used_object_survives_the_drop_of_its_segment(tmp_path: Path) -> None:
    budget, segment = 64 << 10, 16 << 10
    tier = CacheTier(tmp_path, max_bytes=budget, segment_bytes=segment)
    favourite = _obj(2000)
    tier.add_many([favourite])
    first = tier.locate(favourite[0])
    assert first is not None
    written = 1
    for _ in range(100):
        tier.add_many([_obj(2000) for _ in range(4)])
        written += 4
        assert tier.get(favourite[0]) == favourite[1]
        assert tier.bytes <= budget
        # live objects + their headers + at most one segment of dead records, plus one batch
        assert _disk_bytes(tmp_path) <= budget + segment + (len(tier.ids()) + 4) * HEADER_SIZE
        if written * 2003 > budget:  # full, and kept full: only least recently used go
            assert tier.bytes > budget - 4 * 2003
    assert not Path(first[0]).exists()  # the first segment went; the favourite moved forward
    assert tier.locate(favourite[0]) != first
    assert tier.counters.evictions == written - len(tier.ids())
    assert len(_segments(tmp_path)) <= budget // segment + 2
    ids = tier.ids()
    assert ids[-1] == favourite[0]
    tier.close()
    again = CacheTier(tmp_path, max_bytes=budget, segment_bytes=segment)
    assert again.ids() == ids
    assert again.get(favourite[0]) == favourite[1]
    assert all(again.verify(oid) for oid in ids)
    again.close()


def _three_written(
    tmp_path: Path, which: int
) -> tuple[list[tuple[bytes, bytes]], tuple[str, int, int]]:
    """Three objects appended one write each to a closed tier; where object ``which`` is."""
    tier = CacheTier(tmp_path)
    objs = [_obj(3000) for _ in range(3)]
    for pair in objs:
        tier.add_many([pair])
    where = tier.locate(objs[which][0])
    assert where is not None
    tier.close()
    return objs, where


def test_a_torn_final_record_is_cut_off(tmp_path: Path) -> None:
    objs, (path, offset, _length) = _three_written(tmp_path, 2)
    os.truncate(path, offset + 1000)  # a crash in the middle of the last append
    again = CacheTier(tmp_path)
    assert again.ids() == [objs[0][0], objs[1][0]]
    assert os.path.getsize(path) == offset - HEADER_SIZE  # back to the last whole record
    assert again.get(objs[1][0]) == objs[1][1]
    more = _obj(500)
    assert again.add_many([more, objs[2]]) == 2
    again.close()
    third = CacheTier(tmp_path)
    assert third.ids() == [objs[0][0], objs[1][0], more[0], objs[2][0]]
    assert all(third.get(oid) == raw for oid, raw in [*objs, more])
    third.close()


def test_a_damaged_record_header_is_skipped(tmp_path: Path) -> None:
    objs, where = _three_written(tmp_path, 1)
    flip_byte(where[0], where[1] - HEADER_SIZE + 12)  # the length field of the middle record
    again = CacheTier(tmp_path)
    assert again.ids() == [objs[0][0], objs[2][0]]
    assert again.get(objs[2][0]) == objs[2][1]
    again.close()


def test_a_cache_of_loose_files_from_an_earlier_version_is_imported(tmp_path: Path) -> None:
    old = DiskObjectStore(tmp_path, fsync=False)
    objs = [_obj(1000) for _ in range(4)]
    for _, raw in objs:
        old.put(raw)
    for i, age in enumerate([30, 10, 20, 40]):  # order of use: 3, 0, 2, 1
        where = old.locate(objs[i][0])
        assert where is not None
        os.utime(where[0], (1000 - age, 1000 - age))
    damaged = old.locate(objs[2][0])
    assert damaged is not None
    os.chmod(damaged[0], 0o644)
    Path(damaged[0]).write_bytes(b"garbage")
    old.close()
    tier = CacheTier(tmp_path)
    assert tier.ids() == [objs[3][0], objs[0][0], objs[1][0]]
    assert tier.get(objs[1][0]) == objs[1][1]
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock")
    assert left == [p.name for p in _segments(tmp_path)]
    tier.close()


def test_readers_never_see_wrong_bytes_while_a_writer_appends_and_evicts(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path, max_bytes=64 << 10, segment_bytes=16 << 10)
    written: list[tuple[bytes, bytes]] = []
    failure: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(200):
                batch = [_obj(random.randrange(1, 3000)) for _ in range(4)]
                tier.add_many(batch)
                written.extend(batch)
                if i % 10 == 0:
                    tier.persist_order()
        except BaseException as e:
            failure.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    served = 0
    rng = random.Random(1)
    while writer.is_alive():
        if not written:
            continue
        # Recent objects, so that hits keep some of them alive across segment drops.
        oid, raw = written[-rng.randrange(1, min(len(written), 40) + 1)]
        got = tier.get(oid)
        assert got is None or got == raw
        served += got is not None
    writer.join()
    assert not failure, failure
    assert served > 0 and tier.counters.corrupt == 0
    assert tier.bytes <= 64 << 10 and len(_segments(tmp_path)) <= 6
    for oid in tier.ids():
        tier.verify(oid)
    tier.close()


async def test_feeder_writes_in_the_background_and_drops_when_full(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    feeder = CacheFeeder(tier, max_queue_bytes=5000)
    objs = [_obj(1000) for _ in range(6)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feeder.run)
        for oid, raw in objs:
            feeder.offer(oid, raw)
        assert tier.counters.dropped == 2  # the queue holds at most 5000 bytes
        await feeder.flush()
        assert [tier.known(o) for o, _ in objs] == [True] * 4 + [False] * 2
        feeder.offer(*objs[5])
        await feeder.flush()
        assert tier.known(objs[5][0])
        nursery.cancel_scope.cancel()


class _CountingTier(CacheTier):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.batches: list[int] = []

    def add_many(
        self, objects: Iterable[tuple[bytes, bytes]], *, ids_verified: bool = False
    ) -> int:
        batch = list(objects)
        self.batches.append(sum(len(raw) for _, raw in batch))
        return super().add_many(batch, ids_verified=ids_verified)


async def test_feeder_batches_by_bytes(tmp_path: Path) -> None:
    tier = _CountingTier(tmp_path)
    feeder = CacheFeeder(tier)
    objs = [_obj(500_000) for _ in range(BATCH_MAX_BYTES // 500_000 + 8)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feeder.run)
        for oid, raw in objs:
            feeder.offer(oid, raw)
        await feeder.flush()
        nursery.cancel_scope.cancel()
    assert all(tier.known(oid) for oid, _ in objs)
    assert len(tier.batches) >= 2 and all(b < BATCH_MAX_BYTES + 500_010 for b in tier.batches)


class _FailingTier(CacheTier):
    """A disk that is full for the first ``failures`` batches."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def add_many(
        self, objects: Iterable[tuple[bytes, bytes]], *, ids_verified: bool = False
    ) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().add_many(objects, ids_verified=ids_verified)


async def test_feeder_survives_a_failing_disk(tmp_path: Path) -> None:
    """A write error loses that batch to the cache (counted), never the node's feeder task."""
    tier = _FailingTier(tmp_path, failures=2)
    told: list[str] = []
    feeder = CacheFeeder(tier, report=told.append)
    lost, lost_too, kept = _obj(1000), _obj(1000), _obj(1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feeder.run)
        for obj in (lost, lost_too, kept):
            feeder.offer(*obj)
            await feeder.flush()
        nursery.cancel_scope.cancel()
    assert not tier.known(lost[0]) and not tier.known(lost_too[0]) and tier.known(kept[0])
    assert tier.counters.write_errors == 2 and tier.counters.dropped == 2
    assert tier.get(kept[0]) == kept[1]
    # said once (not once per batch), naming the tier and the reason
    assert told == [
        f"cannot write the cache tier {tier.root}: No space left on device; "
        "batches lost so far: 1; forwarding goes on"
    ]


def test_one_opener_at_a_time(tmp_path: Path) -> None:
    # two nodes on one store appended to the same segments, and fsck found damaged objects
    tier = CacheTier(tmp_path)
    with pytest.raises(CacheInUse, match="in use by another process"):
        CacheTier(tmp_path)
    tier.close()
    again = CacheTier(tmp_path)  # closing (or dying) lets the next one in
    again.close()


def test_a_segment_of_a_newer_format_is_refused_and_kept(tmp_path: Path) -> None:
    # It used to be deleted at open as "torn at creation": the cache a newer ccn kept was lost
    # without a word. A segment torn at creation (shorter than its magic) still goes.
    tier = CacheTier(tmp_path)
    tier.add_many([_obj(100)])
    tier.close()
    [seg] = _segments(tmp_path)
    size = seg.stat().st_size
    (tmp_path / "seg-00000009.log").write_bytes(b"CCNS")  # torn at creation
    with open(seg, "r+b") as f:
        f.seek(7)
        f.write(b"\x02")
    with pytest.raises(NewerFormat, match=r"seg-00000001.log is cache segment format 2, written"):
        CacheTier(tmp_path)
    assert seg.stat().st_size == size
    with open(seg, "r+b") as f:
        f.seek(7)
        f.write(b"\x01")
    again = CacheTier(tmp_path)  # the lock and descriptors of the refused open were let go
    assert again.bytes > 100 and _segments(tmp_path) == [seg]
    again.close()


def test_closing_on_a_full_disk_loses_only_what_it_could_not_write_back(
    small_disk: Callable[[int], Path],
) -> None:
    # A node stopped on a full disk exited 1 with "ccn: error: No space left on device" after
    # it had stopped: close() raised writing back the hits it had counted. What it cannot
    # write is order of use (and forgets, whose objects come back at open): not worth an error.
    root = small_disk(4) / "cache"
    tier = CacheTier(root, max_bytes=1 << 20)
    objs = [_obj(1000), _obj(1000)]
    tier.add_many(objs)
    rest = -_disk_bytes(root) % 4096 or 4096  # one more object to end the file on a page
    if rest < HEADER_SIZE + 5 + 256:
        rest += 4096
    tier.add_many([_obj(rest - HEADER_SIZE - 5)])
    assert _disk_bytes(root) % 4096 == 0
    assert tier.get(objs[0][0]) == objs[0][1]  # a hit, to be written back at close
    small_disk(0)
    tier.close()
    assert tier.counters.write_errors == 1
    (root.parent / "filler").unlink()
    again = CacheTier(root, max_bytes=1 << 20)
    assert set(again.ids()) >= {oid for oid, _raw in objs}
    assert again.get(objs[0][0]) == objs[0][1]
    again.close()
