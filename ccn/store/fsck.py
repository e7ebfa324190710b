"""fsck: check every object against its id and every ref against complete versions.

It reports one :class:`Problem` per damaged or missing thing, and with ``repair``:

* a damaged **cache** object is dropped (the node fetches it again when asked);
* a damaged object of the **main store** (published or pinned content) is repaired only from an
  intact copy of the same id in the cache tier, and says so; otherwise it is reported as not
  repaired and set aside (its bytes moved to ``corrupt/``), so that publishing the content
  again or fetching it stores a good copy — fsck never silently replaces published content.

Reading moves nothing aside (:meth:`~ccn.store.objstore.ObjectStore.verify`), so what fsck reports
is what is on disk.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from ccn.errors import CorruptObject, InvalidObject, ObjectNotFound, StoreError, stop_if_asked
from ccn.store.cache import CacheTier
from ccn.store.objects import Kind, Manifest, Tree, Version, children, decode
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import RefStore

_STOPPED: Final = "fsck stopped before its end"
RESTORED: Final = "restored from an intact copy in the cache"


@dataclass(frozen=True, slots=True)
class Problem:
    """One line of the report; ``repaired`` says what ``--repair`` did about it, if anything."""

    message: str
    repaired: str | None = None

    def line(self) -> str:
        return self.message if self.repaired is None else f"{self.message} ({self.repaired})"


def fsck(
    store: DiskObjectStore,
    refs: RefStore,
    cache: CacheTier | None = None,
    *,
    repair: bool = False,
    stop: threading.Event | None = None,
) -> tuple[list[Problem], dict[str, int]]:
    """Check the store (and the cache tier, if given); return problems and what was checked.
    If ``stop`` is set, raise :class:`~ccn.errors.Stopped` at the next object (each repair is
    whole: the store stays consistent)."""
    problems: list[Problem] = []
    checked = {"objects": 0, "cache_objects": 0, "versions": 0}
    store.refresh()
    for stem, reason in sorted(store.bad_packs.items()):
        problems.append(Problem(f"damaged pack index {stem}: {reason}"))
    damaged: set[bytes] = set()

    def damaged_object(oid: bytes, place: str) -> bool:
        """Report ``oid`` damaged (restored, with ``repair``, if it can be; else set aside);
        whether it was restored."""
        repaired = _mend(store, cache, oid, repair)
        if repaired != RESTORED:  # a restored object makes its versions whole again
            damaged.add(oid)
        problems.append(Problem(f"damaged object {oid.hex()}{place}", repaired))
        return repaired == RESTORED

    for oid in sorted(store.ids()):
        checked["objects"] += 1
        stop_if_asked(stop, _STOPPED)
        try:
            raw = store.verify(oid)
            decode(raw)
        except ObjectNotFound:
            continue  # removed meanwhile
        except (CorruptObject, InvalidObject):
            where = store.locate(oid)
            damaged_object(oid, "" if where is None else f" in {where[0]}")
    for oid, aside_from in sorted(store.damaged_on_read.items()):
        if oid in damaged:
            continue  # reported above, and set aside just now
        # stored again since (fetched, restored, published), or restored now
        if store.has(oid) or damaged_object(oid, f" in {aside_from} (set aside when read)"):
            store.damaged_on_read.pop(oid, None)
    for name in refs.names():
        try:
            log = refs.log(name)
        except StoreError as e:  # one damaged ref file is one problem: the rest is checked
            problems.append(Problem(f"damaged ref file of {name}: {e}"))
            continue
        for entry in log:
            checked["versions"] += 1
            stop_if_asked(stop, _STOPPED)
            label = f"{name}/v{entry.number}"
            problem = _check_version(store, entry.id, name, entry.number, damaged)
            if problem is not None:
                problems.append(Problem(f"{label} ({entry.id.hex()}): {problem}"))
    try:
        pins = refs.pins()
    except StoreError as e:
        problems.append(Problem(f"damaged pins file: {e}"))
        pins = []
    for pin in pins:
        if pin.id is not None:  # a version published elsewhere, kept here: checked as well
            checked["versions"] += 1
            label = f"pin {pin.name}/v{pin.number}"
            problem = _check_version(store, pin.id, pin.name, pin.number, damaged)
            if problem is not None:
                problems.append(Problem(f"{label} ({pin.id.hex()}): {problem}"))
    if cache is not None:
        for oid in sorted(cache.ids()):
            checked["cache_objects"] += 1
            stop_if_asked(stop, _STOPPED)
            try:
                decode(cache.verify(oid))
            except ObjectNotFound:
                continue
            except (CorruptObject, InvalidObject):
                fixed = None
                if repair:
                    cache.drop(oid)
                    fixed = "dropped; it will be fetched again"
                problems.append(Problem(f"damaged cache object {oid.hex()}", fixed))
    return problems, checked


def _mend(store: DiskObjectStore, cache: CacheTier | None, oid: bytes, repair: bool) -> str | None:
    if not repair:
        return None
    if cache is not None and cache.known(oid):
        try:
            raw = cache.verify(oid)
        except (CorruptObject, ObjectNotFound):
            pass
        else:
            store.rewrite(raw)
            return RESTORED
    store.set_aside(oid)
    return (
        "not repaired: published content; set aside in corrupt/: publish it again or fetch it "
        "from a peer"
    )


def _check_version(
    store: DiskObjectStore, vid: bytes, name: object, number: int | None, damaged: set[bytes]
) -> str | None:
    """Why the version ``vid`` is not complete and intact, or None. An object in ``damaged``
    was found damaged in this run (and, repairing, set aside): it is reported so, not as
    missing."""
    if vid in damaged:
        return "version object damaged"
    try:
        version = decode(store.verify(vid))
    except ObjectNotFound:
        return "version object missing"
    except (CorruptObject, InvalidObject):
        return "version object damaged"
    if type(version) is not Version:
        return "not a version object"
    if version.name != name or (number is not None and version.number != number):
        return f"the object is version {version.name}/v{version.number}"
    missing = bad = 0
    first: bytes | None = None
    seen: set[bytes] = set()
    stack = list(children(version))
    while stack:
        oid, kind = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        if oid in damaged:
            bad += 1
            first = first or oid
            continue
        if not store.known(oid) and not store.has(oid):
            missing += 1
            first = first or oid
            continue
        if kind in (Kind.MANIFEST, Kind.TREE):
            try:
                obj = store.verify_object(oid)
            except (CorruptObject, ObjectNotFound, StoreError):
                obj = None
            if type(obj) not in (Manifest, Tree):
                bad += 1
                first = first or oid
                continue
            assert obj is not None
            stack.extend(children(obj))
    if not missing and not bad:
        return None
    assert first is not None
    parts = []
    if missing:
        parts.append(f"{missing} object(s) missing")
    if bad:
        parts.append(f"{bad} object(s) damaged")
    return f"incomplete: {', '.join(parts)} (first {first.hex()})"
