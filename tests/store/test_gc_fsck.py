"""GC (roots: published versions and pins; grace period) and fsck (report, repair)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ccn.errors import Stopped
from ccn.name import Name
from ccn.store.cache import CacheTier
from ccn.store.files import export, import_bytes, publish
from ccn.store.fsck import fsck
from ccn.store.gc import collect
from ccn.store.objects import Blob, Kind, Version, encode, id_of, object_id
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import DiskRefStore


def _later() -> float:
    """ "now" for GC: everything the test wrote is past a 1 s grace period."""
    return time.time() + 10


def _setup(tmp_path: Path) -> tuple[DiskObjectStore, DiskRefStore]:
    return DiskObjectStore(tmp_path / "s", fsync=False), DiskRefStore(tmp_path / "s", fsync=False)


def _file(tmp_path: Path, size: int, name: str = "f.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(os.urandom(size))
    return p


def _flip(store: DiskObjectStore, oid: bytes) -> None:
    where = store.locate(oid)
    assert where is not None
    path, off, length = where
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(off + length // 2)
        byte = f.read(1)
        f.seek(off + length // 2)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_gc_keeps_published_and_pinned_removes_the_rest(tmp_path: Path) -> None:
    store, refs = _setup(tmp_path)
    v1 = publish(store, refs, Name.parse("/a"), _file(tmp_path, 400_000))
    orphan = import_bytes(store, os.urandom(300_000))  # never published
    pinned = import_bytes(store, os.urandom(1000))
    pin_version = Version(Name.parse("/remote"), 2, pinned.id, pinned.kind, 1000, b"h" * 32, 1)
    pin_id = store.put_object(pin_version)
    refs.pin(Name.parse("/remote"), 2, pin_id)
    loose = store.put_blob(b"loose garbage")
    dry = collect(store, refs, grace_s=1, dry_run=True, now=_later())
    assert {oid for oid, _ in dry.removed} >= {orphan.id, loose}
    assert pinned.id not in {oid for oid, _ in dry.removed}
    assert store.has(orphan.id)  # a dry run removes nothing
    young = collect(store, refs, grace_s=3600, now=_later())
    assert young.removed == [] and young.young == len(dry.removed)
    done = collect(store, refs, grace_s=1, now=_later())
    assert done.removed == dry.removed
    assert not store.has(orphan.id) and not store.has(loose)
    assert store.has(pinned.id) and store.has(pin_id)
    out = tmp_path / "out"
    export(store, v1.root, v1.root_kind, out, content_hash=v1.content_hash)
    refs.unpin(Name.parse("/remote"), 2)
    gone = collect(store, refs, grace_s=1, now=_later())
    assert {oid for oid, _ in gone.removed} == {pinned.id, pin_id}
    assert fsck(store, refs)[0] == []


def test_gc_rewrites_a_pack_that_holds_garbage(tmp_path: Path) -> None:
    store, refs = _setup(tmp_path)
    with store.batch() as b:
        keep = import_bytes(b, os.urandom(200_000))
        drop = import_bytes(b, os.urandom(200_000))
    v = Version(Name.parse("/k"), 1, keep.id, keep.kind, keep.size, keep.content_hash, 1)
    vid = store.put_object(v)
    refs.compare_and_swap(Name.parse("/k"), None, 1, vid)
    report = collect(store, refs, grace_s=1, now=_later())
    assert drop.id in {oid for oid, _ in report.removed}
    assert not store.has(drop.id)
    export(store, keep.id, keep.kind, tmp_path / "o", content_hash=keep.content_hash)
    assert len(store.packs()) == 1


def test_fsck_reports_and_never_silently_repairs_published_objects(tmp_path: Path) -> None:
    store, refs = _setup(tmp_path)
    v = publish(store, refs, Name.parse("/p"), _file(tmp_path, 300_000))
    assert fsck(store, refs) == (
        [],
        {"objects": len(list(store.ids())), "cache_objects": 0, "versions": 1},
    )
    blob = next(oid for oid in store.ids() if store.get_object(oid).kind is Kind.BLOB)
    good = store.get(blob)
    _flip(store, blob)
    problems, _ = fsck(store, refs, repair=True)
    lines = [p.line() for p in problems]
    assert len(lines) == 2
    assert lines[0].startswith(f"damaged object {blob.hex()}") and "not repaired" in lines[0]
    assert lines[1].startswith("/p/v1") and "1 object(s) damaged" in lines[1]
    with open(store.locate(blob)[0], "rb") as f:  # type: ignore[index]
        assert good not in f.read()  # left as it was
    cache = CacheTier(tmp_path / "s" / "cache")
    cache.add_many([(blob, good)])
    pack = store.locate(blob)[0]  # type: ignore[index]
    problems, _ = fsck(store, refs, cache, repair=True)
    # restored: the version is whole again, and the report says so (no "/p/v1 incomplete")
    assert [p.line() for p in problems] == [
        f"damaged object {blob.hex()} in {pack} (restored from an intact copy in the cache)"
    ]
    assert fsck(store, refs, cache) == (
        [],
        {"objects": len(list(store.ids())), "cache_objects": 1, "versions": 1},
    )
    assert store.get(blob) == good
    assert v.number == 1


def test_fsck_finds_missing_objects_and_damaged_cache(tmp_path: Path) -> None:
    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/m"), _file(tmp_path, 300_000))
    victim = next(oid for oid in store.ids() if store.get_object(oid).kind is Kind.BLOB)
    store.delete(victim)
    cache = CacheTier(tmp_path / "s" / "cache")
    raw = encode(Blob(b"cached"))
    cache.add_many([(object_id(raw), raw)])
    where = cache.locate(object_id(raw))
    assert where is not None
    path, offset, length = where
    with open(path, "r+b") as f:  # damage the last byte of the cached object
        f.seek(offset + length - 1)
        f.write(b"!")
    problems, _ = fsck(store, refs, cache)
    lines = [p.line() for p in problems]
    assert any("/m/v1" in ln and "1 object(s) missing" in ln for ln in lines)
    assert f"damaged cache object {object_id(raw).hex()}" in lines
    problems, _ = fsck(store, refs, cache, repair=True)
    assert any("dropped; it will be fetched again" in p.line() for p in problems)
    assert not cache.known(object_id(raw)) and cache.locate(object_id(raw)) is None
    assert id_of(Blob(b"cached")) == object_id(raw)


class _StopAfter(threading.Event):
    """A stop flag that sets itself once it has been looked at ``n`` times."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.set()
        return super().is_set()


@pytest.mark.parametrize("after", [0, 1, 3, 8])
def test_a_stopped_gc_removes_nothing(tmp_path: Path, after: int) -> None:
    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/a"), _file(tmp_path, 400_000))
    orphan = import_bytes(store, os.urandom(300_000))
    with pytest.raises(Stopped, match="gc stopped before it removed anything"):
        collect(store, refs, grace_s=1, now=_later(), stop=_StopAfter(after))
    assert store.has(orphan.id)
    assert collect(store, refs, grace_s=1, now=_later(), stop=threading.Event()).removed


@pytest.mark.parametrize("after", [0, 2, 5])
def test_a_stopped_fsck_says_so(tmp_path: Path, after: int) -> None:
    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/a"), _file(tmp_path, 300_000))
    with pytest.raises(Stopped, match="fsck stopped before its end"):
        fsck(store, refs, stop=_StopAfter(after))
    assert fsck(store, refs, stop=threading.Event())[0] == []
