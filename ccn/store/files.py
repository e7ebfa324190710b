"""Files: turning files and directories into objects and back, and publishing them.

This module owns the shape of the object graph for content: a file is cut into blobs
(:mod:`ccn.store.chunker`) under a tree of manifests of bounded fan-out (a file of one chunk is
a single blob); a directory is a :class:`~ccn.store.objects.Tree` of such files and of
subdirectories. Everything streams: memory use does not grow with the size of a file. Every
import runs in one :meth:`~ccn.store.objstore.ObjectStore.batch` (on disk: one pack file), so
its objects appear together or not at all.

Export verifies as it goes: every object against its id (the store does that), every pointer's
kind and size against what it points at, and the whole content against the expected
``content_hash``. It writes into a temporary name next to the destination and renames at the
end, so a failed export leaves nothing half-written under the destination name.
"""

from __future__ import annotations

import collections
import io
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from blake3 import blake3

from ccn.errors import (
    CorruptObject,
    ImportStopped,
    RefConflict,
    StoreUsageError,
    stop_if_asked,
)
from ccn.name import Name
from ccn.store.chunker import BLOCK_SIZE, DEFAULT_CHUNKER, Chunker, Readable
from ccn.store.objects import (
    CONTENT_KINDS,
    MAX_ENTRY_NAME,
    MAX_MANIFEST_ENTRIES,
    MAX_TREE_ENTRIES,
    MODE_DIRECTORY,
    MODE_EXECUTABLE,
    MODE_FILE,
    Blob,
    Kind,
    Manifest,
    Pointer,
    Tree,
    TreeEntry,
    Version,
    tree_content_hash,
)
from ccn.store.objstore import ObjectStore, check_id
from ccn.store.refs import RefStore, check_ref_name

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_WRITERS: Final = 4
#: Files up to one chunker block are imported in the calling thread, read whole (see
#: import_file): measured here, that is 1.3x (4 MiB files) to 10x (1 KiB files) faster than
#: starting the pipeline of threads for them, and holds no more than one block in memory.
SMALL_FILE_MAX: Final = BLOCK_SIZE
_BLOCKS_IN_FLIGHT: Final = 2 * _WRITERS

#: How deep directories may nest below the one imported. The import recurses once per level:
#: without a bound, a deep enough tree (a few hundred levels more) raised RecursionError in
#: the node. 256 is far beyond real trees and far below both the interpreter's recursion limit
#: and the depth at which paths outgrow PATH_MAX (4096) for a consumer writing them out.
MAX_TREE_DEPTH: Final = 256

PUBLISH_ATTEMPTS: Final = 100
"""How many times :func:`publish` retries after losing a race to another publisher."""


@dataclass(frozen=True, slots=True)
class Root:
    """What an import produced: the root object, its kind, the content size and the
    chunking-independent content hash (what a :class:`~ccn.store.objects.Version` records)."""

    id: bytes
    kind: Kind
    size: int
    content_hash: bytes


def _check_fanout(fanout: int) -> None:
    if not 2 <= fanout <= MAX_MANIFEST_ENTRIES:
        raise StoreUsageError(f"manifest fan-out must be in [2, {MAX_MANIFEST_ENTRIES}]")


class _ManifestBuilder:
    """Builds the manifest tree bottom-up as blob pointers arrive, keeping at most ``fanout``
    pointers per level in memory. Full levels become a manifest one level up; at the end, a
    lone leftover pointer moves up as is rather than getting a one-entry manifest."""

    def __init__(self, store: ObjectStore, fanout: int) -> None:
        self._store = store
        self._fanout = fanout
        self._levels: list[list[Pointer]] = []

    def add(self, pointer: Pointer, level: int = 0) -> None:
        while len(self._levels) <= level:
            self._levels.append([])
        row = self._levels[level]
        row.append(pointer)
        if len(row) == self._fanout:
            self._levels[level] = []
            self.add(self._manifest(row), level + 1)

    def _manifest(self, row: list[Pointer]) -> Pointer:
        m = Manifest(tuple(row))
        return Pointer(self._store.put_object(m), m.size, Kind.MANIFEST)

    def finish(self) -> Pointer | None:
        level = 0
        while level < len(self._levels):
            row = self._levels[level]
            self._levels[level] = []
            if not any(self._levels[level + 1 :]) and len(row) <= 1:
                return row[0] if row else None
            if len(row) == 1:
                self.add(row[0], level + 1)
            elif row:
                self.add(self._manifest(row), level + 1)
            level += 1
        return None


