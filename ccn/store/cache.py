"""The persistent cache tier: objects a node saw pass, kept on disk within a byte budget.

This module owns ``<store>/cache/``: a :class:`~ccn.store.objstore.DiskObjectStore` of loose
objects (no fsync: it is a cache, and verify-on-read catches what a power loss truncates), the
least-recently-used order of those objects, and the budget. Published versions and pins live in
the node's main store, never here, so the budget can never evict them.

* The LRU order survives a restart through file modification times: an object's mtime is when
  it was written or last served (hits are recorded in memory and written back by the writer
  thread), and the order is rebuilt from them at open.
* :meth:`CacheTier.known` and :meth:`CacheTier.get` are called by the node for Interests, on
  the event loop: ``known`` is a set lookup, ``get`` one small file read.
* Writes go through :class:`CacheFeeder`: the node offers verified objects, a bounded queue
  holds them, and one worker thread writes them in batches and evicts. When the queue is full,
  offers are dropped (and counted): losing a cache write costs a refetch, nothing more.

It must not decide what is verified: the node only offers nameless Data that satisfied a
digest-restricted Interest (the forwarder matched blake3 of its bytes), and ``put`` checks
canonical form again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

import trio

from ccn.errors import CorruptObject, InvalidObject, ObjectNotFound
from ccn.store.objstore import DiskObjectStore

DEFAULT_MAX_BYTES: Final = 1 << 30
"""Default budget of the cache tier (``cache_bytes`` in the node's config)."""

QUEUE_MAX_BYTES: Final = 128 << 20
"""Objects waiting to be written, at most; further offers are dropped."""

BATCH_MAX_OBJECTS: Final = 256

PERSIST_INTERVAL_S: Final = 5.0
"""How often the recency of cache hits is written back when nothing else is being written."""


@dataclass
class CacheCounters:
    hits: int = 0
    hit_bytes: int = 0
    writes: int = 0
    write_bytes: int = 0
    evictions: int = 0
    dropped: int = 0
    corrupt: int = 0


class CacheTier:
    """Loose objects under ``root`` with an LRU order and a byte budget. Thread-safe."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = os.fspath(root)
        self.max_bytes = max_bytes
        self.store = DiskObjectStore(self.root, fsync=False)
        self.counters = CacheCounters()
        self._lock = threading.Lock()
        self._touched: set[bytes] = set()
        entries = sorted(self.store.loose_entries(), key=lambda e: e.mtime)
        self._lru: OrderedDict[bytes, int] = OrderedDict((e.id, e.size) for e in entries)
        self.bytes = sum(self._lru.values())
        self.evict()

    # -- the hot path (event loop) ---------------------------------------------------------

    def known(self, oid: bytes) -> bool:
        return oid in self._lru

    def get(self, oid: bytes) -> bytes | None:
        """The object's verified bytes, marked recently used; None if absent or damaged."""
        if oid not in self._lru:
            return None
        try:
            raw = self.store.get(oid)
        except ObjectNotFound:
            self._forget(oid)
            return None
        except CorruptObject:
            self.counters.corrupt += 1  # quarantined by the store; fetched again next time
            self._forget(oid)
            return None
        with self._lock:
            if oid in self._lru:
                self._lru.move_to_end(oid)
                self._touched.add(oid)
        self.counters.hits += 1
        self.counters.hit_bytes += len(raw)
        return raw

    # -- writing (worker thread) -----------------------------------------------------------

    def add_many(self, objects: Iterable[tuple[bytes, bytes]]) -> int:
        """Store ``(id, raw)`` pairs, persist recent hits' order, evict; return how many were
        written. Pairs whose bytes are not a canonical object with that id are skipped."""
        written = 0
        for oid, raw in objects:
            if oid in self._lru:
                continue
            try:
                if self.store.put(raw) != oid:
                    continue
            except InvalidObject:
                continue
            with self._lock:
                if oid not in self._lru:
                    self._lru[oid] = len(raw)
                    self.bytes += len(raw)
            written += 1
            self.counters.writes += 1
            self.counters.write_bytes += len(raw)
        self.persist_order()
        self.evict()
        return written

    def has_touched(self) -> bool:
        return bool(self._touched)

    def persist_order(self) -> None:
        """Write the recent hits' recency to disk (file mtimes), for the next open."""
        with self._lock:
            touched, self._touched = self._touched, set()
        now = time.time()
        for oid in touched:
            where = self.store.locate(oid)
            if where is not None:
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    os.utime(where[0], (now, now))

    def evict(self) -> list[bytes]:
        """Drop least recently used objects until the budget holds; return their ids."""
        victims: list[bytes] = []
        with self._lock:
            while self.bytes > self.max_bytes and self._lru:
                oid, size = self._lru.popitem(last=False)
                self.bytes -= size
                victims.append(oid)
        if victims:
            self.store.delete_many(victims)
            self.counters.evictions += len(victims)
        return victims

    def drop(self, oid: bytes) -> bool:
        """Remove one object (fsck repair of a damaged copy)."""
        self._forget(oid)
        return self.store.delete(oid)

    def _forget(self, oid: bytes) -> None:
        with self._lock:
            size = self._lru.pop(oid, None)
            if size is not None:
                self.bytes -= size
            self._touched.discard(oid)

    def ids(self) -> list[bytes]:
        with self._lock:
            return list(self._lru)

    def status(self) -> dict[str, Any]:
        return {
            "objects": len(self._lru),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            **asdict(self.counters),
        }

    def close(self) -> None:
        self.persist_order()
        self.store.close()


#: How long the feeder lets offers accumulate before a batch goes to the worker thread.
BATCH_WAIT_S = 0.02


class CacheFeeder:
    """Feeds a :class:`CacheTier` from the event loop without blocking it.

    :meth:`offer` is synchronous and O(1): it queues the object (or drops it if the queue holds
    :data:`QUEUE_MAX_BYTES` already). :meth:`run` is the task, started in the node's nursery,
    that writes queued objects in batches on a worker thread. :meth:`flush` waits until what
    was offered before it is written (used before commands that read the cache, and by tests).
    """

    def __init__(self, tier: CacheTier, max_queue_bytes: int = QUEUE_MAX_BYTES) -> None:
        self.tier = tier
        self.max_queue_bytes = max_queue_bytes
        self._queue: deque[tuple[bytes, bytes]] = deque()
        self._queued: dict[bytes, bytes] = {}
        self._queue_bytes = 0
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()

    def offer(self, oid: bytes, raw: bytes) -> None:
        if oid in self._queued or self.tier.known(oid):
            return
        if self._queue_bytes + len(raw) > self.max_queue_bytes:
            self.tier.counters.dropped += 1
            return
        self._queue.append((oid, raw))
        self._queued[oid] = raw
        self._queue_bytes += len(raw)
        if self._idle.is_set():
            self._idle = trio.Event()
        self._wake.set()

    def pending(self, oid: bytes) -> bytes | None:
        """An object offered but not written yet (it can be served from memory meanwhile)."""
        return self._queued.get(oid)

    async def flush(self) -> None:
        """Wait until every object offered so far is written (or found unwritable)."""
        if self._queued:
            self._wake.set()
            await self._idle.wait()

    async def run(self) -> None:
        tier = self.tier
        try:
            while True:
                with trio.move_on_after(PERSIST_INTERVAL_S):
                    await self._wake.wait()
                    # Let a burst accumulate: one thread round trip per batch, not per object.
                    if len(self._queue) < BATCH_MAX_OBJECTS:
                        await trio.sleep(BATCH_WAIT_S)
                self._wake = trio.Event()
                while self._queue:
                    n = min(len(self._queue), BATCH_MAX_OBJECTS)
                    batch = [self._queue.popleft() for _ in range(n)]
                    await trio.to_thread.run_sync(tier.add_many, batch)
                    for oid, raw in batch:
                        self._queued.pop(oid, None)
                        self._queue_bytes -= len(raw)
                self._idle.set()
                if tier.has_touched():
                    await trio.to_thread.run_sync(tier.persist_order)
        finally:
            self._idle.set()
