"""SIGKILL a node at random moments during ``ccn put``, fetches, gc, a promoting pin,
``fsck --repair`` and a node's exit (SIGTERM, then SIGKILL while it saves its cache).

After every kill the store (opened directly, the node being dead) passes fsck — every object
intact, every ref pointing to a complete version, the cache tier intact — and a version is either
fully published or absent; the node restarts on the same store and serves every published
version, byte for byte. Bounded: 8 MiB files, random kill points within the operation's span.

gc, pin and fsck run in a fraction of a second on a few MiB, so their stores are built with
small chunks (many objects from little data: the per-object work is what a kill cuts into). Each
kill works on a fresh copy of one prepared store. Runs to the end on a first copy measure the
operation (gc: one run; pin: the shortest of three; fsck --repair: the shorter of a check and a
repair), and the kills are spread over that span, one in each of its quarters. What each kill
left on disk shows where it landed (garbage partly removed, a pack half written, damage partly
repaired), and the tests require kills in the middle, not only before or after. fsck --repair
starts from damage we made, so after its kills fsck finds that damage less what was repaired,
and nothing else; a repair after the restart leaves none.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.client import Client, connect
from ccn.errors import ConnectError, CorruptObject, ObjectNotFound
from ccn.name import Name
from ccn.store.cache import CacheTier
from ccn.store.chunker import Chunker
from ccn.store.files import import_bytes, publish
from ccn.store.fsck import fsck
from ccn.store.objects import children
from ccn.store.objstore import DiskObjectStore, ObjectStore
from ccn.store.refs import DiskRefStore, MemoryRefStore, RefStore
from ccn.testing import NodeProcess, damage_object, free_port, start_node, stop_all

pytestmark = pytest.mark.slow

PUT_KILLS = 10
FETCH_KILLS = 10
SIZE = 8 << 20
GC_KILLS = PIN_KILLS = FSCK_KILLS = 4
#: Many objects from little data for gc, pin and fsck: ~1.5 KiB chunks, 64 pointers a manifest.
CHUNKS = Chunker(avg_size=2048, min_size=1024, max_size=8192)
FANOUT = 64


def _check_store(root: Path) -> list[int]:
    """fsck the store of a dead node; return the published version numbers of /c/file."""
    store = DiskObjectStore(root, fsync=False)
    refs = DiskRefStore(root)
    cache = CacheTier(root / "cache") if (root / "cache").exists() else None
    try:
        problems, checked = fsck(store, refs, cache)
        assert not problems, [p.line() for p in problems]
        assert checked["versions"] == len(refs.versions(Name.parse("/c/file")))
        return [n for n, _id in refs.versions(Name.parse("/c/file"))]
    finally:
        store.close()
        if cache is not None:
            cache.close()


async def _kill_during(proc: NodeProcess, work: trio.Process, delay: float) -> bool:
    """SIGKILL the node after ``delay``; True if that cut ``work`` short (it failed)."""
    await trio.sleep(delay)
    os.kill(proc.process.pid, signal.SIGKILL)
    await proc.process.wait()
    with trio.move_on_after(10):
        await work.wait()
    if work.returncode is None:
        work.kill()
        await work.wait()
    return work.returncode != 0


async def test_sigkill_during_put_and_fetch(tmp_path: Path) -> None:
    rng = random.Random(8)
    contents = [os.urandom(SIZE) for _ in range(2)]
    sources = []
    for k, data in enumerate(contents):
        sources.append(tmp_path / f"src{k}.bin")
        sources[-1].write_bytes(data)
    p_port = free_port()
    p_sock, c_sock = f"unix://{tmp_path}/P.sock", f"unix://{tmp_path}/C.sock"
    route = f"/c=tcp://127.0.0.1:{p_port}"
    published: dict[int, bytes] = {}
    nodes: list[NodeProcess] = []
    cut_puts = cut_gets = 0

    async def start(label: str) -> NodeProcess:
        if label == "P":
            node = await start_node(
                "P", tmp_path, [p_sock, f"tcp://127.0.0.1:{p_port}"], [], p_sock
            )
        else:
            node = await start_node("C", tmp_path, [c_sock], [route], c_sock)
        nodes.append(node)
        return node

    try:
        with trio.fail_after(150):
            producer = await start("P")
            # -- kills during put: the version is all there or not there -------------------
            for i in range(PUT_KILLS):
                k = i % 2
                cmd = [sys.executable, "-m", "ccn", "--node", p_sock, "put"]
                put = await trio.lowlevel.open_process([*cmd, str(sources[k]), "/c/file"])
                cut_puts += await _kill_during(producer, put, rng.uniform(0.0, 0.4))
                versions = _check_store(tmp_path / "P" / "store")
                assert set(published) <= set(versions)  # nothing published is ever lost
                producer = await start("P")
                async with connect(producer.uri) as c:
                    for n in versions:
                        data = await c.get(f"/c/file/v{n}")
                        assert data in contents
                        published[n] = data
                    if not versions or i % 4 == 3:  # keep versions coming
                        await c.put(sources[k], "/c/file")
            assert published, "no put ever completed"
            # -- kills during fetches through a caching node -------------------------------
            consumer = await start("C")
            latest = max(published)
            for i in range(FETCH_KILLS):
                out = tmp_path / f"out{i}"
                cmd = [sys.executable, "-m", "ccn", "--node", c_sock, "get"]
                get = await trio.lowlevel.open_process([*cmd, f"/c/file/v{latest}", "-o", str(out)])
                cut_gets += await _kill_during(consumer, get, rng.uniform(0.0, 0.4))
                _check_store(tmp_path / "C" / "store")
                assert not out.exists() or out.read_bytes() == published[latest]
                consumer = await start("C")
            async with connect(consumer.uri) as c:
                for n, data in published.items():
                    assert await c.get(f"/c/file/v{n}") == data
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    # the random kill points did land inside operations, not only before or after them
    print(f"crash: {cut_puts}/{PUT_KILLS} puts and {cut_gets}/{FETCH_KILLS} fetches cut short")
    assert cut_puts >= 3 and cut_gets >= 3, (cut_puts, cut_gets)


# -- gc, promoting pin, fsck --repair ------------------------------------------------------

Command = Callable[[Client], Awaitable[Any]]


@contextlib.contextmanager
def _opened(root: Path) -> Iterator[tuple[DiskObjectStore, DiskRefStore, CacheTier | None]]:
    """The main store, refs and cache tier of a dead node, opened directly."""
    store = DiskObjectStore(root, fsync=False)
    refs = DiskRefStore(root, fsync=False)
    cache = CacheTier(root / "cache") if (root / "cache").exists() else None
    try:
        yield store, refs, cache
    finally:
        store.close()
        refs.close()
        if cache is not None:
            cache.close()


def _walk(store: ObjectStore, vid: bytes, label: str) -> set[bytes]:
    """Every id below version ``vid``, itself included; fails unless each is there and intact."""
    seen: set[bytes] = set()
    stack = [vid]
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        try:
            obj = store.verify_object(oid)
        except (ObjectNotFound, CorruptObject) as e:
            raise AssertionError(f"{label} is not complete: {e}") from None
        stack.extend(child for child, _kind in children(obj))
    return seen


def _reachable(store: ObjectStore, refs: RefStore) -> set[bytes]:
    """Every object below every published version and every pin; fails unless all are there
    and intact (our own walk, not gc's marking nor fsck's)."""
    roots = {f"{name}/v{e.number}": e.id for name in refs.names() for e in refs.log(name)}
    for pin in refs.pins():
        vid = pin.id
        if vid is None and pin.number is not None:
            vid = refs.get(pin.name, pin.number)
        elif vid is None:
            latest = refs.latest(pin.name)
            vid = None if latest is None else latest[1]
        assert vid is not None, f"pin {pin.name} {pin.number} names no version"
        roots[f"pin {pin.name} {pin.number}"] = vid
    live: set[bytes] = set()
    for label, vid in roots.items():
        live |= _walk(store, vid, label)
    return live


def _check_dead(root: Path) -> tuple[set[bytes], set[bytes]]:
    """fsck a dead node's store (no problem allowed) and check every published version and
    every pin complete; return the ids of the main store and those reachable."""
    with _opened(root) as (store, refs, cache):
        problems, _checked = fsck(store, refs, cache)
        assert not problems, [p.line() for p in problems]
        return set(store.ids()), _reachable(store, refs)


def _clone(template: Path, label: str, workdir: Path) -> Path:
    """A copy of the (node-less) store ``template`` for node ``label``; return its root. Files
    under objects/ and packs/ are never changed in place (written once, then only unlinked;
    a pack over DISCARD_STEP is cut down first, and none here is that large), so they are hard
    links; the rest (refs, pins, cache segments, which are appended to) is copied."""
    root = workdir / label / "store"

    def copy(src: str, dst: str) -> None:
        parts = Path(src).relative_to(template).parts
        if parts[0] in ("objects", "packs"):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(template, root, copy_function=copy)
    return root


async def _timed(node: NodeProcess, command: Command) -> tuple[float, Any]:
    """Run ``command`` on ``node`` to its end; return how long it took and its result."""
    async with connect(node.uri) as client:
        start = trio.current_time()
        result = await command(client)
        return trio.current_time() - start, result


async def _kill_amid(
    node: NodeProcess, command: Command, delay: float | Callable[[], bool]
) -> bool:
    """Send ``command`` to ``node``, SIGKILL the node ``delay`` s later (or, for a callable, as
    soon as it returns True, or the command has replied); True if that cut the command short
    (no reply had come)."""
    replied = False

    async def run(client: Client) -> None:
        nonlocal replied
        with contextlib.suppress(ConnectError):  # the node died first; any other error fails
            await command(client)
            replied = True

    async with connect(node.uri) as client, trio.open_nursery() as nursery:
        nursery.start_soon(run, client)
        if callable(delay):
            while not delay() and not replied:
                await trio.sleep(0.0005)
        else:
            await trio.sleep(delay)
        os.kill(node.process.pid, signal.SIGKILL)
        await node.process.wait()
    return not replied


def _kill_points(rng: random.Random, span: float, kills: int) -> list[float]:
    """One random moment in each of ``kills`` equal parts of ``span``."""
    return [span * (i + rng.random()) / kills for i in range(kills)]


def _starter(
    workdir: Path, nodes: list[NodeProcess], routes: list[str]
) -> Callable[[str], Awaitable[NodeProcess]]:
    """Start node ``label`` on ``workdir/label/store`` with ``routes``; remember it in ``nodes``."""

    async def start(label: str) -> NodeProcess:
        sock = f"unix://{workdir}/{label}.sock"
        node = await start_node(label, workdir, [sock], routes, sock)
        nodes.append(node)
        return node

    return start


def _behind_origin(
    workdir: Path, nodes: list[NodeProcess]
) -> tuple[Callable[[], Awaitable[NodeProcess]], Callable[[str], Awaitable[NodeProcess]]]:
    """Starters for origin P (store ``workdir/P/store``, on a Unix socket and a TCP port) and,
    as :func:`_starter`, for nodes that route ``/c`` to it; both remember theirs in ``nodes``."""
    port = free_port()

    async def start_origin() -> NodeProcess:
        sock = f"unix://{workdir}/P.sock"
        node = await start_node("P", workdir, [sock, f"tcp://127.0.0.1:{port}"], [], sock)
        nodes.append(node)
        return node

    return start_origin, _starter(workdir, nodes, [f"/c=tcp://127.0.0.1:{port}"])


def _gc_template(root: Path, rng: random.Random, workdir: Path) -> dict[int, bytes]:
    """A store where gc has work; return what /g/file's versions hold, by number.

    Each of /g/file's four versions (2 MiB) shares its pack with 1 MiB of garbage, so gc
    rewrites four packs and carries the versions over (copying them is most of its time); v2 is
    also pinned. A version of /g/other promoted and unpinned since is a pack of nothing but
    garbage. Loose: 1500 garbage blobs, and loose copies of 100 live objects (as fsck repair
    leaves them)."""
    name = Name.parse("/g/file")
    contents = {}
    with DiskObjectStore(root, fsync=False) as store, DiskRefStore(root, fsync=False) as refs:
        for n in range(1, 5):
            src = workdir / f"g{n}.bin"
            src.write_bytes(rng.randbytes(2 << 20))
            contents[n] = src.read_bytes()
            with store.batch() as b:
                import_bytes(b, rng.randbytes(1 << 20), chunker=CHUNKS, fanout=FANOUT)
                publish(b, refs, name, src, chunker=CHUNKS, fanout=FANOUT)
        refs.pin(name, 2)
        src = workdir / "other.bin"
        src.write_bytes(rng.randbytes(1 << 20))
        publish(store, MemoryRefStore(), Name.parse("/g/other"), src, chunker=CHUNKS, fanout=FANOUT)
        for _ in range(1500):
            store.put_blob(rng.randbytes(500))
        for oid in sorted(_reachable(store, refs))[:100]:
            store.rewrite(store.get(oid))
    return contents


async def _gc(client: Client) -> Any:
    return await client.gc(grace=0)


async def test_sigkill_during_gc(tmp_path: Path) -> None:
    """Kills while gc removes loose garbage and rewrites packs: nothing reachable goes, and a
    gc after the restart finishes the work."""
    rng = random.Random(11)
    template = tmp_path / "template"
    contents = _gc_template(template, rng, tmp_path)
    with _opened(template) as (store, refs, _cache):
        reachable = _reachable(store, refs)
        garbage = set(store.ids()) - reachable
    nodes: list[NodeProcess] = []
    start = _starter(tmp_path, nodes, [])
    cut = middle = 0

    def garbage_left(label: str) -> int:
        ids, live = _check_dead(tmp_path / label / "store")
        assert live == reachable and reachable <= ids  # nothing reachable was removed
        return len(ids & garbage)

    try:
        with trio.fail_after(120):
            _clone(template, "G0", tmp_path)
            node = await start("G0")
            span, report = await _timed(node, _gc)  # the measure: a gc to its end
            await stop_all([node])
            assert report["count"] == len(garbage) and garbage_left("G0") == 0
            # Random moments, then one as soon as loose garbage starts to go: the removal is a
            # small part of the gc, which random kills could all miss (CI once cut three gcs
            # short, none with garbage partly gone).
            loose = [p for p in map(_loose_path(template), sorted(garbage)) if p.exists()][:64]
            for i, at in enumerate([*_kill_points(rng, span, GC_KILLS), None], 1):
                label = f"G{i}"
                _clone(template, label, tmp_path)
                node = await start(label)
                root = tmp_path / label / "store"
                going = [root / p.relative_to(template) for p in loose]
                when = at if at is not None else partial(_any_gone, going)
                cut += await _kill_amid(node, _gc, when)
                middle += 0 < garbage_left(label) < len(garbage)
                node = await start(label)
                async with connect(node.uri) as c:
                    await c.gc(grace=0)  # finishes the work, over what the kill left
                    for n, data in contents.items():
                        assert await c.get(f"/g/file/v{n}") == data
                await stop_all([node])
                assert garbage_left(label) == 0
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    kills = GC_KILLS + 1
    print(f"crash: gc {span:.2f} s, {cut}/{kills} cut short, {middle} with garbage partly gone")
    assert cut >= GC_KILLS // 2 and middle >= 1, (cut, middle)


MERGE_PUBLISHES = 400


def _merge_template(root: Path, rng: random.Random, workdir: Path) -> dict[str, bytes]:
    """A store of MERGE_PUBLISHES small publishes to 8 names (each a pack, its version
    object in it), with a pack and a loose object of garbage after every 10th; return what each
    version holds, by name."""
    contents = {}
    src = workdir / "small.bin"
    with DiskObjectStore(root, fsync=False) as store, DiskRefStore(root, fsync=False) as refs:
        for i in range(MERGE_PUBLISHES):
            src.write_bytes(rng.randbytes(6000 + i))
            name = Name.parse(f"/m/{i % 8}")
            v = publish(store, refs, name, src, chunker=CHUNKS, fanout=FANOUT)
            contents[f"{name}/v{v.number}"] = src.read_bytes()
            if i % 10 == 0:
                import_bytes(store, rng.randbytes(3000), chunker=CHUNKS, fanout=FANOUT)
                store.put_blob(rng.randbytes(300))
    return contents


def _loose_path(root: Path) -> Callable[[bytes], Path]:
    """Where the store at ``root`` keeps object ``oid`` loose (ccn/store/objstore.py)."""
    return lambda oid: root / "objects" / oid.hex()[:2] / oid.hex()[2:]


def _any_gone(paths: list[Path]) -> bool:
    return not all(p.exists() for p in paths)


def _merge_written(root: Path, old_packs: set[str]) -> bool:
    """A pack file that was not among ``old_packs`` is in the store: the merge is writing."""
    return any(n.endswith(".pack") and n[:-5] not in old_packs for n in os.listdir(root / "packs"))


def _files(root: Path) -> tuple[set[str], set[str], list[str], int]:
    """Pack indexes, pack files and set-aside packs of a store, and its loose object count."""
    names = os.listdir(root / "packs")
    indexes = {n[:-4] for n in names if n.endswith(".idx")}
    packs = {n[:-5] for n in names if n.endswith(".pack")}
    aside = [n for n in os.listdir(root / "tmp") if n.endswith(".aborted")]
    loose = sum(len(files) for _d, _s, files in os.walk(root / "objects"))
    return indexes, packs, aside, loose


async def test_sigkill_during_pack_merge(tmp_path: Path) -> None:
    """Kills while gc merges 400 small packs and loose objects into one pack (and leaves out
    the garbage): every version stays complete and fsck clean whatever the kill left (a pack
    half written, the merged pack beside the old ones, old packs set aside), and a gc after
    the restart finishes the merge: one pack, no loose object, every version byte for byte."""
    rng = random.Random(12)
    template = tmp_path / "template"
    contents = _merge_template(template, rng, tmp_path)
    with _opened(template) as (store, refs, _cache):
        reachable = _reachable(store, refs)
        garbage = set(store.ids()) - reachable
    old_packs = _files(template)[0]
    nodes: list[NodeProcess] = []
    start = _starter(tmp_path, nodes, [])
    cut = middle = 0

    def check(label: str) -> bool:
        """fsck clean, nothing reachable lost; whether the kill left a merge half done."""
        root = tmp_path / label / "store"
        ids, live = _check_dead(root)
        assert live == reachable and reachable <= ids
        indexes, packs, aside, _loose = _files(root)
        new = indexes - old_packs
        return bool(new and indexes & old_packs) or bool(packs - indexes) or bool(aside)

    try:
        with trio.fail_after(240):
            _clone(template, "M0", tmp_path)
            node = await start("M0")
            span, report = await _timed(node, _gc)  # the measure: a gc to its end
            await stop_all([node])
            assert report["packs_merged"] == len(old_packs) and report["packs_written"] == 1
            assert report["count"] == len(garbage)
            check("M0")
            # Random moments, then one as the merged pack is being written: a fast machine's
            # merge writes for a small part of the gc, which random kills could all miss.
            for i, at in enumerate([*_kill_points(rng, span, GC_KILLS), None], 1):
                label = f"M{i}"
                _clone(template, label, tmp_path)
                node = await start(label)
                root = tmp_path / label / "store"
                when = at if at is not None else partial(_merge_written, root, old_packs)
                cut += await _kill_amid(node, _gc, when)
                middle += check(label)
                indexes, packs, _aside, _loose = _files(root)
                debris = packs - indexes  # a pack cut short: removed once an hour old
                node = await start(label)
                async with connect(node.uri) as c:
                    await c.gc(grace=0)  # finishes the merge, over what the kill left
                    for name, data in contents.items():
                        assert await c.get(name) == data
                await stop_all([node])
                check(label)
                indexes, packs, aside, loose = _files(tmp_path / label / "store")
                assert len(indexes) == 1 and packs - indexes <= debris
                assert aside == [] and loose == 0
                with _opened(tmp_path / label / "store") as (store, _refs, _cache):
                    assert set(store.ids()) == reachable  # no garbage, no object twice
                    assert sum(len(ids) for _m, ids in store.packs().values()) == len(reachable)
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    print(f"crash: merge gc {span:.2f} s, {cut}/{GC_KILLS + 1} cut short, {middle} half merged")
    assert cut >= GC_KILLS // 2 and middle >= 1, (cut, middle)


def _version_objects(store: ObjectStore, vid: bytes) -> dict[bytes, bytes]:
    """Version ``vid`` and every object below it, by id."""
    return {oid: store.get(oid) for oid in _walk(store, vid, "")}


def _promotion_stores(
    p_root: Path, c_root: Path, rng: random.Random, workdir: Path
) -> tuple[dict[int, bytes], dict[int, dict[bytes, bytes]], dict[int, bytes]]:
    """P publishes /c/pin v1 and v2. C has v1 pinned (promoted earlier: in its main store, and
    in its cache tier, which keeps copies) and v2 in its cache tier only, as a fetch through C
    leaves it. Return the contents, the objects and the version ids of v1 and v2."""
    name = Name.parse("/c/pin")
    contents, objects, ids = {}, {}, {}
    with DiskObjectStore(p_root, fsync=False) as store, DiskRefStore(p_root, fsync=False) as refs:
        for n in (1, 2):
            src = workdir / f"pin{n}.bin"
            src.write_bytes(rng.randbytes(n * n << 21))  # 2 and 8 MiB
            contents[n] = src.read_bytes()
            publish(store, refs, name, src, chunker=CHUNKS, fanout=FANOUT)
            vid = refs.get(name, n)
            assert vid is not None
            ids[n], objects[n] = vid, _version_objects(store, vid)
    with DiskObjectStore(c_root, fsync=False) as store, DiskRefStore(c_root, fsync=False) as refs:
        with store.batch() as b:
            for raw in objects[1].values():
                b.put(raw)
        refs.pin(name, 1, ids[1])
    tier = CacheTier(c_root / "cache")
    try:
        tier.add_many([*objects[1].items(), *objects[2].items()])
    finally:
        tier.close()
    return contents, objects, ids


async def test_sigkill_during_promoting_pin(tmp_path: Path) -> None:
    """Kills while pin copies a version fetched from P out of the cache tier into C's store: the
    version is pinned and complete, or not pinned and still all in the tier; the earlier pin is
    untouched; after a restart the pin completes."""
    rng = random.Random(12)
    template = tmp_path / "template"
    p_root = tmp_path / "P" / "store"
    contents, objects, ids = _promotion_stores(p_root, template, rng, tmp_path)
    nodes: list[NodeProcess] = []
    start_origin, start = _behind_origin(tmp_path, nodes)
    outcomes: list[str] = []
    cut = 0

    async def promote(client: Client) -> Any:
        # what 'ccn pin /c/pin/v2' sends once the node holds every object of the version
        params = {"name": "/c/pin/v2", "version": objects[2][ids[2]]}
        return await client.command("pin", params, timeout=60)

    def check(label: str) -> str:
        """Check C's store; say what the kill left of the promotion."""
        root = tmp_path / label / "store"
        _ids, live = _check_dead(root)
        assert set(objects[1]) <= live  # the earlier pin is complete
        with _opened(root) as (store, refs, cache):
            assert cache is not None
            # nothing is lost: what is not in the main store yet is still in the tier
            assert all(store.has(oid) or cache.known(oid) for oid in objects[2])
            pinned = {p.number: p.id for p in refs.pins()}
            if 2 in pinned:
                assert pinned[2] == ids[2] and set(objects[2]) <= live
                return "pinned"
            if store.has(ids[2]):
                return "copied, not pinned"
        packs = list((root / "packs").glob("*.pack"))
        half = [p for p in packs if not p.with_suffix(".idx").exists()]
        return "pack half written" if half else "nothing"

    try:
        with trio.fail_after(120):
            await start_origin()
            # The measure: promotions to their end, the shortest of three (one slowed down by
            # the machine's load would put the later kill points after the end). Between
            # them, unpin and gc take v2 out of the store again; the tier keeps it.
            _clone(template, "C0", tmp_path)
            node = await start("C0")
            spans = []
            async with connect(node.uri) as c:
                for k in range(3):
                    if k:
                        await c.unpin("/c/pin/v2")
                        assert (await c.gc(grace=0))["count"] >= len(objects[2])
                    span, reply = await _timed(node, promote)
                    assert reply.get("pinned") == "/c/pin/v2", reply
                    spans.append(span)
            span = min(spans)
            await stop_all([node])
            assert check("C0") == "pinned"
            for i, delay in enumerate(_kill_points(rng, span, PIN_KILLS), 1):
                label = f"C{i}"
                _clone(template, label, tmp_path)
                node = await start(label)
                cut += await _kill_amid(node, promote, delay)
                outcomes.append(check(label))
                node = await start(label)
                async with connect(node.uri) as c:
                    assert await c.pin("/c/pin/v2") == Name.parse("/c/pin/v2")
                    for n, data in contents.items():
                        assert await c.get(f"/c/pin/v{n}") == data
                await stop_all([node])
                assert check(label) == "pinned"
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    shown = ", ".join(f"{t:.2f}" for t in spans)
    print(f"crash: promotion {shown} s, {cut}/{PIN_KILLS} cut short: {outcomes}")
    assert cut >= PIN_KILLS // 2 and "pack half written" in outcomes, outcomes


