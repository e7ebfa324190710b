"""Object stores: id → canonical object bytes, in memory or on disk, behind one interface.

This module owns where object bytes live. :class:`MemoryObjectStore` and
:class:`DiskObjectStore` are twins that pass the same contract tests. Rules every store keeps:

* an id is raw 32 bytes, checked before use (:class:`~ccn.errors.StoreUsageError`); hex appears
  only in file names;
* ``put`` is idempotent and only ever stores well-formed objects under their true id;
* ``get`` never serves bytes that do not hash to the id asked for
  (:class:`~ccn.errors.CorruptObject`);
* on disk, an object file appears under ``objects/`` complete or not at all: it is written to
  ``tmp/``, optionally fsynced, then renamed. A crash leaves at most garbage in ``tmp/``;
* a bulk import goes through :meth:`ObjectStore.batch`: on disk its objects are appended to one
  pack file (:mod:`ccn.store.pack`) whose index is written last, so the whole batch becomes
  visible at once or not at all;
* :meth:`ObjectStore.known` answers from memory only (the node asks it for every Interest).

It knows nothing about refs, chunking or the network.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from blake3 import blake3

from ccn.errors import (
    CorruptObject,
    InvalidObject,
    NewerFormat,
    ObjectNotFound,
    StoreError,
    StoreUsageError,
    stop_if_asked,
)
from ccn.store import pack as _pack
from ccn.store.objects import (
    ID_SIZE,
    MAX_OBJECT_SIZE,
    Blob,
    Object,
    blob_header,
    decode,
    encode,
    object_id,
    validate,
)

Buffer = bytes | memoryview

TMP_MAX_AGE_S: Final = 3600.0
"""Temp files older than this are another process's crash debris and are removed at open."""
#: Pack files kept open for reading at once, least recently read closed first. Every publish
#: is a pack: keeping each one's descriptor open (as it did) ran a node that served its
#: published names for long out of file descriptors (1024 is a common limit).
MAX_OPEN_PACKS: Final = 64
#: With ``fsync``, a pack being written is synced each time this many more bytes are in it,
#: so that its commit has at most this much left to sync. A node told to stop during a big
#: put waits for the import's current block and one such step (a fraction of a second), not
#: for the one fsync of a whole GiB-sized pack at its end, which took seconds.
PACK_SYNC_STEP: Final = 16 << 20
#: A pack whose batch was abandoned after part of it was synced (or that gc found dead) is
#: moved into ``tmp/`` under this suffix rather than deleted in one unlink: freeing a GiB of
#: allocated blocks costs ~0.6 s on a file system mounted with ``discard``, and a node
#: stopping mid-put or mid-gc must not wait for it. No writer owns such a file:
#: :meth:`DiskObjectStore.clean_tmp` removes it whatever its age (at open), and
#: :meth:`~DiskObjectStore.remove_aborted` in steps a stop can cut short.
ABORTED_SUFFIX: Final = ".aborted"
#: Such a pack is removed by cutting it down this much at a time (see _remove_gradually).
DISCARD_STEP: Final = 64 << 20
#: :meth:`DiskObjectStore.merge_packs` merges the packs holding less than this (every publish
#: is a pack: a node that published every minute for a month had 43,000, each an index file
#: and an index in memory) ...
MERGE_SMALL: Final = 32 << 20
#: ... into packs of at most this many bytes; larger packs are only ever rewritten to drop
#: garbage. A merged pack still under MERGE_SMALL is merged again with newer ones later, so a
#: gc copies at most that much of what an earlier one already merged.
MERGE_MAX: Final = 256 << 20

_HEX: Final = frozenset("0123456789abcdef")


def check_id(oid: object) -> bytes:
    """Return ``oid`` if it is a well-formed id (exactly 32 bytes), else raise."""
    if type(oid) is not bytes or len(oid) != ID_SIZE:
        raise StoreUsageError(f"an object id is {ID_SIZE} raw bytes, got {oid!r:.80}")
    return oid


@dataclass(frozen=True, slots=True)
class StoreStats:
    """How much the store holds: number of objects and their total encoded bytes."""

    objects: int
    bytes: int


