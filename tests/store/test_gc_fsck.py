"""GC (roots: published versions and pins; grace period) and fsck (report, repair)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ccn.errors import Stopped
from ccn.name import Name
from ccn.store import objstore
from ccn.store.cache import CacheTier
from ccn.store.files import export, import_bytes, publish
from ccn.store.fsck import fsck
from ccn.store.gc import collect
from ccn.store.objects import Blob, Kind, Version, encode, id_of, object_id
from ccn.store.objstore import DiskObjectStore, MemoryObjectStore
from ccn.store.refs import DiskRefStore
from ccn.testing import damage_object


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
    damage_object(where)


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
    pack = store.locate(blob)[0]  # type: ignore[index]
    cache = CacheTier(tmp_path / "s" / "cache")
    cache.add_many([(blob, good)])
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


def test_a_damaged_version_object_set_aside_is_reported_damaged_not_missing(
    tmp_path: Path,
) -> None:
    # fsck --repair set the version object aside, then checked the version and found its
    # object gone: "version object missing" (test_versions_multiprocess failed whenever the
    # damage it made fell on a version object).
    store, refs = _setup(tmp_path)
    v = publish(store, refs, Name.parse("/p"), _file(tmp_path, 1000))
    vid = id_of(v)
    pack = store.locate(vid)[0]  # type: ignore[index]
    _flip(store, vid)
    problems, _ = fsck(store, refs, repair=True)
    assert [p.line() for p in problems] == [
        f"damaged object {vid.hex()} in {pack} (not repaired: published content; set aside in "
        "corrupt/: publish it again or fetch it from a peer)",
        f"/p/v1 ({vid.hex()}): version object damaged",
    ]


def test_fsck_sets_aside_what_it_cannot_repair_so_publishing_again_stores_it(
    tmp_path: Path,
) -> None:
    # fsck --repair said "publish it again", but the damaged copy stayed in its pack's index:
    # after a restart, the new publish took the object for present, and made a version as
    # damaged as the first (helper-53).
    store, refs = _setup(tmp_path)
    src = _file(tmp_path, 300_000)
    publish(store, refs, Name.parse("/p"), src)
    blob = next(oid for oid in store.ids() if store.get_object(oid).kind is Kind.BLOB)
    good = store.get(blob)
    pack = store.locate(blob)[0]  # type: ignore[index]
    _flip(store, blob)
    problems, _ = fsck(store, refs, repair=True)
    lines = [p.line() for p in problems]
    assert lines[0] == (
        f"damaged object {blob.hex()} in {pack} (not repaired: published content; set aside in "
        "corrupt/: publish it again or fetch it from a peer)"
    )
    assert len(lines) == 2 and lines[1].startswith("/p/v1") and "1 object(s) damaged" in lines[1]
    assert blob not in set(store.ids())
    (aside,) = Path(store.root, "corrupt").iterdir()
    assert aside.name.startswith(blob.hex())  # the damaged bytes, kept to look at
    store.close()
    store, refs = _setup(tmp_path)  # a restart: the pack's index no longer lists it
    assert not store.has(blob)
    v2 = publish(store, refs, Name.parse("/p"), src)
    assert store.get(blob) == good and v2.number == 2
    problems, _ = fsck(store, refs)
    assert [p.line() for p in problems if "/p/v2" in p.line()] == []


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


def _small_publishes(
    store: DiskObjectStore, refs: DiskRefStore, tmp_path: Path, n: int
) -> dict[bytes, bytes]:
    """``n`` small publishes (each a pack, the version object in it) to 3 names, with a
    pack of garbage and a loose garbage object between them; return every object's bytes."""
    for i in range(n):
        publish(store, refs, Name.parse(f"/s/{i % 3}"), _file(tmp_path, 3000 + i))
        if i % 5 == 0:
            import_bytes(store, os.urandom(5000))  # a pack no version reaches
            store.put_blob(os.urandom(100))  # a loose one
    return {oid: store.get(oid) for oid in store.ids()}


def _loose_files(root: Path) -> list[str]:
    return [f for _dir, _subdirs, files in os.walk(root / "objects") for f in files]


