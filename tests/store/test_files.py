"""Import, export, streaming read-back and publishing of files and directories."""

from __future__ import annotations

import io
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from ccn.errors import CorruptObject, ImportStopped, InvalidName, StoreUsageError
from ccn.name import Name
from ccn.store import files as files_module
from ccn.store import objstore as objstore_module
from ccn.store.chunker import Chunker
from ccn.store.files import (
    MAX_TREE_DEPTH,
    Root,
    export,
    import_bytes,
    import_dir,
    import_file,
    import_path,
    iter_content,
    publish,
)
from ccn.store.objects import (
    MODE_DIRECTORY,
    MODE_EXECUTABLE,
    MODE_FILE,
    Blob,
    Kind,
    Manifest,
    Pointer,
    Tree,
    Version,
    children,
    id_of,
)
from ccn.store.objstore import DiskObjectStore, MemoryObjectStore, ObjectStore
from ccn.store.refs import DiskRefStore, MemoryRefStore, RefStore

SMALL = Chunker(avg_size=4096, min_size=1024, max_size=16384)
"""Small chunks and a fan-out of 4 give deep manifest trees from little data."""


def _data(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def _depth(store: ObjectStore, oid: bytes) -> int:
    obj = store.get_object(oid)
    return 1 + max((_depth(store, i) for i, _ in children(obj)), default=0)


def _all_reachable(store: ObjectStore, oid: bytes) -> set[bytes]:
    seen = {oid}
    for child, _ in children(store.get_object(oid)):
        seen |= _all_reachable(store, child)
    return seen


@pytest.mark.parametrize("size", [0, 1, 1000, 3 << 20])
def test_file_round_trip(store: ObjectStore, tmp_path: Path, size: int) -> None:
    data = _data(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    root = import_file(store, src, chunker=SMALL, fanout=4)
    assert root.size == size
    assert root.content_hash == blake3(data).digest()
    assert root.kind is (Kind.BLOB if size <= 1000 else Kind.MANIFEST)
    if size > 1000:
        assert _depth(store, root.id) >= 4  # several manifest levels
    assert b"".join(iter_content(store, root.id)) == data
    assert import_bytes(store, data, chunker=SMALL, fanout=4) == root
    with open(src, "rb") as f:
        assert import_file(store, f, chunker=SMALL, fanout=4) == root
    out = tmp_path / "out.bin"
    assert export(store, root.id, root.kind, out, content_hash=root.content_hash) == root
    assert out.read_bytes() == data


@pytest.mark.parametrize("delta", [-1, 0, 1, 5000])
def test_files_either_side_of_the_small_file_limit_make_the_same_objects(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delta: int
) -> None:
    # Up to SMALL_FILE_MAX a file is read whole and stored in this thread; above it, through
    # the pipeline of threads. Either way the objects are those of the same bytes in memory.
    monkeypatch.setattr(files_module, "SMALL_FILE_MAX", 64 * 1024)
    data = _data(64 * 1024 + delta, seed=delta + 100)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    root = import_file(store, src, chunker=SMALL, fanout=4)
    assert root == import_bytes(store, data, chunker=SMALL, fanout=4)
    assert b"".join(iter_content(store, root.id)) == data


def test_a_fifo_longer_than_the_small_file_limit_streams(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipe cannot be read twice: it must not take the read-whole path and then seek back.
    monkeypatch.setattr(files_module, "SMALL_FILE_MAX", 64 * 1024)
    data = _data(200 * 1024, seed=9)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        root = import_path(store, fifo, chunker=SMALL, fanout=4)
    finally:
        writer.join(timeout=10)
    assert root == import_bytes(store, data, chunker=SMALL, fanout=4)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc")
@pytest.mark.parametrize("small_max", [files_module.SMALL_FILE_MAX, -1])
def test_a_read_error_names_the_file(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, small_max: int
) -> None:
    # `ccn put /proc` said "Invalid argument" and nothing else: a failed read names no file.
    # (clear_refs can be opened but not read; -1 sends it down the streaming path.)
    monkeypatch.setattr(files_module, "SMALL_FILE_MAX", small_max)
    with pytest.raises(OSError) as caught:
        import_path(store, "/proc/self/clear_refs")
    assert caught.value.filename == "/proc/self/clear_refs"
    assert "clear_refs" in str(caught.value)


def test_small_files_are_imported_without_starting_threads(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Starting the pipeline's threads cost ~1 ms a file: 10x the import of a 1 KiB file.
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a small file started the thread pipeline")

    for i in range(20):
        (tmp_path / "d").mkdir(exist_ok=True)
        (tmp_path / "d" / f"f{i}").write_bytes(_data(1000 + i, seed=i))
    (tmp_path / "big.bin").write_bytes(_data(files_module.SMALL_FILE_MAX + 1))
    monkeypatch.setattr(files_module, "ThreadPoolExecutor", no_threads)
    tree = store.get_object(import_dir(store, tmp_path / "d").id)
    assert isinstance(tree, Tree) and len(tree.entries) == 20
    with pytest.raises(AssertionError, match="thread pipeline"):
        import_file(store, tmp_path / "big.bin")


def test_fan_out_is_bounded_and_tree_shape_deterministic(store: ObjectStore) -> None:
    data = _data(1 << 20, seed=8)
    for fanout in (2, 3, 5, 64):
        root = import_bytes(store, data, chunker=SMALL, fanout=fanout)
        for oid in _all_reachable(store, root.id):
            obj = store.get_object(oid)
            if isinstance(obj, Manifest):
                assert 2 <= len(obj.entries) <= fanout
        assert b"".join(iter_content(store, root.id, root.kind)) == data
    with pytest.raises(StoreUsageError):
        import_bytes(store, data, fanout=1)


def test_default_parameters_make_a_single_blob_or_one_manifest(store: ObjectStore) -> None:
    small = import_bytes(store, b"hello")
    assert small.kind is Kind.BLOB and store.get_object(small.id) == Blob(b"hello")
    big = import_bytes(store, _data(2 << 20))
    manifest = store.get_object(big.id)
    assert isinstance(manifest, Manifest)
    assert all(p.kind is Kind.BLOB for p in manifest.entries)


def test_an_edit_shares_most_blobs(store: ObjectStore) -> None:
    data = _data(4 << 20, seed=9)
    v1 = import_bytes(store, data)
    after_v1 = store.stats().objects
    edited = data[: 2 << 20] + b"an edit" + data[2 << 20 :]
    v2 = import_bytes(store, edited)
    assert v1.id != v2.id
    assert store.stats().objects - after_v1 <= 4  # two or so new blobs and a new manifest


def _make_tree(base: Path) -> None:
    (base / "sub" / "deeper").mkdir(parents=True)
    (base / "empty").mkdir()
    (base / "a.txt").write_bytes(b"alpha")
    (base / "big.bin").write_bytes(_data(200_000, seed=3))
    (base / "sub" / "b.txt").write_bytes(b"")
    (base / "sub" / "deeper" / "c.bin").write_bytes(_data(70_000, seed=4))
    run = base / "sub" / "run.sh"
    run.write_bytes(b"#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (base / "\u00e9t\u00e9").write_bytes(b"unicode name")


def _snapshot(base: Path) -> dict[str, tuple[bool, bytes, bool]]:
    out = {}
    for dirpath, dirs, files in os.walk(base):
        for d in dirs:
            p = Path(dirpath) / d
            out[str(p.relative_to(base))] = (True, b"", False)
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(base))] = (False, p.read_bytes(), os.access(p, os.X_OK))
    return out


def test_directory_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _make_tree(src)
    root = import_dir(store, src, chunker=SMALL, fanout=4)
    assert root.kind is Kind.TREE
    assert root.size == 5 + 200_000 + 70_000 + 18 + 12
    assert import_path(store, src, chunker=SMALL, fanout=4) == root
    tree = store.get_object(root.id)
    assert isinstance(tree, Tree)
    modes = {e.name: e.mode for e in tree.entries}
    assert modes[b"sub"] == MODE_DIRECTORY and modes[b"a.txt"] == MODE_FILE
    sub = store.get_object(next(e.id for e in tree.entries if e.name == b"sub"))
    assert isinstance(sub, Tree)
    assert {e.name: e.mode for e in sub.entries}[b"run.sh"] == MODE_EXECUTABLE

    out = tmp_path / "out"
    assert export(store, root.id, Kind.TREE, out, content_hash=root.content_hash) == root
    assert _snapshot(out) == _snapshot(src)
    # Default chunking gives other ids but the same chunking-independent content hash.
    assert import_dir(store, src).content_hash == root.content_hash
    with pytest.raises(StoreUsageError):
        export(store, root.id, Kind.TREE, out)


def test_content_hash_sees_names_modes_and_bytes(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _make_tree(src)
    first = import_dir(store, src).content_hash
    (src / "sub" / "run.sh").chmod(0o644)
    second = import_dir(store, src).content_hash
    (src / "a.txt").rename(src / "b.txt")
    third = import_dir(store, src).content_hash
    assert len({first, second, third}) == 3


def test_symlinks_and_special_files(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "real").write_bytes(b"x")
    (src / "link").symlink_to("real")
    os.mkfifo(src / "fifo")
    with pytest.raises(StoreUsageError, match="symlink"):
        import_dir(store, src)
    root = import_dir(store, src, skip_unsupported=True)
    tree = store.get_object(root.id)
    assert isinstance(tree, Tree) and [e.name for e in tree.entries] == [b"real"]
    with pytest.raises(StoreUsageError):
        import_dir(store, src / "real")


def test_directories_nested_too_deep_are_refused(store: ObjectStore, tmp_path: Path) -> None:
    # The import recurses per level: unbounded, ~1000 levels raised RecursionError, which
    # stopped the node that ran the publish. One level past the bound is a StoreUsageError.
    src = tmp_path / "src"
    leaf = src.joinpath(*["d"] * MAX_TREE_DEPTH)
    leaf.mkdir(parents=True)
    (leaf / "f").write_bytes(b"deep")
    root = import_dir(store, src)
    out = tmp_path / "out"
    export(store, root.id, root.kind, out)
    assert out.joinpath(*["d"] * MAX_TREE_DEPTH, "f").read_bytes() == b"deep"
    (leaf / "d").mkdir()
    with pytest.raises(StoreUsageError, match=f"nested more than {MAX_TREE_DEPTH} deep"):
        import_dir(store, src)


def test_export_detects_a_corrupted_object(tmp_path: Path) -> None:
    store = DiskObjectStore(tmp_path / "store", fsync=False)
    data = _data(300_000, seed=5)
    root = import_bytes(store, data, chunker=SMALL, fanout=4)
    assert root.kind is Kind.MANIFEST
    blob_id = _first_blob(store, root.id)
    where = store.locate(blob_id)
    assert where is not None and where[0].endswith(".pack")  # imports go into one pack
    path, off, length = Path(where[0]), where[1], where[2]
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[off + length // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = tmp_path / "out.bin"
    with pytest.raises(CorruptObject):
        export(store, root.id, root.kind, out, content_hash=root.content_hash)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # no temp file left behind


def _first_blob(store: ObjectStore, oid: bytes) -> bytes:
    for child, kind in children(store.get_object(oid)):
        return child if kind is Kind.BLOB else _first_blob(store, child)
    raise AssertionError("no blob")


def test_export_checks_content_hash_kinds_and_sizes(tmp_path: Path) -> None:
    store = MemoryObjectStore()
    root = import_bytes(store, b"content")
    with pytest.raises(CorruptObject):
        export(store, root.id, root.kind, tmp_path / "x", content_hash=b"\x00" * 32)
    assert not (tmp_path / "x").exists()
    lying = store.put_object(Manifest((Pointer(root.id, 99, Kind.BLOB),)))
    with pytest.raises(CorruptObject):
        b"".join(iter_content(store, lying))
    wrong_kind = store.put_object(Manifest((Pointer(root.id, 7, Kind.MANIFEST),)))
    with pytest.raises(CorruptObject):
        b"".join(iter_content(store, wrong_kind))
    with pytest.raises(CorruptObject):
        export(store, root.id, Kind.TREE, tmp_path / "d")
    tree = import_dir(store, _mkdir(tmp_path / "t"))
    with pytest.raises(StoreUsageError):
        b"".join(iter_content(store, tree.id))
    with pytest.raises(StoreUsageError):
        iter_content(store, tree.id, Kind.TREE)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    (path / "f").write_bytes(b"f")
    return path


def test_export_replaces_an_existing_file(store: ObjectStore, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"old content")
    root = import_file(store, io.BytesIO(b"new content"))
    export(store, root.id, root.kind, out)
    assert out.read_bytes() == b"new content"


def test_publish_numbers_and_chains_versions(tmp_path: Path) -> None:
    store, refs = MemoryObjectStore(), MemoryRefStore()
    name = Name.parse("/docs/readme")
    f = tmp_path / "readme"
    f.write_bytes(b"one")
    v1 = publish(store, refs, name, f, publisher=b"me", now_ns=5)
    f.write_bytes(b"two")
    v2 = publish(store, refs, name, f)
    assert (v1.number, v1.previous, v1.publisher, v1.created_ns) == (1, None, b"me", 5)
    assert v2.number == 2 and v2.previous == id_of(v1)
    assert refs.versions(name) == [(1, id_of(v1)), (2, id_of(v2))]
    assert store.get_object(id_of(v2)) == v2
    assert v2.full_name == Name.parse("/docs/readme/v2")
    assert b"".join(iter_content(store, v2.root, v2.root_kind)) == b"two"
    assert v2.content_hash == blake3(b"two").digest() and v2.size == 3
    with pytest.raises(InvalidName):
        publish(store, refs, Name.parse("/docs/readme/v3"), f)


@pytest.mark.parametrize("size", [100, 3 << 20])  # read at once, or streamed
@pytest.mark.parametrize("change", ["append", "rewrite in place"])
def test_a_file_written_to_while_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, change: str
) -> None:
    f = tmp_path / "f"
    f.write_bytes(os.urandom(size))
    mtime = f.stat().st_mtime_ns

    def write_during(real: Any) -> Any:
        def importing(*args: Any) -> Root:
            root: Root = real(*args)  # what was read: then the writer strikes, before the end
            if change == "append":
                with open(f, "ab") as w:
                    w.write(b"more")
            else:
                with open(f, "r+b") as w:
                    w.write(b"X")
                os.utime(f, ns=(mtime + 1, mtime + 1))  # even within one clock tick
            return root

        return importing

    monkeypatch.setattr(files_module, "_import_stream", write_during(files_module._import_stream))
    monkeypatch.setattr(files_module, "_import_buffer", write_during(files_module._import_buffer))
    store = DiskObjectStore(tmp_path / "store", fsync=False)
    with store:
        with pytest.raises(StoreUsageError, match=r"/f changed while it was read \(is it still"):
            import_file(store, f)
        assert store.stats().objects == 0  # the batch was discarded
        monkeypatch.undo()
        assert import_file(store, f).size == f.stat().st_size  # unchanged now: imported


class _StopAfterFirstRead(io.RawIOBase):
    """64 MiB of random bytes; the first read sets ``stop``, as a shutdown would."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.left = 64 << 20

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        self.stop.set()
        n = min(len(b), self.left)
        b[:n] = os.urandom(n)
        self.left -= n
        return n


def test_a_stopped_import_raises_and_leaves_nothing(tmp_path: Path) -> None:
    store = DiskObjectStore(tmp_path / "store", fsync=False)
    with store:
        stop = threading.Event()
        with pytest.raises(ImportStopped):
            import_file(store, _StopAfterFirstRead(stop), stop=stop)
        assert store.stats().objects == 0  # the batch was discarded
        refs = MemoryRefStore()
        d = _mkdir(tmp_path / "site")
        with pytest.raises(ImportStopped):  # checked before each entry of a directory too
            publish(store, refs, Name.parse("/site"), d, stop=stop)
        f = tmp_path / "small"
        f.write_bytes(b"small")  # imported in one go: the check before the ref still holds
        with pytest.raises(ImportStopped):
            publish(store, refs, Name.parse("/small"), f, stop=stop)
        assert (
            refs.latest(Name.parse("/site")) is None and refs.latest(Name.parse("/small")) is None
        )
        stop.clear()
        assert publish(store, refs, Name.parse("/small"), f, stop=stop).number == 1


def test_publish_a_directory(tmp_path: Path) -> None:
    store, refs = MemoryObjectStore(), MemoryRefStore()
    v = publish(store, refs, Name.parse("/site"), _mkdir(tmp_path / "site"))
    assert v.root_kind is Kind.TREE and v.size == 1
    root = Root(v.root, v.root_kind, v.size, v.content_hash)
    copy = tmp_path / "copy"
    assert export(store, v.root, v.root_kind, copy, content_hash=v.content_hash) == root


def _check_chain(store: ObjectStore, refs: RefStore, name: Name, count: int) -> None:
    versions = refs.versions(name)
    assert [n for n, _ in versions] == list(range(1, count + 1))
    previous = None
    contents = set()
    for number, vid in versions:
        v = store.get_object(vid)
        assert isinstance(v, Version) and v.number == number and v.previous == previous
        contents.add(b"".join(iter_content(store, v.root, v.root_kind)))
        previous = vid
    assert len(contents) == count  # every publisher's content made it


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path) -> None:
    store = DiskObjectStore(tmp_path / "s", fsync=False)
    refs = DiskRefStore(tmp_path / "s", fsync=False)
    name = Name.parse("/shared")
    paths = []
    for i in range(12):
        p = tmp_path / f"in{i}"
        p.write_bytes(b"content %d" % i)
        paths.append(p)
    errors: list[BaseException] = []

    def run(mine: list[Path]) -> None:
        # Separate store instances, as separate processes would have.
        s = DiskObjectStore(tmp_path / "s", fsync=False)
        r = DiskRefStore(tmp_path / "s", fsync=False)
        try:
            for p in mine:
                publish(s, r, name, p)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(paths[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_chain(store, refs, name, 12)


def test_publish_puts_the_version_into_its_own_pack_durably_before_the_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each publish wrote its version object as a loose file: half of a store's files (and of
    # what every pack merge had to take in). It now goes into the import's pack, and the ref
    # still names it only once that pack is committed (synced, with fsync) and visible.
    root = tmp_path / "s"
    store, refs = DiskObjectStore(root), DiskRefStore(root)
    events: list[str] = []
    sync_dir = objstore_module._fsync_dir
    cas = refs.compare_and_swap

    def synced(path: str) -> None:
        events.append(f"sync {os.path.basename(path)}")
        sync_dir(path)

    def swap(name: Name, expected: int | None, number: int, vid: bytes) -> None:
        with DiskObjectStore(root, fsync=False) as other:  # what another process sees
            where = other.locate(vid)
            assert where is not None and where[0].endswith(".pack")
        events.append("ref")
        cas(name, expected, number, vid)

    monkeypatch.setattr(objstore_module, "_fsync_dir", synced)
    monkeypatch.setattr(refs, "compare_and_swap", swap)
    f = tmp_path / "f"
    f.write_bytes(_data(100_000))
    with store:
        v = publish(store, refs, Name.parse("/p"), f, chunker=SMALL)
        assert events[-2:] == ["sync packs", "ref"]
        assert list(store.loose_entries()) == [] and len(store.packs()) == 1
        ((_mtime, ids),) = store.packs().values()
        assert id_of(v) in ids and _all_reachable(store, id_of(v)) <= ids


def test_a_publish_that_loses_its_number_rebuilds_the_version_loose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, refs = DiskObjectStore(tmp_path / "s", fsync=False), MemoryRefStore()
    name = Name.parse("/race")
    (tmp_path / "mine").write_bytes(b"mine")
    (tmp_path / "theirs").write_bytes(b"theirs")
    cas = refs.compare_and_swap
    theirs: list[Version] = []

    def swap(n: Name, expected: int | None, number: int, vid: bytes) -> None:
        if not theirs:  # another publisher takes v1 between our import and our ref update
            monkeypatch.setattr(refs, "compare_and_swap", cas)
            theirs.append(publish(MemoryObjectStore(), refs, name, tmp_path / "theirs"))
        cas(n, expected, number, vid)

    monkeypatch.setattr(refs, "compare_and_swap", swap)
    with store:
        v = publish(store, refs, name, tmp_path / "mine")
        assert v.number == 2 and v.previous == id_of(theirs[0])
        assert [e.id for e in store.loose_entries()] == [id_of(v)]  # built again, after the pack
        assert b"".join(iter_content(store, v.root, v.root_kind)) == b"mine"