async def _check(client: Client) -> Any:
    return await client.fsck()


async def _repair(client: Client) -> Any:
    return await client.fsck(repair=True)


async def test_sigkill_during_fsck_repair(tmp_path: Path) -> None:
    """Kills while fsck --repair restores damaged objects of the main store from intact copies
    in the cache tier and drops damaged cache objects: after the kill the store holds the damage
    we made less what was repaired, and nothing else (no object or intact copy lost, nothing
    newly damaged); a repair after the restart finishes the work."""
    rng = random.Random(13)
    template = tmp_path / "template"
    p_root = tmp_path / "P" / "store"
    contents, objects, ids = _promotion_stores(p_root, template, rng, tmp_path)
    blobs = [
        sorted(oid for oid, raw in objects[n].items() if raw[:2] == b"\x92\x01") for n in (1, 2)
    ]
    in_store = set(rng.sample(blobs[0], 150))  # pinned v1: damaged in the main store's pack
    in_tier = set(rng.sample(blobs[1], 150))  # v2: damaged in the cache tier
    with _opened(template) as (store, _refs, cache):
        assert cache is not None
        spots = [store.locate(oid) for oid in in_store] + [cache.locate(oid) for oid in in_tier]
    for spot in spots:
        assert spot is not None
        damage_object(spot)
    planted = len(in_store) + len(in_tier)
    pin_line = (
        rf"pin /c/pin/v1 \({ids[1].hex()}\): incomplete: \d+ object\(s\) damaged \(first \w+\)"
    )
    nodes: list[NodeProcess] = []
    start_origin, start = _behind_origin(tmp_path, nodes)
    cut = middle = 0

    def damage_left(label: str) -> int:
        """Check what a killed repair left; return how much of the damage is still there."""
        with _opened(tmp_path / label / "store") as (store, refs, cache):
            assert cache is not None
            problems, _checked = fsck(store, refs, cache)
            # nothing went: v1 is all in the main store, and so are the intact copies in the
            # tier that restoring it needs; v2 is in the tier but for what was damaged there
            assert set(objects[1]) <= set(store.ids()) and set(objects[1]) <= set(cache.ids())
            assert set(objects[2]) - in_tier <= set(cache.ids())
        left = 0
        for p in problems:
            m = re.fullmatch(r"damaged (cache )?object (\w{64})( in .*)?", p.line())
            if m is None:
                assert re.fullmatch(pin_line, p.line()), p.line()
                continue
            assert bytes.fromhex(m[2]) in (in_tier if m[1] else in_store), p.line()
            left += 1
        return left

    try:
        with trio.fail_after(120):
            await start_origin()
            _clone(template, "F0", tmp_path)
            node = await start("F0")
            # The measure: the shorter of a check and a repair to their end (a check reads as
            # much and writes nothing; one run slowed down by the machine's load would put the
            # later kill points after the end).
            checking, report = await _timed(node, _check)
            assert report["count"] == planted + 1, report  # and the line of the pinned v1
            span, report = await _timed(node, _repair)
            await stop_all([node])
            assert report["unrepaired"] == 0 and damage_left("F0") == 0, report
            spans, span = (checking, span), min(checking, span)
            _check_dead(tmp_path / "F0" / "store")
            for i, delay in enumerate(_kill_points(rng, span, FSCK_KILLS), 1):
                label = f"F{i}"
                _clone(template, label, tmp_path)
                node = await start(label)
                cut += await _kill_amid(node, _repair, delay)
                middle += 0 < damage_left(label) < planted
                node = await start(label)
                async with connect(node.uri) as c:
                    report = await c.fsck(repair=True)  # finishes the work
                    assert report["unrepaired"] == 0, report
                    for n, data in contents.items():
                        assert await c.get(f"/c/pin/v{n}") == data
                await stop_all([node])
                _check_dead(tmp_path / label / "store")
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    shown = ", ".join(f"{t:.2f}" for t in spans)
    print(f"crash: fsck, fsck --repair {shown} s, {cut}/{FSCK_KILLS} cut short, {middle} partly")
    assert cut >= FSCK_KILLS // 2 and middle >= 1, (cut, middle)


