"""The persistent cache tier: byte budget, LRU order that survives a restart, bounded feeder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio

from ccn.store.cache import CacheFeeder, CacheTier
from ccn.store.objects import Blob, encode, object_id


def _obj(size: int) -> tuple[bytes, bytes]:
    raw = encode(Blob(os.urandom(size)))
    return object_id(raw), raw


def _age(tier: CacheTier, oids: list[bytes]) -> None:
    """Give the objects distinct, old write times, oldest first."""
    t0 = time.time() - 1000
    for i, oid in enumerate(oids):
        where = tier.store.locate(oid)
        assert where is not None
        os.utime(where[0], (t0 + i, t0 + i))


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
    assert not tier.store.has(objs[1][0])  # and its file with it
    tier.close()


def test_objects_and_their_order_survive_a_restart(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path, max_bytes=1 << 20)
    objs = [_obj(1000) for _ in range(3)]
    tier.add_many(objs)
    _age(tier, [o for o, _ in objs])
    assert tier.get(objs[0][0]) is not None  # recency written back at close
    tier.close()
    again = CacheTier(tmp_path, max_bytes=1 << 20)
    assert again.ids() == [objs[1][0], objs[2][0], objs[0][0]]
    assert again.get(objs[2][0]) == objs[2][1]
    again.close()
    smaller = CacheTier(tmp_path, max_bytes=2100)  # a smaller budget evicts at open, LRU first
    assert smaller.ids() == [objs[0][0], objs[2][0]]
    smaller.close()


def test_bad_offers_are_not_stored(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    oid, raw = _obj(100)
    assert tier.add_many([(oid, b"not an object"), (b"\x00" * 32, raw)]) == 0
    assert tier.ids() == []


def test_damaged_cache_object_is_not_served(tmp_path: Path) -> None:
    tier = CacheTier(tmp_path)
    oid, raw = _obj(100)
    tier.add_many([(oid, raw)])
    where = tier.store.locate(oid)
    assert where is not None
    os.chmod(where[0], 0o644)
    Path(where[0]).write_bytes(raw[:-1] + b"?")
    assert tier.get(oid) is None and not tier.known(oid)
    assert tier.counters.corrupt == 1


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
