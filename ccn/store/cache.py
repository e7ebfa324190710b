"""The persistent cache tier: objects a node saw pass, kept on disk within a byte budget.

This module owns ``<store>/cache/``: segment files ``seg-<n>.log`` that batches of objects are
appended to (no fsync: it is a cache, and verify-on-read catches what a crash or a power loss
damaged), the in-memory index of where each object is, the least-recently-used order and the
budget. Published versions and pins live in the node's main store, never here, so the budget
can never evict them. The layout is in docs/store.md §6 and :mod:`ccn.store.segment`.

Rules it keeps:

* segments are only ever appended to (a torn tail is cut off when the tier is opened, before
  anything reads it), and the index names a record only once its bytes are completely written,
  so a read never races a write of the same span;
* every write, hit and eviction takes the next **tick** of one counter, and every record carries
  its tick: the LRU order is the ticks' order, and survives a restart because hits are written
  back as *touch* records and evictions as *forget* records (lazily, with the next append);
* a record only ever matters together with records in the same or older segments, so space is
  reclaimed a whole segment at a time, oldest first: recently used objects in it are copied
  forward to the newest segment, the others are forgotten, then the file is deleted;
* :meth:`CacheTier.known` and :meth:`CacheTier.get` are called by the node on the event loop:
  ``known`` is a dict lookup, ``get`` one ``pread`` of a cached descriptor and a hash. Writers
  (:meth:`CacheTier.add_many`, :meth:`~CacheTier.evict`, :meth:`~CacheTier.persist_order`,
  :meth:`~CacheTier.drop`) run on worker threads, one at a time; a descriptor is only closed,
  and an index entry only moved, under the lock a reader holds while it reads.
* Writes go through :class:`CacheFeeder`: the node offers verified objects, a bounded queue
  holds them, and one worker thread appends them in batches and evicts. When the queue is full,
  offers are dropped (and counted): losing a cache write costs a refetch, nothing more.

It must not decide what is verified: the node only offers nameless Data that satisfied a
digest-restricted Interest (the forwarder matched blake3 of its bytes), so the feeder passes the
ids as verified; ``add_many`` checks canonical form again (and the id too, for other callers).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Final

import trio

from ccn.errors import (
    CorruptObject,
    InvalidObject,
    ObjectNotFound,
    StoreError,
    os_error_text,
)
from ccn.store.objects import object_id, validate
from ccn.store.objstore import DiskObjectStore, check_id
from ccn.store.pack import check_not_newer, pwrite_all
from ccn.store.segment import (
    FORGET,
    HEADER_SIZE,
    OBJECT,
    SEGMENT_MAGIC,
    SEGMENT_NAME,
    TOUCH,
    Found,
    Record,
    header,
    scan,
    write_parts,
)

DEFAULT_MAX_BYTES: Final = 1 << 30
"""Default budget of the cache tier (``cache_bytes`` in the node's config)."""

DEFAULT_MAX_ENTRIES: Final = 1 << 18
"""Default bound on the objects the tier holds (``cache_max_entries``): its index takes about
250 B of memory per object, so 1 GiB of 100-byte objects would be 10 million entries, 2.5 GB;
262,144 entries are about 64 MiB (a 1 GiB budget of objects of 4 KiB and more fits)."""

QUEUE_MAX_BYTES: Final = 128 << 20
"""Objects waiting to be written, at most; further offers are dropped."""

BATCH_MAX_OBJECTS: Final = 256

BATCH_MAX_BYTES: Final = 16 << 20
"""A batch is written as soon as this many bytes are queued, and holds at most about this many."""

PERSIST_INTERVAL_S: Final = 5.0
"""How often the recency of cache hits is written back when nothing else is being written."""

_LEGACY_DIRS: Final = ("objects", "tmp", "packs", "corrupt")


def batches(
    objects: Iterable[tuple[bytes, bytes]], max_bytes: int
) -> Iterator[list[tuple[bytes, bytes]]]:
    """``(id, raw)`` pairs in order, in lists of at least ``max_bytes`` (the last may hold
    less; none is empty): what one write to the tier takes."""
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for item in objects:
        batch.append(item)
        size += len(item[1])
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _verified(store: DiskObjectStore, ids: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """``(id, raw)`` for each of ``ids`` whose bytes in ``store`` are intact."""
    for oid in ids:
        try:
            yield oid, store.verify(oid)
        except (CorruptObject, ObjectNotFound):
            continue


def default_segment_bytes(max_bytes: int) -> int:
    """max_bytes/8 within 1 to 32 MiB (so eviction frees small steps), but at most ~256 segments."""
    return max(min(max_bytes // 8, 32 << 20), 1 << 20, max_bytes // 256)


class CacheInUse(StoreError):
    """Another process (another node on the same store) has the cache directory open."""


@dataclass
class CacheCounters:
    hits: int = 0
    hit_bytes: int = 0
    writes: int = 0
    write_bytes: int = 0
    evictions: int = 0
    dropped: int = 0
    corrupt: int = 0
    write_errors: int = 0


class _Segment:
    """One segment file, its open descriptor and the live objects whose bytes it holds."""

    __slots__ = ("fd", "ids", "live", "number", "path", "size")

    def __init__(self, number: int, path: str, fd: int, size: int) -> None:
        self.number = number
        self.path = path
        self.fd = fd
        self.size = size
        self.live = 0
        self.ids: set[bytes] = set()


class _Entry:
    """Where a live object's bytes are, and when it was last written or served."""

    __slots__ = ("length", "offset", "segment", "tick")

    def __init__(self, segment: _Segment, offset: int, length: int, tick: int) -> None:
        self.segment = segment
        self.offset = offset
        self.length = length
        self.tick = tick


class CacheTier:
    """Objects appended to segment files under ``root``, with an LRU order, a byte budget and
    a bound on their number.

    ``bytes`` is the total size of the live objects and stays within ``max_bytes``, and
    there are at most ``max_entries`` of them (each costs memory in the index); the files
    take at most about one segment (``segment_bytes``) more, plus 56 bytes per object.
    Thread-safe: readers (``known``, ``get``, ``verify``, ``locate``, ``ids``) may run on any
    thread while one writer at a time appends or evicts. The owner calls :meth:`close`; one
    process at a time opens a cache directory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        segment_bytes: int | None = None,
    ) -> None:
        self.root = os.fspath(root)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.segment_bytes = segment_bytes or default_segment_bytes(max_bytes)
        self.counters = CacheCounters()
        self.bytes = 0
        #: Guards the index, the segments and the pending touches and forgets.
        self._lock = threading.Lock()
        #: Serializes writers; taken before ``_lock``, never while holding it.
        self._write_lock = threading.RLock()
        self._lru: OrderedDict[bytes, _Entry] = OrderedDict()
        self._segments: dict[int, _Segment] = {}  # oldest first
        self._current: _Segment | None = None
        self._next_number = 1
        self._disk_bytes = 0
        self._tick = 0
        self._touched: set[bytes] = set()
        self._forgets: dict[bytes, int] = {}
        self._closed = False
        os.makedirs(self.root, exist_ok=True)
        self._lock_fd = _lock_dir(self.root)
        try:
            self._open_segments()
            self._import_legacy()
            self.evict()
        except BaseException:
            for seg in self._segments.values():
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
            os.close(self._lock_fd)
            raise

    # -- opening ---------------------------------------------------------------------------

    def _open_segments(self) -> None:
        """Rebuild the index and the LRU order from the records of every segment."""
        numbered = []
        for name in os.listdir(self.root):
            m = SEGMENT_NAME.fullmatch(name)
            if m is not None:
                numbered.append((int(m[1]), name))
        numbered.sort()
        best: dict[bytes, tuple[int, _Segment, int, int]] = {}
        touched: dict[bytes, int] = {}
        forgotten: dict[bytes, int] = {}
        for number, name in numbered:
            self._next_number = number + 1
            opened = self._open_segment(number, os.path.join(self.root, name))
            if opened is None:
                continue
            seg, records = opened
            for kind, off, length, tick, oid in records:
                self._tick = max(self._tick, tick)
                if kind == OBJECT:
                    if oid not in best or tick >= best[oid][0]:
                        best[oid] = (tick, seg, off, length)
                elif kind == TOUCH:
                    touched[oid] = max(touched.get(oid, 0), tick)
                else:
                    forgotten[oid] = max(forgotten.get(oid, 0), tick)
        live = []
        for oid, (tick, seg, off, length) in best.items():
            tick = max(tick, touched.get(oid, 0))
            if tick > forgotten.get(oid, 0):
                live.append((tick, oid, seg, off, length))
        live.sort(key=lambda r: r[0])
        for tick, oid, seg, off, length in live:
            self._lru[oid] = _Entry(seg, off, length, tick)
            seg.ids.add(oid)
            seg.live += length
            self.bytes += length

    def _open_segment(self, number: int, path: str) -> tuple[_Segment, list[Found]] | None:
        """Open one segment and read its records; cut a torn tail off (only the last segment
        can have one, and we append there next)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            magic = os.pread(fd, len(SEGMENT_MAGIC), 0)
            if magic != SEGMENT_MAGIC:
                os.close(fd)
                check_not_newer(magic, SEGMENT_MAGIC, path, "cache segment")
                with contextlib.suppress(OSError):
                    os.unlink(path)  # torn at creation, or not ours to read
                return None
            records, end = scan(fd, size)
            if end < size:
                os.ftruncate(fd, end)
                size = end
        except OSError:
            os.close(fd)
            return None
        seg = _Segment(number, path, fd, size)
        self._segments[number] = seg
        self._disk_bytes += size
        self._current = seg
        return seg, records

    def _import_legacy(self) -> None:
        """Import a cache of loose object files left by an earlier version, then remove it.

        The newest objects that fit the budget are imported in their order of use (mtimes);
        anything unreadable is left out. Idempotent: a crash midway imports again next time.
        """
        if not os.path.isdir(os.path.join(self.root, "objects")):
            return
        try:
            old = DiskObjectStore(self.root, fsync=False)
        except (OSError, StoreError):
            old = None
        if old is not None:
            try:
                entries = sorted(old.loose_entries(), key=lambda e: e.mtime, reverse=True)
                keep: list[bytes] = []
                total = 0
                for e in entries:
                    if total + e.size > self.max_bytes or len(keep) >= self.max_entries:
                        break
                    keep.append(e.id)
                    total += e.size
                for batch in batches(_verified(old, reversed(keep)), BATCH_MAX_BYTES):
                    self._add(batch, False)
            except OSError:
                pass  # a cache: what was not imported is fetched again
            finally:
                old.close()
        for d in _LEGACY_DIRS:
            shutil.rmtree(os.path.join(self.root, d), ignore_errors=True)

    # -- the hot path (event loop) ---------------------------------------------------------

    def known(self, oid: bytes) -> bool:
        return oid in self._lru

    def get(self, oid: bytes) -> bytes | None:
        """The object's verified bytes, marked recently used; None if absent or damaged."""
        with self._lock:
            e = self._lru.get(oid)
            if e is None or self._closed:
                return None
            raw = self._read(e)
        if len(raw) != e.length or object_id(raw) != oid:
            self.counters.corrupt += 1  # forgotten; fetched again next time
            with self._lock:
                if self._lru.get(oid) is e:
                    self._forget(oid)
            return None
        with self._lock:
            if self._lru.get(oid) is e:
                self._tick += 1
                e.tick = self._tick
                self._lru.move_to_end(oid)
                self._touched.add(oid)
        self.counters.hits += 1
        self.counters.hit_bytes += len(raw)
        return raw

    def verify(self, oid: bytes) -> bytes:
        """The object's bytes if they match its id; changes nothing (fsck).

        Raises :class:`~ccn.errors.ObjectNotFound` if the tier does not hold it and
        :class:`~ccn.errors.CorruptObject` if its bytes on disk are damaged.
        """
        check_id(oid)
        with self._lock:
            if self._closed:
                raise StoreError("the cache tier is closed")
            e = self._lru.get(oid)
            if e is None:
                raise ObjectNotFound(f"no cached object {oid.hex()}")
            raw = self._read(e)
            path = e.segment.path
        if len(raw) != e.length or object_id(raw) != oid:
            raise CorruptObject(f"cached object {oid.hex()} in {path} does not match its id")
        return raw

    def locate(self, oid: bytes) -> tuple[str, int, int] | None:
        """Where the object's bytes are: (segment file, offset, length)."""
        with self._lock:
            e = self._lru.get(oid)
            return None if e is None else (e.segment.path, e.offset, e.length)

    def _read(self, e: _Entry) -> bytes:
        # Under _lock: the descriptor cannot be closed, nor the entry moved, meanwhile.
        try:
            return os.pread(e.segment.fd, e.length, e.offset)
        except OSError:
            return b""

    # -- writing (worker thread) -----------------------------------------------------------

    def add_many(
        self, objects: Iterable[tuple[bytes, bytes]], *, ids_verified: bool = False
    ) -> int:
        """Append ``(id, raw)`` pairs in one write (with the pending hits and evictions), evict;
        return how many were written. Pairs whose bytes are not a canonical object with that
        id, and objects the tier has, are skipped. ``ids_verified``: the caller has matched
        blake3 of every ``raw`` to its id already (the node's feeder), so it is not hashed
        again; canonical form is still checked."""
        with self._write_lock:
            self._check_open()
            written = self._add(objects, ids_verified)
            self._evict()
            return written

    def _add(self, objects: Iterable[tuple[bytes, bytes]], ids_verified: bool) -> int:
        fresh: dict[bytes, bytes] = {}
        for oid, raw in objects:
            if oid in self._lru or oid in fresh:
                continue
            try:
                validate(raw)
            except InvalidObject:
                continue
            if ids_verified or object_id(raw) == oid:
                fresh[oid] = raw
        if not fresh:
            return 0
        with self._lock:
            first = self._tick + 1
            self._tick += len(fresh)
        records = [(OBJECT, oid, raw, first + i) for i, (oid, raw) in enumerate(fresh.items())]
        places = self._append(records, pending=True)
        with self._lock:
            for (_kind, oid, raw, tick), (seg, off) in zip(records, places, strict=True):
                self._lru[oid] = _Entry(seg, off, len(raw), tick)
                seg.ids.add(oid)
                seg.live += len(raw)
                self.bytes += len(raw)
        self.counters.writes += len(records)
        self.counters.write_bytes += sum(len(r[2]) for r in records)
        return len(records)

    def _append(self, records: Sequence[Record], *, pending: bool) -> list[tuple[_Segment, int]]:
        """Write ``records`` (and, if ``pending``, the touch and forget records not written
        yet) at the end of the current segment in one call; return where each payload went.
        The caller holds ``_write_lock``."""
        tail = bytearray()
        touched: set[bytes] = set()
        forgets: dict[bytes, int] = {}
        if pending:
            with self._lock:
                touched, self._touched = self._touched, set()
                forgets, self._forgets = self._forgets, {}
                for oid in touched:
                    e = self._lru.get(oid)
                    if e is not None:
                        tail += header(TOUCH, 0, e.tick, oid)
            for oid, tick in forgets.items():
                tail += header(FORGET, 0, tick, oid)
        if not records and not tail:
            return []
        seg = self._writable()
        parts: list[bytes] = []
        places: list[tuple[_Segment, int]] = []
        pos = seg.size
        for kind, oid, payload, tick in records:
            parts += (header(kind, len(payload), tick, oid), payload)
            places.append((seg, pos + HEADER_SIZE))
            pos += HEADER_SIZE + len(payload)
        if tail:
            parts.append(bytes(tail))
            pos += len(tail)
        try:
            write_parts(seg.fd, parts, seg.size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(seg.fd, seg.size)
            with self._lock:
                self._touched |= touched
                for oid, tick in forgets.items():
                    self._forgets.setdefault(oid, tick)
            raise
        with self._lock:
            self._disk_bytes += pos - seg.size
            seg.size = pos
        return places

    def _writable(self) -> _Segment:
        """The segment to append to: the current one, or a new one if it is full."""
        seg = self._current
        if seg is not None and seg.size < self.segment_bytes:
            return seg
        number = self._next_number
        path = os.path.join(self.root, f"seg-{number:08d}.log")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            pwrite_all(fd, (SEGMENT_MAGIC,), len(SEGMENT_MAGIC), 0)
        except BaseException:
            os.close(fd)
            raise
        seg = _Segment(number, path, fd, len(SEGMENT_MAGIC))
        with self._lock:
            self._next_number = number + 1
            self._segments[number] = seg
            self._disk_bytes += seg.size
            self._current = seg
        return seg

    def has_touched(self) -> bool:
        """Whether hits or evictions wait to be written (see :meth:`persist_order`)."""
        return bool(self._touched or self._forgets)

    def persist_order(self) -> None:
        """Append the hits and evictions not written yet, for the next open."""
        with self._write_lock:
            if not self._closed:
                self._append((), pending=True)

    def evict(self) -> list[bytes]:
        """Drop least recently used objects until the budget and the bound on their number
        hold, and reclaim the space of old segments; return the ids of the objects dropped."""
        with self._write_lock:
            self._check_open()
            return self._evict()

    def _evict(self) -> list[bytes]:
        victims: list[bytes] = []
        with self._lock:
            while (self.bytes > self.max_bytes or len(self._lru) > self.max_entries) and self._lru:
                oid = next(iter(self._lru))
                self._forget(oid)
                victims.append(oid)
        victims += self._reclaim()
        self.counters.evictions += len(victims)
        return victims

    def _reclaim(self) -> list[bytes]:
        """Delete old segments, oldest first: any that holds no live object, and more while the
        files exceed the budget by more than a segment (plus the record headers)."""
        forgotten: list[bytes] = []
        for seg in list(self._segments.values()):
            limit = self.max_bytes + self.segment_bytes + HEADER_SIZE * len(self._lru)
            if (seg.live or seg is self._current) and self._disk_bytes <= limit:
                break
            forgotten += self._drop_segment(seg)
        return forgotten

    def _drop_segment(self, seg: _Segment) -> list[bytes]:
        """Copy the recently used objects of ``seg`` forward, forget the others, delete it."""
        hot: list[tuple[bytes, int, int, int]] = []
        cold: list[bytes] = []
        with self._lock:
            if seg is self._current:
                self._current = None
            if seg.ids:
                newer = self._newer_half_tick()
                for oid in seg.ids:
                    e = self._lru[oid]
                    if e.tick >= newer:
                        hot.append((oid, e.offset, e.length, e.tick))
                    else:
                        cold.append(oid)
                for oid in cold:
                    # Its only object record is in this segment: no forget record is needed.
                    self._forget(oid, record=False)
        copies: list[Record] = []
        for oid, off, length, tick in hot:
            # Only writers close descriptors, and we are the writer: no lock needed to read.
            try:
                raw = os.pread(seg.fd, length, off)
            except OSError:
                raw = b""
            if len(raw) == length and object_id(raw) == oid:
                copies.append((OBJECT, oid, raw, tick))
            else:
                self.counters.corrupt += 1  # left behind below
        places = self._append(copies, pending=False)
        with self._lock:
            for (_kind, oid, _raw, _tick), (dest, off) in zip(copies, places, strict=True):
                moved = self._lru.get(oid)
                if moved is None or moved.segment is not seg:
                    continue  # found damaged by a reader meanwhile
                seg.ids.discard(oid)
                seg.live -= moved.length
                moved.segment, moved.offset = dest, off
                dest.ids.add(oid)
                dest.live += moved.length
            for oid in list(seg.ids):
                self._forget(oid)
            del self._segments[seg.number]
            self._disk_bytes -= seg.size
            os.close(seg.fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(seg.path)
        return cold

    def _newer_half_tick(self) -> int:
        """The oldest tick among the most recently used half of the bytes. Under ``_lock``."""
        total = 0
        for e in reversed(self._lru.values()):
            total += e.length
            if 2 * total >= self.bytes:
                return e.tick
        return 0

    def drop(self, oid: bytes) -> bool:
        """Remove one object (fsck repair of a damaged copy); return whether it was there."""
        with self._write_lock:
            self._check_open()
            with self._lock:
                if oid not in self._lru:
                    return False
                self._forget(oid)
            self._append((), pending=True)
            return True

    def _forget(self, oid: bytes, *, record: bool = True) -> None:
        """Remove a live object from the index; under ``_lock``. Unless told otherwise, a
        forget record is written with the next append, so it stays gone after a restart."""
        e = self._lru.pop(oid)
        e.segment.ids.discard(oid)
        e.segment.live -= e.length
        self.bytes -= e.length
        self._touched.discard(oid)
        if record:
            self._tick += 1
            self._forgets[oid] = self._tick

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the cache tier is closed")

    # -- reading the whole ------------------------------------------------------------------

    def ids(self) -> list[bytes]:
        """Every cached id, least recently used first."""
        with self._lock:
            return list(self._lru)

    def status(self) -> dict[str, Any]:
        return {
            "objects": len(self._lru),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "max_entries": self.max_entries,
            "disk_bytes": self._disk_bytes,
            **asdict(self.counters),
        }

    def close(self) -> None:
        """Write back pending hits and evictions and close the segment files. A disk that
        cannot take them (full, read-only) costs only what they say: order of use, and
        objects forgotten since, which come back at open (see docs/store.md, "Why a record
        only ever needs older ones"); counted as a write error, not raised."""
        with self._write_lock:
            if self._closed:
                return
            try:
                self._append((), pending=True)
            except OSError:
                self.counters.write_errors += 1
            finally:
                with self._lock:
                    self._closed = True
                    for seg in self._segments.values():
                        os.close(seg.fd)
                    self._segments.clear()
                    self._current = None
                    os.close(self._lock_fd)


def _lock_dir(root: str) -> int:
    """Hold ``root/.lock`` (flock, released when the descriptor closes, also by a crash): a
    second node on the same store appended to the same segments as the first, and its open cut
    off the first's records mid-append as torn tails (fsck then found damaged objects)."""
    fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CacheInUse(
            f"{root} is in use by another process (is a node already running on this store?)"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


#: How long the feeder lets offers accumulate before a batch goes to the worker thread.
BATCH_WAIT_S = 0.02
#: How often a feeder whose writes keep failing says so (the node prints it on stderr).
REPORT_INTERVAL_S = 60.0


class CacheFeeder:
    """Feeds a :class:`CacheTier` from the event loop without blocking it.

    :meth:`offer` is synchronous and O(1): it queues the object (or drops it if the queue holds
    :data:`QUEUE_MAX_BYTES` already). :meth:`run` is the task, started in the node's nursery,
    that writes queued objects in batches on a worker thread: as soon as
    :data:`BATCH_MAX_BYTES` or :data:`BATCH_MAX_OBJECTS` are queued, else :data:`BATCH_WAIT_S`
    after the first offer. :meth:`flush` waits until what was offered before it is written
    (used before commands that read the cache, and by tests).
    """

    def __init__(
        self,
        tier: CacheTier,
        max_queue_bytes: int = QUEUE_MAX_BYTES,
        *,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.tier = tier
        self.max_queue_bytes = max_queue_bytes
        #: Told in one line when batches cannot be written, at most every REPORT_INTERVAL_S.
        self._report = report
        self._reported_at = -math.inf
        self._queue: deque[tuple[bytes, bytes]] = deque()
        self._queued: dict[bytes, bytes] = {}
        self._queue_bytes = 0
        self._wake = trio.Event()
        self._full = trio.Event()
        self._idle = trio.Event()
        self._idle.set()

    def offer(self, oid: bytes, raw: bytes) -> None:
        """Queue ``raw`` for the tier; ``oid`` must be blake3 of ``raw``, already checked by
        the caller (the node offers nameless Data whose digest it matched), so it is not hashed
        again on the way to disk."""
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
        if self._batch_ready():
            self._full.set()

    def take_all(self) -> list[tuple[bytes, bytes]]:
        """Everything queued and not written yet, removed from the queue (the node writes it
        itself at exit)."""
        items = list(self._queue)
        self._queue.clear()
        self._queued.clear()
        self._queue_bytes = 0
        self._idle.set()
        return items

    def pending(self, oid: bytes) -> bytes | None:
        """An object offered but not written yet (it can be served from memory meanwhile)."""
        return self._queued.get(oid)

    async def flush(self) -> None:
        """Wait until every object offered so far is written (or found unwritable)."""
        if self._queued:
            self._wake.set()
            await self._idle.wait()

    def _batch_ready(self) -> bool:
        return self._queue_bytes >= BATCH_MAX_BYTES or len(self._queue) >= BATCH_MAX_OBJECTS

    def _take(self) -> list[tuple[bytes, bytes]]:
        batch: list[tuple[bytes, bytes]] = []
        size = 0
        while self._queue and len(batch) < BATCH_MAX_OBJECTS and size < BATCH_MAX_BYTES:
            batch.append(self._queue.popleft())
            size += len(batch[-1][1])
        return batch

    def _tell(self, error: OSError) -> None:
        now = trio.current_time()
        if self._report is None or now - self._reported_at < REPORT_INTERVAL_S:
            return
        self._reported_at = now
        self._report(
            f"cannot write the cache tier {self.tier.root}: {os_error_text(error)}; "
            f"batches lost so far: {self.tier.counters.write_errors}; forwarding goes on"
        )

    async def run(self) -> None:
        tier = self.tier
        try:
            while True:
                with trio.move_on_after(PERSIST_INTERVAL_S):
                    await self._wake.wait()
                    # Let a burst accumulate: one thread round trip and one write per batch.
                    if not self._batch_ready():
                        self._full = trio.Event()
                        with trio.move_on_after(BATCH_WAIT_S):
                            await self._full.wait()
                self._wake = trio.Event()
                while self._queue:
                    batch = self._take()
                    try:
                        await trio.to_thread.run_sync(
                            partial(tier.add_many, batch, ids_verified=True)
                        )
                    except OSError as e:
                        # A full or failing disk: the batch is lost to the cache (a refetch
                        # brings it back), the node goes on; the segments stay consistent.
                        tier.counters.dropped += len(batch)
                        tier.counters.write_errors += 1
                        self._tell(e)
                    for oid, raw in batch:
                        self._queued.pop(oid, None)
                        self._queue_bytes -= len(raw)
                self._idle.set()
                if tier.has_touched():
                    with contextlib.suppress(OSError):
                        await trio.to_thread.run_sync(tier.persist_order)
        finally:
            self._idle.set()