STOP_KILLS = 4


async def test_sigkill_during_exit_cache_save(tmp_path: Path) -> None:
    """SIGTERM a caching node whose CS holds a fetched file, SIGKILL it while its exit writes
    the CS to the cache tier (docs/store.md §6): the tier stays consistent, and the node
    restarts and serves the file byte for byte."""
    rng = random.Random(5)
    data = os.urandom(SIZE)
    (tmp_path / "src.bin").write_bytes(data)
    nodes: list[NodeProcess] = []
    start_origin, start = _behind_origin(tmp_path, nodes)
    killed = 0
    try:
        with trio.fail_after(120):
            async with connect((await start_origin()).uri) as p:
                await p.put(tmp_path / "src.bin", "/c/file")
            for i in range(STOP_KILLS):
                consumer = await start("C")
                async with connect(consumer.uri) as c:
                    assert await c.get("/c/file/v1") == data
                consumer.process.send_signal(signal.SIGTERM)  # our child, by its pid
                await trio.sleep(0.08 * (i + rng.random()) / STOP_KILLS)
                with contextlib.suppress(ProcessLookupError):
                    consumer.process.send_signal(signal.SIGKILL)
                await consumer.process.wait()
                killed += consumer.process.returncode == -signal.SIGKILL
                _check_dead(tmp_path / "C" / "store")
            async with connect((await start("C")).uri) as c:
                assert await c.get("/c/file/v1") == data
    finally:
        await stop_all([n for n in nodes if n.process.returncode is None])
    assert killed >= 1, f"none of {STOP_KILLS} kills landed before the node had exited"
