"""Store maintenance of a running node: the commands log, pin, unpin, gc, fsck, and the
automatic merge of small packs.

:class:`~ccn.mgmt.Management` parses the command and calls in here; this module turns it into
store operations (:mod:`ccn.store.gc`, :mod:`ccn.store.fsck`, refs and pins) run on a worker
thread, one maintenance command at a time, and shapes the reply. Replies list at most
:data:`MAX_LINES` items (a reply is one packet); counts are always complete.

Pinning a version that is not published here *promotes* it: the version and every object below
it are copied from the cache tier (or the content store) into the main store, where the cache
budget never evicts anything and GC keeps it as long as the pin exists. What came from the
content store is written to the cache tier too, as what came from the tier stays there: after an
unpin and a GC, the content is where a fetched copy would be, not gone.

Every publish is a pack. :meth:`Maintenance.auto_merge` (a task of the node) merges the small
packs and loose objects, as ``git gc --auto`` does, once more than ``auto_merge`` of either are
older than ``auto_merge_age`` (config): on a worker thread, between commands (it takes the same
lock), removing nothing (deleting garbage is ``ccn gc``'s, asked for by a person), and stopped
between objects when the node shuts down. It looks after each publish and every
:data:`AUTO_MERGE_CHECK_S`.

GC never runs while a publish is in progress (:meth:`Maintenance.publishing`): a publish
stores its objects, and last its version object, before it moves the ref that makes them
reachable, so a GC in between (the grace period set to 0, or objects the import found already
stored, unreachable and old) removed what the new ref then named.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from ccn.errors import (
    CcnError,
    CorruptObject,
    InvalidObject,
    ObjectNotFound,
    Stopped,
    StoreError,
    stop_if_asked,
)
from ccn.logline import say
from ccn.name import Name
from ccn.store.fsck import Problem, fsck
from ccn.store.gc import GRACE_S, GcReport, collect
from ccn.store.objects import Kind, Manifest, Tree, Version, children, decode, object_id
from ccn.store.objstore import MergePlan

if TYPE_CHECKING:
    from ccn.node import Node

MAX_LINES: Final = 2000
#: How often a long command checks that its client still waits (see :func:`stoppable`).
CLIENT_CHECK_S: Final = 0.25
#: How often the node looks whether its store is due an automatic merge (and after each
#: publish): packs age past ``auto_merge_age`` without anything happening.
AUTO_MERGE_CHECK_S: Final = 60.0

T = TypeVar("T")
#: Whether the command's client still waits for it (None: not asked, only a shutdown stops it).
Wanted = Callable[[], bool] | None


async def stoppable(
    work: Callable[[threading.Event], T],
    wanted: Wanted = None,
    *,
    cleanup: Callable[[threading.Event], object] | None = None,
) -> T:
    """Run ``work(stop)`` on a worker thread; if this task is cancelled (the node is shutting
    down), or ``wanted()`` turns false (checked every CLIENT_CHECK_S: the client went away),
    ``stop`` is set, and the task waits for ``work`` to notice and end: a big import stops
    within a block instead of running to its end, and is not published after the client was
    told the node went away, or left. The thread is never abandoned while it writes.
    ``cleanup(stop)``: run the same way after ``work`` stopped (raised
    :class:`~ccn.errors.Stopped`) or failed (a full disk) while the node goes on, to remove
    what a shutdown would leave to the next start (the store's set-aside packs:
    DiskObjectStore.remove_aborted): a put that filled the disk must not keep it full."""
    stop = threading.Event()
    if wanted is not None and not wanted():
        # already gone: said now, not when the task below first runs (the thread may have
        # done a small job by then)
        stop.set()

    async def stop_when_cancelled() -> None:
        try:
            if wanted is None:
                await trio.sleep_forever()
            while wanted():
                await trio.sleep(CLIENT_CHECK_S)
        finally:
            stop.set()

    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_cancelled)
        try:
            result = await trio.to_thread.run_sync(work, stop)
        except Exception as e:  # raised below, not from inside the nursery (no group)
            failure = e
        nursery.cancel_scope.cancel()
    # Cancelled (the node shutting down) left the nursery already, whatever work raised.
    if failure is not None:
        if cleanup is not None:
            with contextlib.suppress(OSError):  # what it leaves goes at the next start
                await stoppable(cleanup)
        raise failure
    return result


class MaintenanceError(CcnError):
    """A maintenance command that cannot be carried out (the message goes to the client)."""


class _Missing(Exception):
    def __init__(self, count: int) -> None:
        self.count = count


class Maintenance:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._lock = trio.Lock()
        self._merge_wake = trio.Event()
        #: What :meth:`auto_merge` did (``ccn status``: store.auto_merge).
        self.merges: dict[str, Any] = {
            "running": False,
            "runs": 0,
            "last_time": None,
            "packs_merged": 0,
            "packs_written": 0,
            "loose_merged": 0,
            "error": None,
        }
        #: Publishes in progress, and whether a GC waits for them to end or runs: see
        #: :meth:`publishing`.
        self._publishes = 0
        self._collecting = False
        self._changed = trio.Condition()

    # -- publishes against gc --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def publishing(self) -> AsyncIterator[None]:
        """Hold off GC while a publish runs: it waits here while a GC runs or waits to run
        (a stream of publishes cannot keep a GC out), and a GC waits for every publish
        inside to end. Publishes run side by side."""
        async with self._changed:
            while self._collecting:
                await self._changed.wait()
            self._publishes += 1
        try:
            yield
        finally:
            self._publishes -= 1
            await self._notify()

    @contextlib.asynccontextmanager
    async def _collecting_alone(self) -> AsyncIterator[None]:
        """No publish in progress from entry to exit (see :meth:`publishing`)."""
        async with self._changed:
            self._collecting = True
            try:
                while self._publishes:
                    await self._changed.wait()
            except BaseException:
                self._collecting = False
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            self._collecting = False
            await self._notify()

    async def _notify(self) -> None:
        with trio.CancelScope(shield=True):  # also when leaving cancelled: others still wait
            async with self._changed:
                self._changed.notify_all()

    # -- automatic merge -------------------------------------------------------------------

    def published(self) -> None:
        """A publish added a pack: look whether a merge is due now."""
        self._merge_wake.set()

    async def auto_merge(self) -> None:
        """Merge the store's small packs and loose objects whenever more than ``auto_merge``
        of either are older than ``auto_merge_age`` (see the module); runs until cancelled."""
        config = self.node.config
        if config.auto_merge <= 0:
            return
        while True:
            await self._merge_if_due(config.auto_merge, config.auto_merge_age)
            with trio.move_on_after(AUTO_MERGE_CHECK_S):
                await self._merge_wake.wait()
            self._merge_wake = trio.Event()

    async def _merge_if_due(self, threshold: int, age_s: float) -> None:
        store = self.node.store
        older_than = time.time() - age_s

        def merge(stop: threading.Event) -> tuple[MergePlan, tuple[int, int]]:
            plan = store.plan_merge(older_than=older_than)
            return plan, store.merge_packs(stop=stop, older_than=older_than, plan=plan)

        try:
            packs, loose = await trio.to_thread.run_sync(store.merge_candidates, older_than)
            if packs <= threshold and loose <= threshold:
                return
            async with self._lock:
                self.merges["running"] = True
                try:
                    plan, (merged, written) = await stoppable(merge, cleanup=store.remove_aborted)
                finally:
                    self.merges["running"] = False
        except Stopped:
            return  # the node is shutting down (a cancellation, raised by stoppable)
        except (OSError, StoreError) as e:  # a full disk: the node goes on, status says so
            self.merges["error"] = str(e)
            say(f"ccn node: automatic pack merge failed: {e}")
            return
        self.merges |= {
            "runs": self.merges["runs"] + 1,
            "last_time": time.time(),
            "packs_merged": merged,
            "packs_written": written,
            "loose_merged": plan.loose,
            "error": None,
        }

    # -- history ---------------------------------------------------------------------------

    async def log(self, name: Name) -> dict[str, Any]:
        node = self.node
        n = name.unversioned()
        entries = node.refs.log(n)
        if not entries:
            numbers = sorted(p.number for p in node.refs.pins() if p.name == n and p.number)
            kept = [str(n.with_version(number)) for number in numbers]
            if kept:  # pinned from another node: a history is only kept by a publisher
                raise MaintenanceError(
                    f"{n} is not published on this node; it keeps {', '.join(kept)} pinned "
                    "(see ccn pins)"
                )
            raise MaintenanceError(f"{n} is not published on this node")
        # number -> the pinned version's id (None: the one published here, or the latest)
        pinned = {p.number: p.id for p in node.refs.pins() if p.name == n}
        latest = entries[-1]
        if name.version is not None:  # /name/vN: that version only
            entries = [e for e in entries if e.number == name.version]
            if not entries:
                raise MaintenanceError(f"{name} is not published on this node")
        out = []
        for e in entries[-MAX_LINES:]:
            row: dict[str, Any] = {"number": e.number, "id": e.id.hex(), "time_ns": e.time_ns}
            try:
                v = node.store.get_object(e.id)
            except (ObjectNotFound, CorruptObject) as err:
                row["error"] = str(err)
            else:
                if type(v) is Version:
                    row |= {
                        "time_ns": v.created_ns,
                        "size": v.size,
                        "previous": None if v.previous is None else v.previous.hex(),
                        # the id of the key that signed it (None: unsigned); ccn log names it
                        "publisher": None
                        if v.signature is None or v.publisher is None
                        else v.publisher.hex(),
                    }
            row["pinned"] = (e.number in pinned and pinned[e.number] in (None, e.id)) or (
                None in pinned and e is latest
            )
            out.append(row)
        return {"name": str(n), "versions": out, "versions_total": len(entries)}

    # -- pins ------------------------------------------------------------------------------

    async def pin(
        self, name: Name, version_raw: bytes | None, wanted: Wanted = None
    ) -> dict[str, Any]:
        """Pin ``name`` (latest) or ``name/vN``. For a name not published here the client
        sends the version record; the reply says ``need: version`` or ``need: content``
        (objects missing on this node) when it must fetch first."""
        node = self.node
        n, number = name.unversioned(), name.version
        if not len(n):
            raise MaintenanceError("cannot pin the root name")
        if node.refs.latest(n) is not None:
            local = None if number is None else node.refs.get(n, number)
            if number is not None and local is None:
                raise MaintenanceError(f"{name}: no such version on this node")
            self._check_pin_free(n, number, local)
            node.refs.pin(n, number)
            return {"pinned": str(name)}
        if version_raw is None:
            return {"need": "version"}
        try:
            version = decode(version_raw)
        except InvalidObject as e:
            raise MaintenanceError(f"not a version record: {e}") from None
        if type(version) is not Version or version.name != n:
            raise MaintenanceError(f"the record sent is not a version of {n}")
        if number is not None and version.number != number:
            raise MaintenanceError(f"the record sent is v{version.number}, not v{number}")
        version_id = object_id(version_raw)
        self._check_pin_free(n, version.number, version_id)  # before copying anything
        async with self._lock:
            await node.cache_feed.flush()
            try:
                await stoppable(
                    lambda stop: self._promote(version_raw, version, stop),
                    wanted,
                    cleanup=node.store.remove_aborted,
                )
            except _Missing as m:
                need: dict[str, Any] = {"need": "content", "missing": m.count}
                errors = node.cache.counters.write_errors
                if errors:  # a full disk: what passes cannot be kept for the copy
                    need["cache_write_errors"] = errors
                return need
        if wanted is not None and not wanted():
            # Its client left (Ctrl-C) while the copy ended: it was told "interrupted", so
            # nothing is pinned; the copied objects are left to gc.
            raise Stopped("pin stopped before its end: nothing was pinned")
        node.refs.pin(n, version.number, version_id)
        return {"pinned": str(n.with_version(version.number))}

    def _check_pin_free(self, n: Name, number: int | None, version_id: bytes | None) -> None:
        """Refuse to pin version ``number`` of ``n`` (id ``version_id``) over a pin of another
        version of the same number: one from another node's publisher (a pin keeps one version
        per number), which the new pin would silently drop and gc then delete."""
        if number is None:
            return
        for p in self.node.refs.pins():
            if p.name == n and p.number == number and p.id is not None and p.id != version_id:
                raise MaintenanceError(
                    f"{n.with_version(number)} is already pinned as another node's version "
                    f"{p.id.hex()[:16]}; ccn unpin {n.with_version(number)} first to replace it"
                )

    def _promote(self, version_raw: bytes, version: Version, stop: threading.Event) -> None:
        """Copy the version and everything below it into the main store (worker thread); if
        ``stop`` is set, raise :class:`~ccn.errors.Stopped`, and the copy is discarded."""
        node = self.node
        store, cache = node.store, node.cache
        missing = 0
        from_cs: list[tuple[bytes, bytes]] = []
        with store.batch() as batch:
            batch.put(version_raw)
            stack = list(children(version))
            seen: set[bytes] = set()
            while stack:
                stop_if_asked(stop, "pin stopped before its end: nothing was pinned")
                oid, kind = stack.pop()
                if oid in seen:
                    continue
                seen.add(oid)
                raw: bytes | None = None
                if store.known(oid):
                    if kind is Kind.BLOB:
                        continue
                    raw = store.get(oid)
                else:
                    raw = cache.get(oid)
                    if raw is None:
                        raw = trio.from_thread.run_sync(self._from_cs, oid)
                        if raw is not None:
                            from_cs.append((oid, raw))
                    if raw is None:
                        missing += 1
                        continue
                    batch.put(raw)
                if kind is not Kind.BLOB:
                    obj = decode(raw)
                    if type(obj) in (Manifest, Tree):
                        stack.extend(children(obj))
            if missing:
                raise _Missing(missing)
        # A cache that cannot be written loses only what it would have cached.
        with contextlib.suppress(OSError, StoreError):
            cache.add_many(from_cs, ids_verified=True)

    def _from_cs(self, oid: bytes) -> bytes | None:
        data = self.node.forwarder.cs.get_by_digest(oid)
        return None if data is None else data.content

    async def unpin(self, name: Name) -> dict[str, Any]:
        refs = self.node.refs
        n = name.unversioned()
        pins = [p for p in refs.pins() if p.name == n]
        if name.version is not None:
            pins = [p for p in pins if p.number == name.version]
        for p in pins:
            refs.unpin(p.name, p.number)
        if not pins:
            raise MaintenanceError(f"{name} is not pinned")
        return {"removed": len(pins)}

    def pins(self) -> list[dict[str, Any]]:
        return [
            {"name": str(p.name), "number": p.number, "id": None if p.id is None else p.id.hex()}
            for p in self.node.refs.pins()
        ]

    # -- gc and fsck -----------------------------------------------------------------------

    async def gc(
        self, dry_run: bool, grace_s: float = GRACE_S, wanted: Wanted = None
    ) -> dict[str, Any]:
        node = self.node

        def work(stop: threading.Event) -> GcReport:
            return collect(node.store, node.refs, grace_s=grace_s, dry_run=dry_run, stop=stop)

        async with self._lock:
            alone = contextlib.nullcontext() if dry_run else self._collecting_alone()
            async with alone:
                report = await stoppable(work, wanted, cleanup=node.store.remove_aborted)
        return {
            "dry_run": dry_run,
            "removed": [[oid.hex(), size] for oid, size in report.removed[:MAX_LINES]],
            "count": len(report.removed),
            "bytes": report.removed_bytes,
            "live": report.live,
            "young": report.young,
            "packs_merged": report.packs_merged,
            "packs_written": report.packs_written,
            "loose_merged": report.loose_merged,
            "merge_bytes": report.merge_bytes,
            "warnings": report.warnings[:MAX_LINES],
        }

    async def fsck(self, repair: bool, wanted: Wanted = None) -> dict[str, Any]:
        node = self.node

        def work(stop: threading.Event) -> tuple[list[Problem], dict[str, int]]:
            return fsck(node.store, node.refs, node.cache, repair=repair, stop=stop)

        async with self._lock:
            await node.cache_feed.flush()
            problems, checked = await stoppable(work, wanted)
        unrepaired = sum(1 for p in problems if p.repaired is None or p.repaired.startswith("not"))
        return {
            "problems": [p.line() for p in problems[:MAX_LINES]],
            "count": len(problems),
            "unrepaired": unrepaired,
            "checked": checked,
        }