def test_gc_merges_small_packs_and_loose_objects_into_one_pack(tmp_path: Path) -> None:
    # Every publish leaves a pack (+ index): a node publishing every minute had 43,000 after
    # a month, every index in memory and every file opened.
    store, refs = _setup(tmp_path)
    before = _small_publishes(store, refs, tmp_path, 40)
    logs = {name: refs.log(name) for name in refs.names()}
    packs = len(store.packs())
    assert packs == 48 and len(_loose_files(tmp_path / "s")) == 8
    report = collect(store, refs, grace_s=1, now=_later())
    assert (report.packs_merged, report.packs_written) == (packs, 1)
    garbage = {oid for oid, _ in report.removed}
    assert len(garbage) == 16 and garbage <= before.keys()
    root = tmp_path / "s"
    assert len(os.listdir(root / "packs")) == 2 and _loose_files(root) == []
    assert os.listdir(root / "tmp") == []
    with DiskObjectStore(root, fsync=False) as again, DiskRefStore(root) as refs_again:
        assert set(again.ids()) == before.keys() - garbage
        assert all(again.get(oid) == raw for oid, raw in before.items() if oid not in garbage)
        assert {name: refs_again.log(name) for name in refs_again.names()} == logs
        assert fsck(again, refs_again) == (
            [],
            {"objects": len(before) - len(garbage), "cache_objects": 0, "versions": 40},
        )
        assert collect(again, refs_again, grace_s=1, now=_later()).packs_merged == 0


def test_a_merge_leaves_young_and_large_packs_and_bounds_what_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objstore, "MERGE_SMALL", 10_000)
    monkeypatch.setattr(objstore, "MERGE_MAX", 20_000)
    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/large"), _file(tmp_path, 30_000))
    ((large_pack, (_mtime, large)),) = store.packs().items()  # larger than MERGE_SMALL
    _small_publishes(store, refs, tmp_path, 12)  # 12 packs of ~3 KB, 3 of ~5 KB
    assert collect(store, refs, grace_s=3600).packs_merged == 0  # all younger than an hour
    old = time.time() - 7200
    for i, name in enumerate(sorted(store.packs())):
        os.utime(tmp_path / "s" / "packs" / f"{name}.pack", (old + i, old + i))
    for e in store.loose_entries():
        os.utime(store.locate(e.id)[0], (old, old))  # type: ignore[index]
    store.close()
    store = DiskObjectStore(tmp_path / "s", fsync=False)  # packs 2 hours old
    published = publish(store, refs, Name.parse("/young"), _file(tmp_path, 3000))
    young = store.locate(published.root)
    report = collect(store, refs, grace_s=3600)
    assert report.packs_merged == 15 and report.packs_written >= 2
    assert store.locate(published.root) == young  # younger than the grace period: as it was
    assert store.packs()[large_pack][1] == large  # as it was
    assert list(store.loose_entries()) == []  # the young version is in its own pack
    where = store.locate(object_id(encode(published)))
    assert young is not None and where is not None and where[0] == young[0]
    for name, (mtime, ids) in store.packs().items():
        if name != large_pack and published.root not in ids:
            assert os.path.getsize(tmp_path / "s" / "packs" / f"{name}.pack") <= 20_000 + 8
            assert old <= mtime < old + 16  # the newest of the packs it holds, not now
    assert fsck(store, refs)[0] == []


def test_a_merge_carries_a_damaged_object_over_so_fsck_can_still_restore_it(
    tmp_path: Path,
) -> None:
    store, refs = _setup(tmp_path)
    versions = [
        publish(store, refs, Name.parse(f"/d/{i}"), _file(tmp_path, 5000)) for i in range(3)
    ]
    victim = versions[1].root
    good = store.get(victim)
    _flip(store, victim)
    report = collect(store, refs, grace_s=1, now=_later())
    assert (report.packs_merged, report.packs_written) == (3, 1)
    assert report.removed == []  # damaged is not garbage
    lines = [p.line() for p in fsck(store, refs)[0]]  # damaged, as before; not missing
    assert len(lines) == 2 and lines[0].startswith(f"damaged object {victim.hex()} in ")
    assert lines[1].startswith("/d/1/v1") and "1 object(s) damaged" in lines[1]
    cache = CacheTier(tmp_path / "s" / "cache")
    cache.add_many([(victim, good)])
    fsck(store, refs, cache, repair=True)
    assert fsck(store, refs, cache)[0] == [] and store.get(victim) == good
    cache.close()


