"""Object stores: id → canonical object bytes, in memory or on disk, behind one interface.

This module owns where object bytes live. :class:`MemoryObjectStore` and
:class:`DiskObjectStore` are twins that pass the same contract tests. Rules every store keeps:

* an id is raw 32 bytes, checked before use (:class:`~ccn.errors.StoreUsageError`); hex appears
  only in file names;
* ``put`` is idempotent and only ever stores well-formed objects under their true id;
* ``get`` never serves bytes that do not hash to the id asked for
  (:class:`~ccn.errors.CorruptObject`);
* on disk, an object file appears under ``objects/`` complete or not at all: it is written to
  ``tmp/``, optionally fsynced, then renamed. A crash leaves at most garbage in ``tmp/``.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from blake3 import blake3

from ccn.errors import CorruptObject, InvalidObject, ObjectNotFound, StoreError, StoreUsageError
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
        if not self._has(oid):
            self._write(oid, (raw,), len(raw))
        return oid

    def put_blob(self, data: Buffer) -> bytes:
        """Store ``data`` as a blob without copying it; return the blob's id."""
        self._check_open()
        header = blob_header(len(data))
        h = blake3(header)
        h.update(data)
        oid: bytes = h.digest()
        if not self._has(oid):
            self._write(oid, (header, data), len(header) + len(data))
        return oid

    def put_object(self, obj: Object) -> bytes:
        """Encode and store ``obj``; return its id."""
        if type(obj) is Blob:
            return self.put_blob(obj.data)
        self._check_open()
        raw = encode(obj)
        oid = object_id(raw)
        if not self._has(oid):
            self._write(oid, (raw,), len(raw))
        return oid

    def delete(self, oid: bytes) -> bool:
        """Remove an object; return whether it was there. Callers make sure nothing needs it."""
        self._check_open()
        return self._delete(check_id(oid))

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
        self._check_open()
        return self._has(check_id(oid))

    def __contains__(self, oid: bytes) -> bool:
        return self.has(oid)

    @abc.abstractmethod
    def ids(self) -> Iterator[bytes]:
        """Every stored id, in no particular order."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Object count and bytes; cheap (counters, not a scan), so it may be polled."""

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> ObjectStore:
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

    @abc.abstractmethod
    def _write(self, oid: bytes, parts: Sequence[Buffer], size: int) -> None:
        """Store the concatenation of ``parts`` (``size`` bytes, hashing to ``oid``)."""

    @abc.abstractmethod
    def _get(self, oid: bytes) -> bytes: ...

    @abc.abstractmethod
    def _delete(self, oid: bytes) -> bool: ...


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

    def _delete(self, oid: bytes) -> bool:
        with self._lock:
            raw = self._objects.pop(oid, None)
            if raw is None:
                return False
            self._bytes -= len(raw)
            return True

    def ids(self) -> Iterator[bytes]:
        with self._lock:
            snapshot = list(self._objects)
        return iter(snapshot)

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(len(self._objects), self._bytes)


class DiskObjectStore(ObjectStore):
    """Objects as files ``<root>/objects/<2 hex>/<62 hex>``, read-only, one per object.

    Several processes may share one root. ``fsync=True`` makes every put durable before it
    returns (file and directory fsync); without it a power loss may lose or truncate recent
    objects, which verify-on-read then reports as corrupt. A corrupt file found by :meth:`get`
    is moved to ``<root>/corrupt/`` so that the object can be stored again.

    :meth:`stats` counts the directory once, on first call, then keeps counters; writes by
    other processes after that are seen when the store is reopened.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = os.fspath(root)
        self.fsync = fsync
        self._objdir = os.path.join(self.root, "objects")
        self._tmpdir = os.path.join(self.root, "tmp")
        self._corruptdir = os.path.join(self.root, "corrupt")
        for d in (self._objdir, self._tmpdir):
            os.makedirs(d, exist_ok=True)
        self._token = secrets.token_hex(4)
        self._seq = itertools.count()
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        self._count: int | None = None
        self._bytes = 0
        self.clean_tmp()

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

    # -- operations ------------------------------------------------------------------------

    def _has(self, oid: bytes) -> bool:
        return os.path.exists(self._path(oid)[1])

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
                existed = self._count is not None and os.path.exists(final)
                os.replace(tmp, final)
                if self._count is not None and not existed:
                    self._count += 1
                    self._bytes += size
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if self.fsync:
            _fsync_dir(d)

    def _get(self, oid: bytes) -> bytes:
        _, path = self._path(oid)
        try:
            with open(path, "rb", buffering=0) as f:
                raw = f.read(MAX_OBJECT_SIZE + 1)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {oid.hex()}") from None
        if len(raw) > MAX_OBJECT_SIZE or object_id(raw) != oid:
            self._quarantine(oid, path)
            raise CorruptObject(f"object file for {oid.hex()} does not match its id")
        return raw

    def _quarantine(self, oid: bytes, path: str) -> None:
        os.makedirs(self._corruptdir, exist_ok=True)
        dest = os.path.join(self._corruptdir, f"{oid.hex()}.{os.getpid()}.{time.time_ns()}")
        with self._lock:
            try:
                size = os.stat(path).st_size
                os.replace(path, dest)
            except FileNotFoundError:
                return
            if self._count is not None:
                self._count -= 1
                self._bytes -= size

    def _delete(self, oid: bytes) -> bool:
        _, path = self._path(oid)
        with self._lock:
            try:
                size = os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                return False
            if self._count is not None:
                self._count -= 1
                self._bytes -= size
        return True

    def ids(self) -> Iterator[bytes]:
        for prefix, path in self._fanout_dirs():
            with os.scandir(path) as it:
                for entry in it:
                    if len(entry.name) == 2 * ID_SIZE - 2 and _HEX.issuperset(entry.name):
                        yield bytes.fromhex(prefix + entry.name)

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
                for _, path in self._fanout_dirs():
                    with os.scandir(path) as it:
                        for entry in it:
                            if len(entry.name) == 2 * ID_SIZE - 2:
                                count += 1
                                total += entry.stat().st_size
                self._count, self._bytes = count, total
            return StoreStats(self._count, self._bytes)

    def clean_tmp(self, max_age_s: float = TMP_MAX_AGE_S) -> int:
        """Remove temp files older than ``max_age_s`` (left by crashed writers); return how
        many. Younger ones may belong to a live writer in another process."""
        limit = time.time() - max_age_s
        removed = 0
        with os.scandir(self._tmpdir) as it:
            for entry in it:
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < limit:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def __repr__(self) -> str:
        return f"DiskObjectStore({self.root!r}, fsync={self.fsync})"


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


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
