"""Garbage collection of the main store: remove objects no root reaches.

Roots are every published version (every entry of every ref log) and every pin. An object is
live if a root reaches it through :func:`~ccn.store.objects.children`; only versions, trees and
manifests are read to find out (blobs are leaves, known by their pointer's kind), so marking
costs one read per ~1000 blobs.

A grace period protects objects written recently (a loose file's mtime, or its pack's), as
``git gc --prune=<date>`` and dulwich do: a publish in progress has written objects that no ref
names yet. Packs holding garbage are rewritten without it (:meth:`DiskObjectStore.delete_many`),
and small packs older than the grace period (one per publish) are merged into large ones
(:meth:`DiskObjectStore.merge_packs`), leaving their garbage out.

It never touches the cache tier (that has its own budget) and never deletes a live object, even
if it cannot read part of the graph: a root it cannot walk is reported, and everything else is
still marked from the other roots. Missing or damaged objects are fsck's business.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

from ccn.errors import CorruptObject, InvalidObject, ObjectNotFound, stop_if_asked
from ccn.store.objects import Kind, Manifest, Tree, Version, children
from ccn.store.objstore import DiskObjectStore, ObjectStore
from ccn.store.refs import RefStore

GRACE_S: Final = 3600.0
"""Objects younger than this are never collected (they may belong to a publish in progress)."""
_GC_STOPPED: Final = "gc stopped before it removed anything"


@dataclass
class GcReport:
    #: (id, size) of every object removed (or that would be, in a dry run).
    removed: list[tuple[bytes, int]] = field(default_factory=list)
    live: int = 0
    #: Unreachable but inside the grace period.
    young: int = 0
    #: Problems met while marking (one line each).
    warnings: list[str] = field(default_factory=list)
    #: Small packs merged, and how many packs they became (in a dry run: would be).
    packs_merged: int = 0
    packs_written: int = 0
    #: Loose objects moved into those packs, and the bytes the merge copies.
    loose_merged: int = 0
    merge_bytes: int = 0

    @property
    def removed_bytes(self) -> int:
        return sum(size for _, size in self.removed)


def root_ids(refs: RefStore) -> tuple[list[bytes], list[str]]:
    """Ids of every published version and every pin; and lines for pins that name nothing."""
    roots = [e.id for name in refs.names() for e in refs.log(name)]
    warnings = []
    for pin in refs.pins():
        if pin.id is not None:
            roots.append(pin.id)
            continue
        found = refs.latest(pin.name) if pin.number is None else None
        vid = found[1] if found is not None else None
        if pin.number is not None:
            vid = refs.get(pin.name, pin.number)
        if vid is None:
            which = "latest" if pin.number is None else f"v{pin.number}"
            warnings.append(f"pin {pin.name} {which} names no version on this node")
        else:
            roots.append(vid)
    return roots, warnings


def mark(
    store: ObjectStore, roots: list[bytes], stop: threading.Event | None = None
) -> tuple[set[bytes], list[str]]:
    """Every id reachable from ``roots`` (present or not), and lines for what could not be
    read. Reads are verified but move nothing aside. ``stop``: see :func:`collect`."""
    live: set[bytes] = set()
    warnings: list[str] = []
    stack = [(r, Kind.VERSION) for r in roots]
    while stack:
        oid, kind = stack.pop()
        if oid in live:
            continue
        live.add(oid)
        if kind is Kind.BLOB:
            continue
        stop_if_asked(stop, _GC_STOPPED)
        try:
            obj = store.verify_object(oid)
        except (ObjectNotFound, CorruptObject, InvalidObject) as e:
            warnings.append(f"cannot read {kind.name.lower()} {oid.hex()}: {e}")
            continue
        if type(obj) in (Version, Manifest, Tree):
            stack.extend(children(obj))
    return live, warnings


def collect(
    store: DiskObjectStore,
    refs: RefStore,
    *,
    grace_s: float = GRACE_S,
    dry_run: bool = False,
    now: float | None = None,
    stop: threading.Event | None = None,
) -> GcReport:
    """Remove (or with ``dry_run`` only list) unreachable objects older than ``grace_s``, and
    merge the small packs and loose objects older than that (a dry run says what it would
    merge: :meth:`~DiskObjectStore.plan_merge`).

    If ``stop`` is set, raise :class:`~ccn.errors.Stopped`: before the removal starts, having
    removed nothing; during it (it merges small packs and rewrites the others that hold
    garbage, seconds on a large store), between objects, with the packs merged or rewritten
    so far done and the others as they were."""
    now = time.time() if now is None else now
    limit = now - grace_s
    roots, warnings = root_ids(refs)
    live, more = mark(store, roots, stop)
    report = GcReport(warnings=warnings + more)
    pack_mtime = {name: mtime for name, (mtime, _ids) in store.packs().items()}
    sizes = {e.id: (e.size, e.mtime) for e in store.loose_entries()}
    doomed: list[tuple[bytes, int]] = []
    for oid in store.ids():
        stop_if_asked(stop, _GC_STOPPED)
        if oid in live:
            report.live += 1
            continue
        where = store.locate(oid)
        if where is None:
            continue
        if oid in sizes:
            size, mtime = sizes[oid]
        else:
            size = where[2]
            stem = where[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
            mtime = pack_mtime.get(stem, now)
        if mtime > limit:
            report.young += 1
            continue
        doomed.append((oid, size))
    report.removed = sorted(doomed)
    stop_if_asked(stop, _GC_STOPPED)
    dropped = {oid for oid, _ in doomed}
    if dry_run:
        plan = store.plan_merge(dropped, older_than=limit)
        report.packs_merged, report.packs_written = plan.packs, plan.packs_written
    else:
        # Loose garbage first (an unlink each), then the small packs are merged without
        # theirs, then the other packs that hold some are rewritten.
        store.delete_many({oid for oid in dropped if store.is_loose(oid)}, stop)
        plan = store.plan_merge(dropped, older_than=limit)
        report.packs_merged, report.packs_written = store.merge_packs(
            dropped, stop, older_than=limit, plan=plan
        )
        store.delete_many(dropped, stop)
    report.loose_merged, report.merge_bytes = plan.loose, plan.bytes
    return report