class ObjectStore(abc.ABC):
    """Content-addressed storage of canonical object bytes. Thread-safe.

    The owner calls :meth:`close` (or uses ``with``); reading or writing after that raises
    :class:`~ccn.errors.StoreError`.
    """

    _closed: bool = False

    # -- writing ---------------------------------------------------------------------------

    def put(self, raw: Buffer) -> bytes:
        """Store encoded object bytes (e.g. received from the network); return their id.

        Raises :class:`~ccn.errors.InvalidObject` if ``raw`` is not a canonical object.
        """
        self._check_open()
        validate(raw)
        oid = object_id(raw)
        if not self._known(oid):
            self._write(oid, (raw,), len(raw))
        return oid

    def put_blob(self, data: Buffer) -> bytes:
        """Store ``data`` as a blob without copying it; return the blob's id."""
        self._check_open()
        header = blob_header(len(data))
        h = blake3(header)
        h.update(data)
        oid: bytes = h.digest()
        if not self._known(oid):
            self._write(oid, (header, data), len(header) + len(data))
        return oid

    def put_object(self, obj: Object) -> bytes:
        """Encode and store ``obj``; return its id."""
        if type(obj) is Blob:
            return self.put_blob(obj.data)
        self._check_open()
        raw = encode(obj)
        oid = object_id(raw)
        if not self._known(oid):
            self._write(oid, (raw,), len(raw))
        return oid

    def delete(self, oid: bytes) -> bool:
        """Remove an object; return whether it was there. Callers make sure nothing needs it."""
        return oid in self.delete_many([oid])

    def delete_many(self, oids: Iterable[bytes], stop: threading.Event | None = None) -> set[bytes]:
        """Remove objects; return those that were there. Cheaper than one :meth:`delete` per
        object when objects share a pack (each affected pack is rewritten once). If ``stop``
        is set meanwhile, raise :class:`~ccn.errors.Stopped` between objects: a pack being
        rewritten is left as it was, those done stay done."""
        self._check_open()
        return self._delete_many({check_id(o) for o in oids}, stop)

    @contextlib.contextmanager
    def batch(self) -> Iterator[ObjectStore]:
        """A bulk import: write through the yielded store. On disk its objects go into one pack
        file whose index is written last, so they become visible together when the block exits
        normally and are discarded if it raises (with ``fsync``, one sync per batch). The
        memory store writes straight through."""
        self._check_open()
        yield self

    # -- reading ---------------------------------------------------------------------------

    def get(self, oid: bytes) -> bytes:
        """The object's canonical bytes, verified against ``oid``.

        Raises :class:`~ccn.errors.ObjectNotFound` or :class:`~ccn.errors.CorruptObject`.
        """
        self._check_open()
        return self._get(check_id(oid))

    def get_object(self, oid: bytes) -> Object:
        """The decoded object; stored bytes that do not decode are :class:`CorruptObject`."""
        raw = self.get(oid)
        try:
            return decode(raw)
        except InvalidObject as e:
            raise CorruptObject(f"object {oid.hex()} does not decode: {e}") from None

    def has(self, oid: bytes) -> bool:
        """Whether the object is stored (on disk, also as written by other processes)."""
        self._check_open()
        return self._has(check_id(oid))

    def known(self, oid: bytes) -> bool:
        """Whether this store's in-memory index holds ``oid``: no I/O, so it may be asked per
        packet. Misses objects written by other processes since the last :meth:`refresh`."""
        return self._known(oid)

    def refresh(self) -> None:
        """Pick up what other processes wrote into a shared root (memory: nothing to do)."""
        self._check_open()

    def verify(self, oid: bytes) -> bytes:
        """Like :meth:`get`, but a mismatch only raises :class:`CorruptObject`: nothing is moved
        or forgotten (for fsck, which reports before it repairs)."""
        return self.get(oid)

    def __contains__(self, oid: bytes) -> bool:
        return self.has(oid)

    def verify_object(self, oid: bytes) -> Object:
        """:meth:`verify`, then decode (undecodable bytes are :class:`CorruptObject`)."""
        raw = self.verify(oid)
        try:
            return decode(raw)
        except InvalidObject as e:
            raise CorruptObject(f"object {oid.hex()} does not decode: {e}") from None

    def rewrite(self, raw: Buffer) -> bytes:
        """Store ``raw`` again even if the store believes it has it (fsck repairing a damaged
        copy from a good one); on disk it becomes a loose file, which lookups prefer."""
        self._check_open()
        validate(raw)
        oid = object_id(raw)
        self._write(oid, (raw,), len(raw))
        return oid

    @abc.abstractmethod
    def ids(self) -> Iterator[bytes]:
        """Every stored id, in no particular order."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Object count and bytes; cheap (counters, not a scan), so it may be polled."""

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("object store is closed")

    # -- for subclasses: ids are already checked -------------------------------------------

    @abc.abstractmethod
    def _has(self, oid: bytes) -> bool: ...

    def _known(self, oid: bytes) -> bool:
        return self._has(oid)

    @abc.abstractmethod
    def _write(self, oid: bytes, parts: Sequence[Buffer], size: int) -> None:
        """Store the concatenation of ``parts`` (``size`` bytes, hashing to ``oid``)."""

    @abc.abstractmethod
    def _get(self, oid: bytes) -> bytes: ...

    @abc.abstractmethod
    def _delete_many(self, oids: set[bytes], stop: threading.Event | None) -> set[bytes]: ...