def _hash_update(digest: blake3, data: memoryview) -> None:
    digest.update(data)


def _put_blobs(store: ObjectStore, chunks: list[memoryview]) -> list[Pointer]:
    return [Pointer(store.put_blob(c), len(c), Kind.BLOB) for c in chunks]


def _check_stop(stop: threading.Event | None) -> None:
    what = "stopped before the end (its client left, or the node is stopping)"
    stop_if_asked(stop, what, ImportStopped)


def _import_stream(
    store: ObjectStore,
    stream: Readable,
    chunker: Chunker,
    fanout: int,
    stop: threading.Event | None = None,
) -> Root:
    # Three things overlap here (2 cores is the target machine): this thread reads and cuts,
    # one worker hashes the whole content in block-sized updates (blake3 releases the GIL for
    # large inputs, and updates must stay in order), and writer threads store the blobs of
    # one block each (file system calls release the GIL). Blocks in flight are bounded.
    builder = _ManifestBuilder(store, fanout)
    content = blake3()
    pending: collections.deque[tuple[Future[None], Future[list[Pointer]]]] = collections.deque()

    def collect() -> None:
        hashed, written = pending.popleft()
        hashed.result()
        for p in written.result():
            builder.add(p)

    with (
        ThreadPoolExecutor(1, thread_name_prefix="ccn-hash") as hasher,
        ThreadPoolExecutor(_WRITERS, thread_name_prefix="ccn-put") as writers,
    ):
        try:
            for span, chunks in chunker.cut_blocks(stream):
                _check_stop(stop)
                hashed = hasher.submit(_hash_update, content, span)
                pending.append((hashed, writers.submit(_put_blobs, store, chunks)))
                while len(pending) > _BLOCKS_IN_FLIGHT or (pending and pending[0][1].done()):
                    collect()
            while pending:
                collect()
        finally:
            for hashed, written in pending:
                hashed.cancel()
                written.cancel()
    root = builder.finish()
    if root is None:
        root = Pointer(store.put_blob(b""), 0, Kind.BLOB)
    return Root(root.id, root.kind, root.size, content.digest())


def _import_buffer(
    store: ObjectStore, data: bytes | memoryview, chunker: Chunker, fanout: int
) -> Root:
    """:func:`_import_stream` for content already in memory, in this thread."""
    builder = _ManifestBuilder(store, fanout)
    for chunk in chunker.cut_buffer(data):
        builder.add(Pointer(store.put_blob(chunk), len(chunk), Kind.BLOB))
    root = builder.finish() or Pointer(store.put_blob(b""), 0, Kind.BLOB)
    return Root(root.id, root.kind, root.size, blake3(data).digest())


class _SourceFile(io.FileIO):
    """A file being imported, whose read errors name it: a failed ``read`` names no file, and
    "Invalid argument" alone (``ccn put /proc``) does not say which of thousands it was."""

    def read(self, size: int | None = -1, /) -> bytes:
        try:
            return super().read(size)
        except OSError as e:
            raise _named(e, self.name) from None

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        try:
            return super().readinto(buffer)
        except OSError as e:
            raise _named(e, self.name) from None


def _named(e: OSError, name: object) -> OSError:
    if e.filename is not None or not isinstance(name, (str, bytes)):
        return e
    return type(e)(e.errno, e.strerror, os.fsdecode(name))