def test_a_dry_run_says_what_it_would_merge_and_merges_nothing(tmp_path: Path) -> None:
    # `ccn gc --dry-run` listed what it would remove but said nothing of the merge.
    store, refs = _setup(tmp_path)
    _small_publishes(store, refs, tmp_path, 10)  # 12 packs, 2 loose garbage objects
    elsewhere = MemoryObjectStore()  # and a version whose objects are loose (a single blob)
    publish(elsewhere, refs, Name.parse("/loose"), _file(tmp_path, 2000))
    for oid in elsewhere.ids():
        store.put(elsewhere.get(oid))
    before = {oid: store.get(oid) for oid in store.ids()}

    def files() -> tuple[list[str], list[str]]:
        return sorted(os.listdir(tmp_path / "s" / "packs")), sorted(_loose_files(tmp_path / "s"))

    was = files()
    dry = collect(store, refs, grace_s=1, now=_later(), dry_run=True)
    assert files() == was
    garbage = {oid for oid, _ in dry.removed}
    assert len(garbage) == 4 and len(was[1]) == 4  # 2 loose, 2 in packs; 2 loose live
    assert (dry.packs_merged, dry.loose_merged, dry.packs_written) == (12, 2, 1)
    assert dry.merge_bytes == sum(len(raw) for oid, raw in before.items() if oid not in garbage)
    real = collect(store, refs, grace_s=1, now=_later())
    assert (real.packs_merged, real.loose_merged, real.packs_written, real.merge_bytes) == (
        dry.packs_merged,
        dry.loose_merged,
        dry.packs_written,
        dry.merge_bytes,
    )
    assert len(store.packs()) == 1 and _loose_files(tmp_path / "s") == []


@pytest.mark.parametrize("damage", [b"garbage\n", b""])
def test_one_damaged_ref_file_is_one_problem_and_the_rest_is_checked(
    tmp_path: Path, damage: bytes
) -> None:
    """A garbled (or empty: a torn write) ref log of one name stopped fsck at it: nothing else
    was checked or reported. A garbled pins file did the same."""
    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/a"), _file(tmp_path, 1000, "a"))
    publish(store, refs, Name.parse("/b"), _file(tmp_path, 1000, "b"))
    publish(store, refs, Name.parse("/b"), _file(tmp_path, 1000, "b2"))
    log = tmp_path / "s" / "refs" / "a" / ".log"
    assert log.exists()
    log.write_bytes(damage)
    with open(tmp_path / "s" / "pins", "ab") as f:
        f.write(b"junk\n")
    problems, checked = fsck(store, refs)
    lines = [p.line() for p in problems]
    assert len(lines) == 2, lines
    assert lines[0].startswith("damaged ref file of /a: ")
    assert ("is empty" if not damage else "header") in lines[0]
    assert lines[1].startswith("damaged pins file: ")
    assert checked["versions"] == 2  # /b's


def test_an_object_found_damaged_by_a_read_is_still_reported_as_damaged(tmp_path: Path) -> None:
    """A read that finds a packed object damaged sets it aside (it is then missing, to be
    fetched again); fsck after such a read called it missing, no longer named its pack, and
    --repair did not restore it from the cache tier."""
    from ccn.errors import CorruptObject

    store, refs = _setup(tmp_path)
    publish(store, refs, Name.parse("/p"), _file(tmp_path, 300_000))
    blob = next(oid for oid in store.ids() if store.get_object(oid).kind is Kind.BLOB)
    good = store.get(blob)
    pack = store.locate(blob)[0]  # type: ignore[index]
    _flip(store, blob)
    with pytest.raises(CorruptObject):
        store.get(blob)  # what serving it does
    assert blob not in set(store.ids())
    problems, _ = fsck(store, refs)
    lines = [p.line() for p in problems]
    assert lines[0] == f"damaged object {blob.hex()} in {pack} (set aside when read)"
    assert lines[1].startswith("/p/v1") and "1 object(s) damaged" in lines[1]
    cache = CacheTier(tmp_path / "s" / "cache")
    cache.add_many([(blob, good)])
    problems, _ = fsck(store, refs, cache, repair=True)
    assert [p.line() for p in problems] == [
        f"damaged object {blob.hex()} in {pack} (set aside when read) (restored from an intact"
        " copy in the cache)"
    ]
    assert store.get(blob) == good and fsck(store, refs)[0] == []