class MemoryObjectStore(ObjectStore):
    """Objects in a dict: for tests, caches and nodes without a disk store."""

    def __init__(self) -> None:
        self._objects: dict[bytes, bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def _has(self, oid: bytes) -> bool:
        return oid in self._objects

    def _write(self, oid: bytes, parts: Sequence[Buffer], size: int) -> None:
        raw = b"".join(parts)
        with self._lock:
            if oid not in self._objects:
                self._objects[oid] = raw
                self._bytes += size

    def _get(self, oid: bytes) -> bytes:
        try:
            return self._objects[oid]
        except KeyError:
            raise ObjectNotFound(f"no object {oid.hex()}") from None

    def _delete_many(self, oids: set[bytes], stop: threading.Event | None) -> set[bytes]:
        gone = set()
        with self._lock:
            for oid in oids:
                raw = self._objects.pop(oid, None)
                if raw is not None:
                    self._bytes -= len(raw)
                    gone.add(oid)
        return gone

    def ids(self) -> Iterator[bytes]:
        with self._lock:
            snapshot = list(self._objects)
        return iter(snapshot)

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(len(self._objects), self._bytes)


@dataclass(eq=False)
class _Pack:
    """One visible pack: its stem, path and (lazily opened) read descriptor."""

    name: str
    path: str
    mtime: float
    entries: dict[bytes, tuple[int, int]]
    fd: int | None = None
    #: The bytes of its objects (what a merge would copy of it at most).
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(length for _off, length in self.entries.values())


@dataclass(frozen=True, slots=True)
class LooseEntry:
    """A loose object file as found on disk (for the cache tier and GC)."""

    id: bytes
    size: int
    mtime: float


@dataclass(frozen=True)
class MergePlan:
    """What :meth:`DiskObjectStore.merge_packs` would do: the groups of small packs and loose
    objects, each to become one pack, and the bytes it would copy."""

    groups: tuple[tuple[tuple[_Pack, ...], tuple[LooseEntry, ...]], ...]
    bytes: int

    @property
    def packs(self) -> int:
        """Packs it would merge."""
        return sum(len(packs) for packs, _loose in self.groups)

    @property
    def loose(self) -> int:
        """Loose objects it would move into packs."""
        return sum(len(loose) for _packs, loose in self.groups)

    @property
    def packs_written(self) -> int:
        """Packs it would write (one per group)."""
        return len(self.groups)


class DiskObjectStore(ObjectStore):
    """Objects on disk: loose files ``<root>/objects/<2 hex>/<62 hex>`` (single puts, the cache
    tier) and pack files ``<root>/packs/<name>.pack`` + ``.idx`` (bulk imports, :meth:`batch`).

    Lookups go loose first, then through an in-memory index of every pack, loaded at open and
    refreshed when a lookup misses and the pack directory has new indexes (other processes may
    publish). The ids of loose objects are kept in memory too, so :meth:`known` does no I/O.

    Several processes may share one root. ``fsync=True`` makes every put durable before it
    returns (file and directory fsync; a batch syncs its pack and index once); without it a
    power loss may lose or truncate recent objects, which verify-on-read then reports as
    corrupt. A corrupt loose file found by :meth:`get` is moved to ``<root>/corrupt/``; a
    corrupt packed object is dropped from the in-memory index. Either way the object is never
    served and can be stored again.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = os.fspath(root)
        self.fsync = fsync
        self._objdir = os.path.join(self.root, "objects")
        self._tmpdir = os.path.join(self.root, "tmp")
        self._packdir = os.path.join(self.root, "packs")
        self._corruptdir = os.path.join(self.root, "corrupt")
        for d in (self._objdir, self._tmpdir, self._packdir):
            os.makedirs(d, exist_ok=True)
        self._token = secrets.token_hex(4)
        self._seq = itertools.count()
        self._dirs: set[str] = set()
        self._lock = threading.RLock()
        self._count: int | None = None
        self._bytes = 0
        self._loose: set[bytes] = set()
        self._packs: dict[str, _Pack] = {}
        self._packed: dict[bytes, _Pack] = {}
        #: Packs whose ``fd`` is open, least recently read first (at most MAX_OPEN_PACKS).
        self._open_packs: OrderedDict[_Pack, None] = OrderedDict()
        #: Indexes that failed to load (name → reason), for fsck.
        self.bad_packs: dict[str, str] = {}
        #: Objects found damaged when read and set aside since (id → where they were), so
        #: that fsck still reports them as damaged, not missing, until one is stored again.
        self.damaged_on_read: dict[bytes, str] = {}
        # Before anything is cleaned up: a store a newer ccn wrote is left as it is.
        self._refresh_packs(refuse_newer=True)
        self.clean_tmp()
        self._scan_loose()

    # -- paths -----------------------------------------------------------------------------

    def _path(self, oid: bytes) -> tuple[str, str]:
        h = oid.hex()
        d = os.path.join(self._objdir, h[:2])
        return d, os.path.join(d, h[2:])

    def _ensure_dir(self, d: str) -> None:
        if d in self._dirs:
            return
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        else:
            if self.fsync:
                _fsync_dir(self._objdir)
        self._dirs.add(d)

    # -- the in-memory index ---------------------------------------------------------------

    def _scan_loose(self) -> None:
        found = set()
        for prefix, path in self._fanout_dirs():
            with os.scandir(path) as it:
                for entry in it:
                    if len(entry.name) == 2 * ID_SIZE - 2 and _HEX.issuperset(entry.name):
                        found.add(bytes.fromhex(prefix + entry.name))
        with self._lock:
            self._loose = found
            self._count = None

    def _refresh_packs(self, *, refuse_newer: bool = False) -> bool:
        """Load indexes that appeared, forget packs that vanished; return whether any did.
        ``refuse_newer`` (at open): an index of a newer format raises
        :class:`~ccn.errors.NewerFormat` (the store is refused whole, as for the other store
        files; its objects would be missing), where later it is only set aside in
        :attr:`bad_packs` (another process wrote it while this one runs: fsck names it)."""
        idx_names, _ = _pack.pack_names(self._packdir)
        with self._lock:
            current = set(self._packs) | set(self.bad_packs)
            if idx_names == current:
                return False
            for gone in current - idx_names:
                self.bad_packs.pop(gone, None)
                p = self._packs.pop(gone, None)
                if p is not None:
                    self._unindex_pack(p)
            for name in idx_names - current:
                self._load_pack(name, refuse_newer)
            return True

    def _load_pack(self, name: str, refuse_newer: bool = False) -> None:
        idx_path = os.path.join(self._packdir, name + _pack.IDX_SUFFIX)
        pack_path = os.path.join(self._packdir, name + _pack.PACK_SUFFIX)
        try:
            with open(idx_path, "rb") as f:
                entries = _pack.decode_index(f.read(), idx_path)
            mtime = os.stat(pack_path).st_mtime
        except FileNotFoundError:
            return  # removed meanwhile by another process's repack
        except (OSError, StoreError) as e:
            if refuse_newer and isinstance(e, NewerFormat):
                raise
            self.bad_packs[name] = str(e)
            return
        self._add_pack(_Pack(name, pack_path, mtime, entries))

    def _add_pack(self, p: _Pack) -> None:
        with self._lock:
            self._packs[p.name] = p
            for oid, (_off, length) in p.entries.items():
                if self._count is not None and not self._present(oid):
                    self._count += 1
                    self._bytes += length
                self._packed[oid] = p

    def _unindex_pack(self, p: _Pack) -> None:
        with self._lock:
            for oid, (_off, length) in p.entries.items():
                if self._packed.get(oid) is p:
                    del self._packed[oid]
                    if self._count is not None and oid not in self._loose:
                        self._count -= 1
                        self._bytes -= length
            self._close_pack(p)

    def _close_pack(self, p: _Pack) -> None:
        with self._lock:
            self._open_packs.pop(p, None)
            if p.fd is not None:
                os.close(p.fd)
                p.fd = None

    def _pack_fd(self, p: _Pack) -> int:
        """``p``'s read descriptor, opened if need be; the least recently read pack's is
        closed when more than MAX_OPEN_PACKS would be open."""
        with self._lock:
            if p.fd is not None:
                self._open_packs.move_to_end(p)
                return p.fd
            fd = p.fd = os.open(p.path, os.O_RDONLY | os.O_CLOEXEC)
            self._open_packs[p] = None
            while len(self._open_packs) > MAX_OPEN_PACKS:
                self._close_pack(next(iter(self._open_packs)))
            return fd

    def _present(self, oid: bytes) -> bool:
        return oid in self._loose or oid in self._packed

    def _known(self, oid: bytes) -> bool:
        return oid in self._loose or oid in self._packed

    def refresh(self) -> None:
        self._scan_loose()
        self._refresh_packs()

    # -- operations ------------------------------------------------------------------------

    def _has(self, oid: bytes) -> bool:
        if oid in self._loose or oid in self._packed:
            return True
        if os.path.exists(self._path(oid)[1]):
            self._note_loose(oid)
            return True
        return self._refresh_packs() and oid in self._packed

    def _note_loose(self, oid: bytes) -> None:
        """A loose file another process wrote: index it."""
        with self._lock:
            if oid in self._loose:
                return
            if self._count is not None and oid not in self._packed:
                try:
                    size = os.stat(self._path(oid)[1]).st_size
                except FileNotFoundError:
                    return
                self._count += 1
                self._bytes += size
            self._loose.add(oid)

    def _write(self, oid: bytes, parts: Sequence[Buffer], size: int) -> None:
        d, final = self._path(oid)
        tmp = os.path.join(
            self._tmpdir, f"{oid[:8].hex()}.{os.getpid()}.{self._token}.{next(self._seq)}"
        )
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            try:
                _write_all(fd, parts, size)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._ensure_dir(d)
            with self._lock:
                os.replace(tmp, final)
                if oid not in self._loose:
                    if self._count is not None and oid not in self._packed:
                        self._count += 1
                        self._bytes += size
                    self._loose.add(oid)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if self.fsync:
            _fsync_dir(d)

    def _get(self, oid: bytes) -> bytes:
        return self._read(oid, quarantine=True)

    def verify(self, oid: bytes) -> bytes:
        self._check_open()
        return self._read(check_id(oid), quarantine=False)

    def _read(self, oid: bytes, *, quarantine: bool) -> bytes:
        if oid in self._loose or oid not in self._packed:
            _, path = self._path(oid)
            try:
                with open(path, "rb", buffering=0) as f:
                    raw = f.read(MAX_OBJECT_SIZE + 1)
            except FileNotFoundError:
                with self._lock:
                    self._loose.discard(oid)
            else:
                if len(raw) > MAX_OBJECT_SIZE or object_id(raw) != oid:
                    if quarantine:
                        self._quarantine(oid, path)
                    if oid not in self._packed and not (
                        self._refresh_packs() and oid in self._packed
                    ):
                        raise CorruptObject(f"object file for {oid.hex()} does not match its id")
                    # A pack holds it too (a merge cut short): that copy is read instead.
                    return self._read_packed(oid, quarantine=quarantine)
                self._note_loose(oid)
                return raw
        if oid not in self._packed and not (self._refresh_packs() and oid in self._packed):
            raise ObjectNotFound(f"no object {oid.hex()}")
        return self._read_packed(oid, quarantine=quarantine)

    def _read_packed(self, oid: bytes, *, quarantine: bool) -> bytes:
        with self._lock:
            p = self._packed.get(oid)
            if p is None:
                raise ObjectNotFound(f"no object {oid.hex()}")
            try:
                return self._read_from(p, oid)
            except CorruptObject:
                if self._refresh_packs() and self._packed.get(oid, p) is not p:
                    # Another process merged or rewrote the pack (and set it aside, cut down
                    # in steps): its objects are in the pack that replaced it.
                    return self._read_packed(oid, quarantine=quarantine)
                # A merge or rewrite cut short leaves objects in two packs: an intact copy
                # in another one is served (and, with ``quarantine``, read from now on).
                for q in list(self._packs.values()):
                    if q is p or oid not in q.entries:
                        continue
                    try:
                        raw = self._read_from(q, oid)
                    except CorruptObject:
                        continue
                    if quarantine:
                        self._packed[oid] = q
                    return raw
                if quarantine:
                    del self._packed[oid]
                    self.damaged_on_read[oid] = os.path.join(
                        self._packdir, p.name + _pack.PACK_SUFFIX
                    )
                    if self._count is not None and oid not in self._loose:
                        self._count -= 1
                        self._bytes -= p.entries[oid][1]
                raise

    def _read_from(self, p: _Pack, oid: bytes) -> bytes:
        """Pack ``p``'s own copy of ``oid``, verified (CorruptObject if it does not match)."""
        raw = self._span(p, oid)
        if len(raw) != p.entries[oid][1] or object_id(raw) != oid:
            raise CorruptObject(f"packed object {oid.hex()} in {p.name} does not match its id")
        return raw

    def _span(self, p: _Pack, oid: bytes) -> bytes:
        """The bytes pack ``p``'s index gives for ``oid``, as they are (unverified; fewer if
        the file is shorter or gone)."""
        with self._lock:
            off, length = p.entries[oid]
            try:
                fd = self._pack_fd(p)
                return os.pread(fd, length, off) if length <= MAX_OBJECT_SIZE else b""
            except FileNotFoundError:
                return b""

    def set_aside(self, oid: bytes) -> None:
        """Take the damaged copies of ``oid`` out of the store for good (fsck ``--repair``
        when no intact copy is left): a loose file moves to ``corrupt/``; a packed copy is
        written there and its pack rewritten without it. The id is then missing, so publishing
        the content again, or fetching it, stores a good copy (a copy only dropped from the
        in-memory index, as a read does, was back after a restart, and a publish took it for
        present). Until then it is reported as set aside (:attr:`damaged_on_read`)."""
        self._check_open()
        oid = check_id(oid)
        _, path = self._path(oid)
        if os.path.exists(path):
            self._quarantine(oid, path)
        with self._lock:
            packs = [q for q in self._packs.values() if oid in q.entries]
        if not packs:
            return
        os.makedirs(self._corruptdir, exist_ok=True)
        for q in packs:
            dest = os.path.join(self._corruptdir, f"{oid.hex()}.{q.name}.{time.time_ns()}")
            with open(dest, "wb") as f:
                f.write(self._span(q, oid))
        self.delete_many([oid])
        self.damaged_on_read[oid] = packs[0].path

    def _quarantine(self, oid: bytes, path: str) -> None:
        os.makedirs(self._corruptdir, exist_ok=True)
        dest = os.path.join(self._corruptdir, f"{oid.hex()}.{os.getpid()}.{time.time_ns()}")
        with self._lock:
            try:
                size = os.stat(path).st_size
                os.replace(path, dest)
            except FileNotFoundError:
                return
            self.damaged_on_read[oid] = path
            self._loose.discard(oid)
            if self._count is not None and oid not in self._packed:
                self._count -= 1
                self._bytes -= size

    def _delete_many(self, oids: set[bytes], stop: threading.Event | None) -> set[bytes]:
        gone: set[bytes] = set()
        by_pack: dict[str, set[bytes]] = {}
        with self._lock:
            # Every pack that holds one (a repack cut short leaves an object in two packs).
            for pack in self._packs.values():
                here = oids & pack.entries.keys()
                if here:
                    by_pack[pack.name] = here
        for oid in oids:
            _, path = self._path(oid)
            with self._lock:
                try:
                    size = os.stat(path).st_size
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                self._loose.discard(oid)
                gone.add(oid)
                if self._count is not None and oid not in self._packed:
                    self._count -= 1
                    self._bytes -= size
        for name, drop in by_pack.items():
            p = self._packs.get(name)
            if p is not None:
                gone |= self._repack_without(p, drop, stop)
        return gone

    def _repack_without(
        self, p: _Pack, drop: set[bytes], stop: threading.Event | None = None
    ) -> set[bytes]:
        """Rewrite pack ``p`` without ``drop`` (its live objects go into a new pack, which is
        committed before the old one is removed); return the ids dropped. ``stop``: see
        :meth:`delete_many` (the new pack is discarded, ``p`` stays)."""
        self._copy_packs([p], drop, stop, "stopped while rewriting a pack (it is left as it was)")
        return drop & p.entries.keys()

    def merge_packs(
        self,
        drop: AbstractSet[bytes] = frozenset(),
        stop: threading.Event | None = None,
        *,
        older_than: float | None = None,
        plan: MergePlan | None = None,
    ) -> tuple[int, int]:
        """Merge the small packs (under :data:`MERGE_SMALL` bytes each) and the loose objects,
        those written before ``older_than`` if given, into as few packs of at most
        :data:`MERGE_MAX` bytes, oldest first, leaving out the objects in ``drop``; return
        (packs merged, packs written). :meth:`plan_merge` says beforehand what it would do;
        ``plan``: what it said for these arguments (not worked out again).

        Each new pack is made durable (whatever ``fsync`` says: it replaces files that may
        have been) before what it replaces is removed, and carries the newest of their mtimes,
        so that no object looks younger to gc's grace period than it is (young garbage merged
        at every gc would never get old). A crash in between leaves objects in two places,
        which the next merge resolves (:meth:`_intact_elsewhere`; a loose copy of an object a
        pack holds intact is removed). A loose copy whose packed one is damaged (fsck's
        repair) stays. If ``stop`` is set, raise :class:`~ccn.errors.Stopped` between
        objects: the merge under way is discarded, those done stay done."""
        self._check_open()
        for e in self.loose_entries():
            if e.id in drop or (older_than is not None and e.mtime >= older_than):
                continue
            with self._lock:
                p = self._packed.get(e.id)
                if p is None:
                    continue
                try:
                    self._read_from(p, e.id)
                except CorruptObject:
                    continue  # a repair's copy, or the only good one: kept
                self._drop_loose(e.id)
        if plan is None:
            plan = self.plan_merge(drop, older_than=older_than)
        merged = written = 0
        for packs, objects in plan.groups:
            if self._copy_packs(list(packs), drop, stop, "stopped while merging packs", objects):
                written += 1
            merged += len(packs)
        return merged, written

    def plan_merge(
        self, drop: AbstractSet[bytes] = frozenset(), *, older_than: float | None = None
    ) -> MergePlan:
        """What :meth:`merge_packs` with these arguments would merge (it changes nothing):
        the small packs and the loose objects no pack holds, older than ``older_than``,
        oldest first, in groups of at most :data:`MERGE_MAX` bytes; a group of one item is
        left alone (delete_many drops a lone pack's garbage)."""
        self._check_open()
        loose = [
            e
            for e in self.loose_entries()
            if e.id not in drop
            and (older_than is None or e.mtime < older_than)
            and e.id not in self._packed
        ]
        small = sorted(self._small_packs(older_than), key=lambda p: (p.mtime, p.name))
        groups: list[tuple[list[_Pack], list[LooseEntry]]] = [([], [])]
        size = 0
        total = 0
        items: list[_Pack | LooseEntry] = [*small, *sorted(loose, key=lambda e: e.mtime)]
        for item in items:
            if isinstance(item, _Pack):
                n = item.size
                if drop:
                    n -= sum(length for oid, (_off, length) in item.entries.items() if oid in drop)
            else:
                n = item.size
            packs, objects = groups[-1]
            if (packs or objects) and size + n > MERGE_MAX:
                groups.append(([], []))
                size = 0
            if isinstance(item, _Pack):
                groups[-1][0].append(item)
            else:
                groups[-1][1].append(item)
            size += n
        kept = [(tuple(p), tuple(o)) for p, o in groups if len(p) + len(o) >= 2]
        for group_packs, group_loose in kept:
            for p in group_packs:
                total += sum(n for oid, (_off, n) in p.entries.items() if oid not in drop)
            total += sum(e.size for e in group_loose)
        return MergePlan(tuple(kept), total)

    def merge_candidates(self, older_than: float | None = None) -> tuple[int, int]:
        """How many small packs and loose objects (written before ``older_than``, if given)
        :meth:`merge_packs` would take in: the packs from memory, the loose objects by a scan
        of ``objects/`` (only if there are any). For a node that decides when to merge."""
        packs = len(self._small_packs(older_than))
        if not self._loose:
            return packs, 0
        loose = sum(
            1
            for e in self.loose_entries()
            if (older_than is None or e.mtime < older_than) and e.id not in self._packed
        )
        return packs, loose

    def _small_packs(self, older_than: float | None) -> list[_Pack]:
        """The packs under :data:`MERGE_SMALL` (written before ``older_than``, if given)."""
        with self._lock:
            return [
                p
                for p in self._packs.values()
                if (older_than is None or p.mtime < older_than) and p.size < MERGE_SMALL
            ]

    def loose_count(self) -> int:
        """Loose object files (from memory)."""
        return len(self._loose)

    def _drop_loose(self, oid: bytes) -> None:
        """Remove the loose file of ``oid``, which a pack holds intact (counts unchanged)."""
        with self._lock:
            _unlink_quietly(self._path(oid)[1])
            self._loose.discard(oid)

    def _copy_packs(
        self,
        group: list[_Pack],
        drop: AbstractSet[bytes],
        stop: threading.Event | None,
        stopped: str,
        loose: Sequence[LooseEntry] = (),
    ) -> bool:
        """Copy the objects of the packs ``group`` but ``drop``, and the ``loose`` objects,
        into one new pack, commit it (durably), then remove the packs and loose files; return
        whether there was anything to copy. A damaged packed object (no intact copy in the
        group) is carried over as it is; a damaged loose one stays where it is.
        If ``stop`` is set before the commit, raise Stopped(``stopped``), everything as it
        was; after it, the old packs' removal is cut short (:meth:`remove_packs`)."""
        holders: dict[bytes, list[_Pack]] = {}
        for p in group:
            for oid in p.entries:
                if oid not in drop:
                    holders.setdefault(oid, []).append(p)
        elsewhere = self._intact_elsewhere(group, list(holders))
        packed_loose: list[bytes] = []
        writer = _PackWriter(self, dedup=False, durable=True)
        try:
            for oid, packs in holders.items():
                stop_if_asked(stop, stopped)
                if oid in elsewhere:
                    continue  # another pack holds it intact: not copied a second time
                for p in packs:
                    try:
                        writer.put(self._read_from(p, oid))
                        break
                    except (CorruptObject, InvalidObject):
                        continue
                else:
                    # Damaged, and no intact copy: carried over as it is, so that fsck still
                    # names it damaged and can restore it (from the cache tier); gc never
                    # changes published content, even its damage.
                    raw = self._span(packs[0], oid)
                    writer._write(oid, (raw,), len(raw))
            for e in loose:
                stop_if_asked(stop, stopped)
                try:
                    writer.put(self._read(e.id, quarantine=False))
                except (ObjectNotFound, CorruptObject, InvalidObject):
                    continue  # gone meanwhile, or damaged: fsck's business
                packed_loose.append(e.id)
        except BaseException:
            writer.abort()
            raise
        mtimes = [p.mtime for p in group] + [e.mtime for e in loose]
        copied = writer.commit(mtime=max(mtimes))
        members = set(group)
        with self._lock:
            for oid, q in elsewhere.items():
                if self._packed.get(oid) in members:
                    self._packed[oid] = q
        for oid in packed_loose:
            self._drop_loose(oid)
        self.remove_packs([p.name for p in group], stop)
        return copied

    def _intact_elsewhere(self, group: list[_Pack], oids: list[bytes]) -> dict[bytes, _Pack]:
        """Of ``oids``, those a pack outside ``group`` holds intact, and that pack. A repack
        or merge cut short (a crash after the new pack was committed, before the old ones were
        deleted) leaves the live objects in two packs; without this, every later repack of an
        old one copied them again, and the duplicates stayed for good. A copy elsewhere is
        read and verified first: a damaged duplicate must not cost the only good copy."""
        members = set(group)
        with self._lock:
            others = [q for q in self._packs.values() if q not in members]
        wanted = set(oids)
        found: dict[bytes, _Pack] = {}
        for q in others:
            for oid in wanted & q.entries.keys():
                if oid in found:
                    continue
                try:
                    self._read_from(q, oid)
                except CorruptObject:
                    continue
                found[oid] = q
        return found

    def remove_packs(self, names: Iterable[str], stop: threading.Event | None = None) -> None:
        """Forget and delete packs whose bytes no reader needs any more: gc found all their
        objects garbage, or a rewrite or merge copied the others into a committed pack (a
        reader in another process that still indexes one finds the object there:
        :meth:`_read_packed`). Index first, so no reader finds a pack half gone; then the file
        is moved into ``tmp/`` and cut down step by step until ``stop`` (see
        :func:`_remove_gradually`); what a stop leaves is removed at the next open, or by
        :meth:`remove_aborted`. A GiB in one unlink kept a stopping node waiting ~1 s."""
        aside: list[str] = []
        with self._lock:
            for name in names:
                p = self._packs.pop(name, None)
                self.bad_packs.pop(name, None)
                if p is not None:
                    self._unindex_pack(p)
                _unlink_quietly(os.path.join(self._packdir, name + _pack.IDX_SUFFIX))
                where = self._set_aside(os.path.join(self._packdir, name + _pack.PACK_SUFFIX), name)
                if where is not None:
                    aside.append(where)
        if self.fsync:
            _fsync_dir(self._packdir)
        for where in aside:
            if not _remove_gradually(where, stop):
                break

    def _set_aside(self, path: str, name: str) -> str | None:
        """Move pack file ``path`` (pack ``name``; nothing reads it any more) into ``tmp/``, to
        be removed in steps (see :data:`ABORTED_SUFFIX`); return where it went. If it cannot
        be moved, it is deleted at once instead: None."""
        aside = os.path.join(self._tmpdir, name + ABORTED_SUFFIX)
        try:
            os.rename(path, aside)
        except OSError:
            _unlink_quietly(path)
            return None
        return aside

    @contextlib.contextmanager
    def batch(self) -> Iterator[ObjectStore]:
        self._check_open()
        writer = _PackWriter(self)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def _new_pack_name(self) -> str:
        return f"pack-{time.time_ns():x}-{os.getpid()}-{self._token}-{next(self._seq)}"

    # -- listing ---------------------------------------------------------------------------

    def ids(self) -> Iterator[bytes]:
        with self._lock:
            snapshot = self._loose | self._packed.keys()
        return iter(snapshot)

    def loose_entries(self) -> Iterator[LooseEntry]:
        """Every loose object file with its size and modification time."""
        for prefix, path in self._fanout_dirs():
            with os.scandir(path) as it:
                for entry in it:
                    if len(entry.name) == 2 * ID_SIZE - 2 and _HEX.issuperset(entry.name):
                        try:
                            st = entry.stat()
                        except FileNotFoundError:
                            continue
                        yield LooseEntry(
                            bytes.fromhex(prefix + entry.name), st.st_size, st.st_mtime
                        )

    def packs(self) -> dict[str, tuple[float, frozenset[bytes]]]:
        """Visible packs: name → (pack file mtime, ids in it)."""
        with self._lock:
            return {n: (p.mtime, frozenset(p.entries)) for n, p in self._packs.items()}

    def is_loose(self, oid: bytes) -> bool:
        return oid in self._loose

    def locate(self, oid: bytes) -> tuple[str, int, int] | None:
        """Where the object's bytes are: (file, offset, length); loose objects first."""
        if oid in self._loose:
            path = self._path(oid)[1]
            with contextlib.suppress(FileNotFoundError):
                return path, 0, os.stat(path).st_size
        p = self._packed.get(oid)
        if p is None:
            return None
        off, length = p.entries[oid]
        return p.path, off, length

    def mtime(self, oid: bytes) -> float | None:
        """When the object was written (loose file or its pack), or None if absent."""
        if oid in self._loose:
            try:
                return os.stat(self._path(oid)[1]).st_mtime
            except FileNotFoundError:
                pass
        p = self._packed.get(oid)
        return None if p is None else p.mtime

    def _fanout_dirs(self) -> list[tuple[str, str]]:
        with os.scandir(self._objdir) as it:
            return [
                (e.name, e.path)
                for e in it
                if len(e.name) == 2 and _HEX.issuperset(e.name) and e.is_dir()
            ]

    def stats(self) -> StoreStats:
        with self._lock:
            if self._count is None:
                count = total = 0
                for e in self.loose_entries():
                    if e.id in self._loose:
                        count += 1
                        total += e.size
                for oid, p in self._packed.items():
                    if oid not in self._loose:
                        count += 1
                        total += p.entries[oid][1]
                self._count, self._bytes = count, total
            return StoreStats(self._count, self._bytes)

    def clean_tmp(self, max_age_s: float = TMP_MAX_AGE_S) -> int:
        """Remove temp files and index-less packs older than ``max_age_s`` (left by crashed
        writers); return how many. Younger ones may belong to a live writer."""
        limit = time.time() - max_age_s
        removed = 0
        idx_names, pack_names = _pack.pack_names(self._packdir)
        candidates = [e.path for e in os.scandir(self._tmpdir)] + [
            os.path.join(self._packdir, n + _pack.PACK_SUFFIX) for n in pack_names - idx_names
        ]
        for path in candidates:
            try:
                if (
                    path.endswith(ABORTED_SUFFIX)
                    or os.stat(path, follow_symlinks=False).st_mtime < limit
                ):
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def remove_aborted(self, stop: threading.Event | None = None) -> int:
        """Remove the packs of abandoned batches set aside in ``tmp/`` (see
        :data:`ABORTED_SUFFIX`); return how many. May take a while: run it off the event loop.
        Once ``stop`` is set, it returns within one :data:`DISCARD_STEP` of a file, leaving
        the rest to the next open."""
        removed = 0
        with os.scandir(self._tmpdir) as entries:
            for e in entries:
                if e.name.endswith(ABORTED_SUFFIX):
                    if not _remove_gradually(e.path, stop):
                        break
                    removed += 1
        return removed

    def close(self) -> None:
        with self._lock:
            for p in list(self._open_packs):
                self._close_pack(p)
        super().close()

    def __repr__(self) -> str:
        return f"DiskObjectStore({self.root!r}, fsync={self.fsync})"


class _PackWriter(ObjectStore):
    """The store a :meth:`DiskObjectStore.batch` yields: appends objects to one new pack.

    Writer threads may put concurrently: each object's span is reserved under a lock and
    written with ``pwritev`` outside it. Objects the parent already knows are not written
    again. :meth:`commit` syncs the pack (with ``fsync``; what is written is synced every
    :data:`PACK_SYNC_STEP` bytes as it goes, so that little is left), writes the index to a
    temp file, syncs and renames it into ``packs/``; only then do the objects exist for anyone.
    """

    def __init__(
        self, parent: DiskObjectStore, *, dedup: bool = True, durable: bool = False
    ) -> None:
        self._parent = parent
        self._dedup = dedup
        #: Synced as it goes and at its commit: with the store's ``fsync``, or ``durable``
        #: (a pack that replaces others, which may have been synced).
        self._sync = parent.fsync or durable
        self._name = parent._new_pack_name()
        self._path = os.path.join(parent._packdir, self._name + _pack.PACK_SUFFIX)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            _write_all(self._fd, (_pack.PACK_MAGIC,), len(_pack.PACK_MAGIC))
        except BaseException:  # a full disk: no batch yet to abort, so clean up here
            os.close(self._fd)
            _unlink_quietly(self._path)
            raise
        self._end = len(_pack.PACK_MAGIC)
        self._unsynced = 0  # bytes written since the last sync (with fsync)
        self._synced = False  # whether a step was synced (the pack's blocks are allocated)
        self._entries: dict[bytes, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._done = False

    def _known(self, oid: bytes) -> bool:
        return oid in self._entries or (self._dedup and self._parent._known(oid))

    def _has(self, oid: bytes) -> bool:
        return oid in self._entries or self._parent._has(oid)

    def _write(self, oid: bytes, parts: Sequence[Buffer], size: int) -> None:
        with self._lock:
            if oid in self._entries:
                return
            off = self._end
            self._end += size
            self._entries[oid] = (off, size)
        _pack.pwrite_all(self._fd, parts, size, off)
        if self._sync:
            with self._lock:
                self._unsynced += size
                step = self._unsynced >= PACK_SYNC_STEP
                if step:
                    self._unsynced = 0
                    self._synced = True
            if step:
                # On this writer thread, between the import's blocks (which check its stop
                # flag); other writers go on meanwhile. The commit's fsync makes it durable.
                os.fdatasync(self._fd)

    def _get(self, oid: bytes) -> bytes:
        span = self._entries.get(oid)
        if span is None:
            return self._parent._get(oid)
        raw = os.pread(self._fd, span[1], span[0])
        if object_id(raw) != oid:
            raise CorruptObject(f"object {oid.hex()} in the pack being written is damaged")
        return raw

    def _delete_many(self, oids: set[bytes], stop: threading.Event | None) -> set[bytes]:
        raise StoreUsageError("objects cannot be deleted inside a batch")

    def ids(self) -> Iterator[bytes]:
        return iter(list(self._entries))

    def stats(self) -> StoreStats:
        return StoreStats(len(self._entries), sum(n for _, n in self._entries.values()))

    def commit(self, *, mtime: float | None = None) -> bool:
        """Make the pack visible (see the class); False if it was empty (then it is deleted).
        ``mtime``: the pack's modification time (gc's grace period reads it)."""
        parent = self._parent
        self._done = True
        if not self._entries:
            os.close(self._fd)
            _unlink_quietly(self._path)
            return False
        try:
            try:
                if self._sync:
                    os.fsync(self._fd)
            finally:
                os.close(self._fd)
            raw_idx = _pack.encode_index(self._entries)
            tmp = os.path.join(parent._tmpdir, f"{self._name}.idx.{next(parent._seq)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                _write_all(fd, (raw_idx,), len(raw_idx))
                if self._sync:
                    os.fsync(fd)
            except BaseException:
                _unlink_quietly(tmp)
                raise
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(parent._packdir, self._name + _pack.IDX_SUFFIX))
        except BaseException:
            _unlink_quietly(self._path)
            raise
        if mtime is not None:
            # Only now: an index-less pack that old is crash debris to a store being opened.
            os.utime(self._path, (mtime, mtime))
        if self._sync:
            _fsync_dir(parent._packdir)
        found = os.stat(self._path).st_mtime
        parent._add_pack(_Pack(self._name, self._path, found, dict(self._entries)))
        return True

    def abort(self) -> None:
        """Discard the batch: its pack goes (nothing ever saw it: it has no index). A pack
        that was partly synced is moved aside for later removal (see :data:`ABORTED_SUFFIX`);
        one that was not is deleted at once (its blocks are mostly not even allocated yet)."""
        if not self._done:
            self._done = True
            os.close(self._fd)
            if self._synced:
                self._parent._set_aside(self._path, self._name)
            else:
                _unlink_quietly(self._path)


def _write_all(fd: int, parts: Sequence[Buffer], size: int) -> None:
    written = os.writev(fd, parts)
    if written == size:
        return
    rest = memoryview(b"".join(parts))[written:]
    while rest:
        rest = rest[os.write(fd, rest) :]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_gradually(path: str, stop: threading.Event | None) -> bool:
    """Delete ``path``, a file no one else reads (an abandoned pack), cutting a big one down
    from its end :data:`DISCARD_STEP` at a time and checking ``stop`` between the steps:
    freeing a GiB in one unlink takes ~0.6 s on a file system mounted with ``discard``, and a
    node stopping waits for the thread that does it (even a daemon thread: the process ends
    when the call returns). False if ``stop`` came first (what is left stays)."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)  # packs are read-only
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        size = os.fstat(fd).st_size
        while size > DISCARD_STEP:
            if stop is not None and stop.is_set():
                return False
            size -= DISCARD_STEP
            os.ftruncate(fd, size)
    finally:
        os.close(fd)
    _unlink_quietly(path)
    return True


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