def _read_at_most(f: io.FileIO, limit: int) -> bytes | None:
    """All of ``f`` if it holds at most ``limit`` bytes, else None (having read ``limit + 1``)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        piece = f.read(limit + 1 - size)
        if not piece:
            return b"".join(parts)
        parts.append(piece)
        size += len(piece)
    return None


def import_file(
    store: ObjectStore,
    src: Readable | str | os.PathLike[str],
    *,
    chunker: Chunker = DEFAULT_CHUNKER,
    fanout: int = MAX_MANIFEST_ENTRIES,
    stop: threading.Event | None = None,
) -> Root:
    """Store the content of a binary file object (read to its end) or of a file path. Once
    ``stop`` is set, a stream being read raises :class:`~ccn.errors.ImportStopped` at its next
    block (at most a few MiB later), and the batch it wrote is discarded. A regular file whose
    size or modification time changed while it was read is refused the same way
    (:class:`~ccn.errors.StoreUsageError`): its bytes may be half old, half new."""
    _check_fanout(fanout)
    with store.batch() as batch:
        if isinstance(src, (str, os.PathLike)):
            with _SourceFile(src, "rb") as f:
                # A small regular file is stored in this thread: the pipeline of
                # _import_stream starts threads, which costs more than the whole import of a
                # file of a few KiB. (A pipe or device streams, whatever its size.)
                st = os.fstat(f.fileno())
                if stat.S_ISREG(st.st_mode) and st.st_size <= SMALL_FILE_MAX:
                    small = _read_at_most(f, SMALL_FILE_MAX)
                    if small is None:  # it grew past the limit since
                        raise _changed_error(src)
                    root = _import_buffer(batch, small, chunker, fanout)
                else:
                    root = _import_stream(batch, f, chunker, fanout, stop)
                if stat.S_ISREG(st.st_mode) and _changed(st, os.fstat(f.fileno()), root.size):
                    raise _changed_error(src)
                return root
        return _import_stream(batch, src, chunker, fanout, stop)


def _changed(before: os.stat_result, after: os.stat_result, size_read: int) -> bool:
    """Whether a regular file was written to while it was imported (what was read may mix
    old and new bytes: ``tar`` says "file changed as we read it")."""
    return (
        size_read != before.st_size
        or after.st_size != before.st_size
        or after.st_mtime_ns != before.st_mtime_ns
    )


def _changed_error(path: str | os.PathLike[str]) -> StoreUsageError:
    return StoreUsageError(
        f"{os.fsdecode(path)} changed while it was read (is it still being written?)"
    )


def import_bytes(
    store: ObjectStore,
    data: bytes | memoryview,
    *,
    chunker: Chunker = DEFAULT_CHUNKER,
    fanout: int = MAX_MANIFEST_ENTRIES,
) -> Root:
    """Store in-memory content; the same objects :func:`import_file` makes of equal bytes."""
    _check_fanout(fanout)
    with store.batch() as batch:
        return _import_buffer(batch, data, chunker, fanout)


def import_dir(
    store: ObjectStore,
    path: str | os.PathLike[str],
    *,
    chunker: Chunker = DEFAULT_CHUNKER,
    fanout: int = MAX_MANIFEST_ENTRIES,
    skip_unsupported: bool = False,
    stop: threading.Event | None = None,
) -> Root:
    """Store a directory tree of regular files and directories (``stop``: as for
    :func:`import_file`, checked before each entry too).

    Anything else (symlinks, devices, sockets, fifos) raises
    :class:`~ccn.errors.StoreUsageError` naming the path, or is left out if
    ``skip_unsupported``. A file is executable (mode 100755) if its owner may execute it.
    Directories nested more than :data:`MAX_TREE_DEPTH` levels below ``path`` are refused.
    """
    _check_fanout(fanout)
    top = os.fspath(path)
    if not stat.S_ISDIR(os.stat(top).st_mode):
        raise StoreUsageError(f"not a directory: {top}")
    with store.batch() as batch:
        return _import_dir(batch, top, chunker, fanout, skip_unsupported, stop, 0)


def _import_dir(
    store: ObjectStore,
    path: str,
    chunker: Chunker,
    fanout: int,
    skip_unsupported: bool,
    stop: threading.Event | None,
    depth: int,
) -> Root:
    with os.scandir(path) as it:
        dirents = sorted(it, key=lambda e: os.fsencode(e.name))
    entries: list[TreeEntry] = []
    hashes: list[tuple[bytes, int, int, bytes]] = []
    for d in dirents:
        _check_stop(stop)
        name = os.fsencode(d.name)
        st = d.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            mode = MODE_DIRECTORY
        elif stat.S_ISREG(st.st_mode):
            mode = MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_FILE
        elif skip_unsupported:
            continue
        else:
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise StoreUsageError(
                f"cannot import {d.path}: {what} (only regular files and directories are)"
            )
        if len(name) > MAX_ENTRY_NAME:
            raise StoreUsageError(f"cannot import {d.path}: name longer than {MAX_ENTRY_NAME}")
        if len(entries) == MAX_TREE_ENTRIES:
            raise StoreUsageError(f"cannot import {path}: more than {MAX_TREE_ENTRIES} entries")
        if mode == MODE_DIRECTORY:
            if depth == MAX_TREE_DEPTH:
                raise StoreUsageError(
                    f"cannot import {d.path}: directories nested more than {MAX_TREE_DEPTH} deep"
                )
            r = _import_dir(store, d.path, chunker, fanout, skip_unsupported, stop, depth + 1)
        else:
            r = import_file(store, d.path, chunker=chunker, fanout=fanout, stop=stop)
        entries.append(TreeEntry(name, mode, r.id, r.size, r.kind))
        hashes.append((name, mode, r.size, r.content_hash))
    tree = Tree(tuple(entries))
    return Root(store.put_object(tree), Kind.TREE, tree.size, tree_content_hash(hashes))


def import_path(
    store: ObjectStore,
    path: str | os.PathLike[str],
    *,
    chunker: Chunker = DEFAULT_CHUNKER,
    fanout: int = MAX_MANIFEST_ENTRIES,
    skip_unsupported: bool = False,
    stop: threading.Event | None = None,
) -> Root:
    """:func:`import_dir` for a directory, :func:`import_file` for anything else readable.
    ``path`` itself may be a symlink; it is followed."""
    if os.path.isdir(path):
        return import_dir(
            store,
            path,
            chunker=chunker,
            fanout=fanout,
            skip_unsupported=skip_unsupported,
            stop=stop,
        )
    return import_file(store, path, chunker=chunker, fanout=fanout, stop=stop)


# -- reading back ----------------------------------------------------------------------------


def iter_content(store: ObjectStore, root_id: bytes, kind: Kind | None = None) -> Iterator[bytes]:
    """The bytes of a file root (blob or manifest), chunk by chunk, in order.

    Checks that every object has the kind and size its pointer claims
    (:class:`~ccn.errors.CorruptObject` if not). ``kind``, if given, is what the root must be.
    """
    check_id(root_id)
    if kind is not None and kind not in CONTENT_KINDS:
        raise StoreUsageError(f"a {kind.name.lower()} root has no file content")
    return _walk(store, root_id, kind, None)


def _walk(store: ObjectStore, oid: bytes, kind: Kind | None, size: int | None) -> Iterator[bytes]:
    obj = store.get_object(oid)
    if kind is not None and obj.kind is not kind:
        raise CorruptObject(f"object {oid.hex()} is a {obj.kind.name}, expected a {kind.name}")
    if type(obj) is Blob:
        if size is not None and len(obj.data) != size:
            raise CorruptObject(f"blob {oid.hex()} is not of the size its pointer claims")
        yield obj.data
    elif type(obj) is Manifest:
        if size is not None and obj.size != size:
            raise CorruptObject(f"manifest {oid.hex()} is not of the size its pointer claims")
        for p in obj.entries:
            yield from _walk(store, p.id, p.kind, p.size)
    else:
        raise StoreUsageError(f"object {oid.hex()} is a {obj.kind.name}, not file content")


def export(
    store: ObjectStore,
    root_id: bytes,
    kind: Kind,
    dest: str | os.PathLike[str],
    *,
    content_hash: bytes | None = None,
) -> Root:
    """Write a file (blob or manifest root) or directory (tree root) to ``dest``.

    A file replaces ``dest`` atomically; a directory requires that ``dest`` does not exist.
    If ``content_hash`` is given, the content must match it (:class:`CorruptObject` if not,
    and nothing is left at ``dest``). Returns the root as found, with its content hash.
    """
    check_id(root_id)
    dest = os.fspath(dest)
    parent, base = os.path.split(os.path.abspath(dest))
    tmp = os.path.join(parent, f".{base}.ccn-{os.getpid()}-{time.monotonic_ns()}")
    try:
        if kind is Kind.TREE:
            if os.path.lexists(dest):
                raise StoreUsageError(f"cannot export a directory over existing {dest}")
            size, digest = _export_tree(store, root_id, tmp)
        elif kind in CONTENT_KINDS:
            size, digest = _export_file(store, root_id, kind, tmp, None)
        else:
            raise StoreUsageError(f"a {kind.name.lower()} is not exportable content")
        if content_hash is not None and digest != content_hash:
            raise CorruptObject(f"content of {root_id.hex()} does not match its content hash")
        os.replace(tmp, dest)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return Root(root_id, kind, size, digest)


def _export_file(
    store: ObjectStore, oid: bytes, kind: Kind, path: str, size: int | None
) -> tuple[int, bytes]:
    digest = blake3()
    total = 0
    with open(path, "xb") as f:
        for data in _walk(store, oid, kind, size):
            digest.update(data)
            f.write(data)
            total += len(data)
    return total, digest.digest()


def _export_tree(store: ObjectStore, oid: bytes, path: str) -> tuple[int, bytes]:
    tree = store.get_object(oid)
    if type(tree) is not Tree:
        raise CorruptObject(f"object {oid.hex()} is a {tree.kind.name}, expected a TREE")
    os.mkdir(path)
    hashes = []
    for e in tree.entries:
        sub = os.path.join(path, os.fsdecode(e.name))
        if e.mode == MODE_DIRECTORY:
            size, digest = _export_tree(store, e.id, sub)
            if size != e.size:
                raise CorruptObject(f"tree {e.id.hex()} is not of the size its entry claims")
        else:
            size, digest = _export_file(store, e.id, e.kind, sub, e.size)
            os.chmod(sub, 0o755 if e.mode == MODE_EXECUTABLE else 0o644)
        hashes.append((e.name, e.mode, size, digest))
    return tree.size, tree_content_hash(hashes)


# -- publishing ------------------------------------------------------------------------------


def publish(
    store: ObjectStore,
    refs: RefStore,
    name: Name,
    path: str | os.PathLike[str],
    *,
    publisher: bytes | None = None,
    sign: Callable[[Version], Version] | None = None,
    chunker: Chunker = DEFAULT_CHUNKER,
    fanout: int = MAX_MANIFEST_ENTRIES,
    now_ns: int | None = None,
    stop: threading.Event | None = None,
) -> Version:
    """Import ``path`` and publish it as the next version of ``name``.

    The version gets number ``latest + 1`` and ``previous`` = the latest version's id. If
    another publisher takes that number first, the version is rebuilt on top of theirs and
    tried again (up to :data:`PUBLISH_ATTEMPTS` times), so concurrent publishers each get a
    version of their own and none is lost. ``sign``, if given, turns each version built into
    its signed copy before it is stored (see :meth:`ccn.keys.SigningKey.sign`). Once ``stop``
    is set, the import raises :class:`~ccn.errors.ImportStopped` (see :func:`import_file`) and
    nothing is published: the ref is not moved after ``stop``.
    """
    check_ref_name(name)

    def build(latest: tuple[int, bytes] | None) -> Version:
        number, previous = (1, None) if latest is None else (latest[0] + 1, latest[1])
        version = Version(
            name=name,
            number=number,
            root=root.id,
            root_kind=root.kind,
            size=root.size,
            content_hash=root.content_hash,
            created_ns=time.time_ns() if now_ns is None else now_ns,
            previous=previous,
            publisher=publisher,
        )
        return version if sign is None else sign(version)

    # The version object goes into the import's own pack (a loose file per publish was
    # half of a store's files, and each merge's work): the pack is committed (with fsync:
    # synced, with its index) when the batch ends, before the ref names the version.
    with store.batch() as batch:
        root = import_path(batch, path, chunker=chunker, fanout=fanout, stop=stop)
        latest = refs.latest(name)
        version = build(latest)
        vid = batch.put_object(version)
    conflict: RefConflict | None = None
    for attempt in range(PUBLISH_ATTEMPTS):
        if attempt:
            # Another publisher took the number: the version is built again on top of theirs
            # (the one in the pack stays unreferenced, for gc).
            latest = refs.latest(name)
            version = build(latest)
            vid = store.put_object(version)
        _check_stop(stop)
        try:
            refs.compare_and_swap(name, None if latest is None else latest[0], version.number, vid)
        except RefConflict as e:
            conflict = e
            continue
        return version
    assert conflict is not None
    raise conflict
