"""Store maintenance of a running node (log, pin, unpin, pins, gc, fsck), called on the node's
own :class:`~ccn.maintenance.Maintenance` with a real on-disk store and cache tier."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn import maintenance
from ccn.cli import _print_status
from ccn.client import connect, new_nonce
from ccn.errors import Stopped
from ccn.maintenance import Maintenance, MaintenanceError, stoppable
from ccn.mgmt_proto import command_name
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest
from ccn.store import fsck, gc
from ccn.store.files import publish
from ccn.store.objects import Version, children, decode, encode, id_of
from ccn.store.objstore import DiskObjectStore, MemoryObjectStore
from ccn.store.refs import DiskRefStore, MemoryRefStore
from ccn.testing import NodeProcess, leave_command, node_in_process, start_node, stop_all

F = Name.parse("/m/f")


@asynccontextmanager
async def _node(tmp_path: Path, versions: int = 2) -> AsyncIterator[tuple[Any, Maintenance]]:
    """A node that published ``versions`` versions of ``/m/f``; yields it and its maintenance."""
    async with node_in_process(tmp_path / "n") as (node, _uri):
        for k in range(versions):
            src = tmp_path / f"f{k}"
            src.write_bytes(os.urandom(1000 + k))
            publish(node.store, node.refs, F, src)
        with trio.fail_after(20):
            yield node, node.management.maintenance


class Elsewhere:
    """A version published on another store: its record and every object below it."""

    def __init__(self, tmp_path: Path, name: str = "/far/f", size: int = 300_000) -> None:
        store, refs = MemoryObjectStore(), MemoryRefStore()
        src = tmp_path / "far.bin"
        src.write_bytes(os.urandom(size))
        self.version = publish(store, refs, Name.parse(name), src)
        self.raw = encode(self.version)
        self.objects: dict[bytes, bytes] = {}
        stack = list(children(self.version))
        while stack:
            oid, _kind = stack.pop()
            self.objects[oid] = raw = store.get(oid)
            obj = decode(raw)
            if type(obj) is not Version:
                stack.extend(children(obj))


async def test_log_lists_versions_oldest_first(tmp_path: Path) -> None:
    async with _node(tmp_path) as (node, m):
        reply = await m.log(F)
        assert reply["name"] == "/m/f"
        v1, v2 = reply["versions"]
        ids = [e.id.hex() for e in node.refs.log(F)]
        assert [v1["number"], v2["number"]] == [1, 2] and [v1["id"], v2["id"]] == ids
        assert (v1["size"], v2["size"]) == (1000, 1001)
        assert v1["previous"] is None and v2["previous"] == v1["id"]
        assert v1["time_ns"] <= v2["time_ns"] and not v1["pinned"] and not v2["pinned"]
        assert (await m.log(F.with_version(1)))["versions"] == [v1]
        # a version whose record is gone from the store is still listed, with the error
        node.store.delete(bytes.fromhex(v1["id"]))
        gone = (await m.log(F))["versions"][0]
        assert gone["number"] == 1 and "error" in gone and "size" not in gone


async def test_log_errors(tmp_path: Path) -> None:
    async with _node(tmp_path) as (_, m):
        with pytest.raises(MaintenanceError, match=r"^/m/other is not published on this node$"):
            await m.log(Name.parse("/m/other"))
        with pytest.raises(MaintenanceError, match=r"^/m/f/v3 is not published on this node$"):
            await m.log(F.with_version(3))
        with pytest.raises(MaintenanceError, match="is not published"):
            await m.log(Name.parse("/m/f/sub"))


async def test_pin_and_unpin_what_is_published_here(tmp_path: Path) -> None:
    async with _node(tmp_path) as (node, m):
        assert await m.pin(F.with_version(1), None) == {"pinned": "/m/f/v1"}
        assert await m.pin(F, None) == {"pinned": "/m/f"}  # whatever is latest
        assert [v["pinned"] for v in (await m.log(F))["versions"]] == [True, True]
        assert sorted(m.pins(), key=lambda p: p["number"] or 0) == [
            {"name": "/m/f", "number": None, "id": None},
            {"name": "/m/f", "number": 1, "id": None},
        ]
        publish(node.store, node.refs, F, tmp_path / "f0")  # v3: the latest pin moves along
        assert [v["pinned"] for v in (await m.log(F))["versions"]] == [True, False, True]
        assert await m.unpin(F.with_version(1)) == {"removed": 1}
        with pytest.raises(MaintenanceError, match=r"^/m/f/v1 is not pinned$"):
            await m.unpin(F.with_version(1))
        assert await m.pin(F.with_version(2), None) == {"pinned": "/m/f/v2"}
        assert await m.unpin(F) == {"removed": 2}  # every pin of the name
        assert m.pins() == []
        with pytest.raises(MaintenanceError, match=r"^/m/f is not pinned$"):
            await m.unpin(F)


async def test_pin_errors(tmp_path: Path) -> None:
    far = Elsewhere(tmp_path)
    name = far.version.full_name
    async with _node(tmp_path) as (_, m):
        with pytest.raises(MaintenanceError, match="cannot pin the root name"):
            await m.pin(ROOT, None)
        with pytest.raises(MaintenanceError, match=r"^/m/f/v9: no such version on this node$"):
            await m.pin(F.with_version(9), None)
        with pytest.raises(MaintenanceError, match="not a version record"):
            await m.pin(name, b"\x00garbage")
        with pytest.raises(MaintenanceError, match="not a version of /elsewhere"):
            await m.pin(Name.parse("/elsewhere"), far.raw)
        blob = next(iter(far.objects.values()))
        with pytest.raises(MaintenanceError, match="not a version of /far/f"):
            await m.pin(name, blob)
        with pytest.raises(MaintenanceError, match=r"^the record sent is v1, not v2$"):
            await m.pin(Name.parse("/far/f/v2"), far.raw)
        assert m.pins() == []


async def test_pinning_a_version_from_elsewhere_asks_for_what_it_lacks(tmp_path: Path) -> None:
    far = Elsewhere(tmp_path)
    name = far.version.full_name
    async with _node(tmp_path) as (node, m):
        assert await m.pin(name, None) == {"need": "version"}
        # the root is missing: what lies below it cannot be known yet
        assert await m.pin(name, far.raw) == {"need": "content", "missing": 1}
        root = far.version.root
        below = children(decode(far.objects[root]))
        assert len(below) > 1 and len(far.objects) == len(below) + 1  # one flat manifest
        node.cache.add_many([(root, far.objects[root])])
        assert await m.pin(name, far.raw) == {"need": "content", "missing": len(below)}
        node.cache.add_many((oid, far.objects[oid]) for oid, _kind in below[1:])
        assert await m.pin(name, far.raw) == {"need": "content", "missing": 1}
        assert m.pins() == [] and not node.store.known(id_of(far.version))


async def test_pinning_promotes_from_the_cache_tier_and_the_content_store(tmp_path: Path) -> None:
    far = Elsewhere(tmp_path)
    items = list(far.objects.items())
    in_tier, in_cs = dict(items[::2]), dict(items[1::2])
    assert in_tier and in_cs
    async with _node(tmp_path) as (node, m):
        node.cache.add_many(in_tier.items())
        now = trio.current_time()
        for raw in in_cs.values():
            assert node.forwarder.cs.insert(Data(ROOT, raw), now)
        assert await m.pin(Name.parse("/far/f"), far.raw) == {"pinned": "/far/f/v1"}
        vid = id_of(far.version)
        assert node.store.get(vid) == far.raw
        assert all(node.store.get(oid) == raw for oid, raw in far.objects.items())
        # what came from the CS is in the tier too: after unpin and gc it is still here
        assert all(node.cache.known(oid) for oid in far.objects)
        assert m.pins() == [{"name": "/far/f", "number": 1, "id": vid.hex()}]
        # no history here (only a publisher keeps one), but the log says what is kept
        with pytest.raises(
            MaintenanceError,
            match=r"^/far/f is not published on this node; "
            r"it keeps /far/f/v1 pinned \(see ccn pins\)$",
        ):
            await m.log(Name.parse("/far/f"))
        # the main store keeps it through a gc while pinned, and lets it go once unpinned
        assert (await m.gc(False, grace_s=0))["count"] == 0
        assert await m.unpin(Name.parse("/far/f/v1")) == {"removed": 1}
        removed = await m.gc(False, grace_s=0)
        assert removed["count"] == len(far.objects) + 1
        assert not node.store.known(vid)


async def test_gc_reports_and_removes_only_unreachable_objects(tmp_path: Path) -> None:
    async with _node(tmp_path) as (node, m):
        published = set(node.store.ids())
        orphans = {node.store.put_blob(os.urandom(100 + k)) for k in range(3)}
        young = await m.gc(False)  # default grace: an hour
        assert (young["count"], young["young"], young["removed"]) == (0, 3, [])
        dry = await m.gc(True, grace_s=0)
        assert dry["dry_run"] is True and dry["count"] == 3
        assert {bytes.fromhex(h) for h, _size in dry["removed"]} == orphans
        assert dry["bytes"] == sum(size for _h, size in dry["removed"])
        assert set(node.store.ids()) == published | orphans  # a dry run removes nothing
        done = await m.gc(False, grace_s=0)
        assert done["dry_run"] is False and done["count"] == 3 and done["live"] == len(published)
        assert set(node.store.ids()) == published and done["warnings"] == []


async def test_replies_list_at_most_max_lines_but_count_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "MAX_LINES", 2)
    async with _node(tmp_path, versions=4) as (node, m):
        for k in range(5):
            node.store.put_blob(os.urandom(50 + k))
        reply = await m.gc(True, grace_s=0)
        assert len(reply["removed"]) == 2 and reply["count"] == 5
        for oid in list(node.store.ids()):
            node.store.delete(oid)
        report = await m.fsck(False)
        assert len(report["problems"]) == 2 and report["count"] == 4


async def test_fsck_reports_damage_it_cannot_repair(tmp_path: Path) -> None:
    async with _node(tmp_path) as (node, m):
        clean = await m.fsck(False)
        assert (clean["count"], clean["unrepaired"], clean["problems"]) == (0, 0, [])
        assert clean["checked"]["versions"] == 2 and clean["checked"]["objects"] > 0
        v1 = decode(node.store.get(node.refs.get(F, 1)))
        assert type(v1) is Version
        node.store.delete(v1.root)  # published content gone: fsck --repair cannot make it up
        for repair in (False, True):
            report = await m.fsck(repair)
            assert report["count"] == report["unrepaired"] == 1
            (line,) = report["problems"]
            assert line.startswith("/m/f/v1 (") and "\n" not in line


async def teststoppable_returns_the_result_and_raises_the_error_of_the_work() -> None:
    with trio.fail_after(10):
        assert await stoppable(lambda stop: 42) == 42

        def fails(stop: threading.Event) -> int:
            raise ValueError("bad file")

        with pytest.raises(ValueError, match="bad file"):  # itself, not in an exception group
            await stoppable(fails)


async def teststoppable_tells_the_work_to_stop_and_waits_for_it_when_cancelled() -> None:
    started = threading.Event()
    finished: list[bool] = []

    def work(stop: threading.Event) -> None:
        started.set()
        finished.append(stop.wait(10))  # the work notices ``stop`` and ends early

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stoppable, work)
            while not started.is_set():
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert finished == [True]  # stop was set, and the thread had ended when the task did


@pytest.mark.parametrize("verb", ["gc", "fsck"])
async def test_a_long_command_whose_client_leaves_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    # gc and fsck used to run to their end after a Ctrl-C'd client, and a node being stopped
    # waited for them. The job is held until told to stop, then goes on as the real one would.
    started, stopped = threading.Event(), threading.Event()
    real: Callable[..., Any] = gc.collect if verb == "gc" else fsck.fsck

    def held(*args: Any, stop: threading.Event, **kwargs: Any) -> Any:
        started.set()
        if stop.wait(10):
            stopped.set()
        return real(*args, stop=stop, **kwargs)

    monkeypatch.setattr(maintenance, {"gc": "collect", "fsck": "fsck"}[verb], held)
    name = command_name(verb, {})
    interest = Interest(name, new_nonce(), lifetime_ms=600_000, must_be_fresh=True)
    async with node_in_process(tmp_path / "n") as (node, uri):
        with trio.fail_after(20):
            await leave_command(uri, node, interest, started, stopped)
            started.clear()
            async with connect(uri) as client:
                # another name: the same one sent at once could be answered with the first
                # one's "stopped" (the node answers whoever waits for that name)
                other = command_name(
                    verb, {"gc": {"dry_run": True}, "fsck": {"repair": False}}[verb]
                )
                again = Interest(other, new_nonce(), lifetime_ms=600_000, must_be_fresh=True)
                client.send(again, lambda _answer: None)  # and stop the node meanwhile
                assert await trio.to_thread.run_sync(started.wait, 10)
                stopped.clear()
                with trio.fail_after(3):  # not the 10 s the held job would wait
                    node.nursery.cancel_scope.cancel()
                    await trio.to_thread.run_sync(stopped.wait, 10)
                assert stopped.is_set()


async def test_a_pin_whose_client_leaves_copies_nothing(tmp_path: Path) -> None:
    far = Elsewhere(tmp_path)
    async with _node(tmp_path) as (node, m):
        node.cache.add_many(far.objects.items())
        before = node.store.stats().objects
        with pytest.raises(Stopped, match="pin stopped before its end: nothing was pinned"):
            await m.pin(Name.parse("/far/f"), far.raw, lambda: False)
        assert node.store.stats().objects == before and m.pins() == []
        assert await m.pin(Name.parse("/far/f"), far.raw) == {"pinned": "/far/f/v1"}


async def test_a_pin_never_replaces_another_nodes_version_of_the_same_number(
    tmp_path: Path,
) -> None:
    # A node that pinned /far/f/v1 from its publisher, then published its own /far/f (its own
    # v1): `pin /far/f/v1` replaced the pin of the other node's record without a word, and gc
    # deleted that version; `log` already showed the local v1 as pinned.
    far = Elsewhere(tmp_path)
    async with _node(tmp_path, versions=0) as (node, m):
        node.cache.add_many(far.objects.items())
        assert await m.pin(Name.parse("/far/f"), far.raw) == {"pinned": "/far/f/v1"}
        publish(node.store, node.refs, Name.parse("/far/f"), tmp_path / "far.bin")
        src = tmp_path / "own"
        src.write_bytes(b"our own v1")
        publish(node.store, node.refs, Name.parse("/far/f"), src)  # v2 here
        assert [v["pinned"] for v in (await m.log(Name.parse("/far/f")))["versions"]] == [
            False,  # the pin is of the other node's v1, not of this v1
            False,
        ]
        with pytest.raises(MaintenanceError, match=r"^/far/f/v1 is already pinned as another "):
            await m.pin(Name.parse("/far/f/v1"), None)
        assert m.pins() == [{"name": "/far/f", "number": 1, "id": id_of(far.version).hex()}]
        await m.gc(False, 0.0)
        assert node.store.get(id_of(far.version)) == far.raw  # still kept
        # fsck checks the pinned version from elsewhere too, and now counts it
        assert (await m.fsck(False))["checked"]["versions"] == 3
        assert await m.pin(Name.parse("/far/f/v2"), None) == {"pinned": "/far/f/v2"}


async def test_a_pin_whose_client_leaves_as_it_ends_pins_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C in the last moments of a pin: the client said "interrupted", and the pin was
    # recorded all the same (the client was looked for only while the copy ran).
    far = Elsewhere(tmp_path)
    here = {"client": True}
    promote = Maintenance._promote

    def promote_then_leave(self: Maintenance, *args: Any) -> None:
        promote(self, *args)
        here["client"] = False  # gone just as the copy ended

    monkeypatch.setattr(Maintenance, "_promote", promote_then_leave)
    async with _node(tmp_path) as (node, m):
        node.cache.add_many(far.objects.items())
        with pytest.raises(Stopped, match="nothing was pinned"):
            await m.pin(Name.parse("/far/f"), far.raw, lambda: here["client"])
        assert m.pins() == []


async def _publish_files(client: Any, tmp_path: Path, n: int) -> dict[str, bytes]:
    """Publish ``n`` small files under /auto through ``client``; return them by versioned name."""
    contents = {}
    for k in range(n):
        src = tmp_path / f"auto{k}"
        src.write_bytes(os.urandom(2000 + k))
        reply = await client.publish(src, f"/auto/{k % 3}")
        contents[reply["name"]] = src.read_bytes()
    return contents


async def test_the_node_merges_small_packs_on_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every publish is a pack, and nothing merged them but `ccn gc`: a node publishing every
    # minute that nobody ran gc on had 43,000 after a month. It merges once more than
    # auto_merge of them are older than auto_merge_age, removing nothing.
    async with (
        node_in_process(tmp_path / "n", auto_merge=5, auto_merge_age=0) as (node, uri),
        connect(uri) as client,
    ):
        with trio.fail_after(30):
            contents = await _publish_files(client, tmp_path, 9)
            orphan = node.store.put_blob(b"garbage that only ccn gc removes")
            while node.management.maintenance.merges["runs"] < 1:
                await trio.sleep(0.05)
            status = (await client.status())["store"]
            auto = status["auto_merge"]
            assert auto["runs"] == 1 and auto["packs_merged"] >= 6 and auto["packs_written"] == 1
            assert status["packs"] == 9 - auto["packs_merged"] + 1 and status["loose"] == 1
            assert not auto["running"] and auto["error"] is None
            _print_status(await client.status())
            assert re.search(
                rf"^store: .* in {status['packs']} packs and 1 loose object; automatic merge "
                rf"\d+ s ago: {auto['packs_merged']} packs and 0 loose objects into 1 "
                r"\(at more than 5 older than 0 s\)$",
                capsys.readouterr().out,
                re.M,
            )
            for name, data in contents.items():
                assert await client.get(name) == data
            assert node.store.has(orphan)  # merged, not removed
            r = await client.fsck()
            assert (r["count"], r["checked"]["versions"]) == (0, 9)
    with trio.fail_after(30):
        async with node_in_process(tmp_path / "n") as (node, uri):  # the default: an hour old
            async with connect(uri) as client:
                await _publish_files(client, tmp_path, 2)
            await trio.sleep(0.2)
            assert node.management.maintenance.merges["runs"] == 0


async def test_packs_younger_than_auto_merge_age_are_not_merged(tmp_path: Path) -> None:
    async with (
        node_in_process(tmp_path / "n", auto_merge=2, auto_merge_age=3600) as (node, uri),
        connect(uri) as client,
    ):
        with trio.fail_after(30):
            await _publish_files(client, tmp_path, 5)
            await trio.sleep(0.3)
            assert len(node.store.packs()) == 5
            assert node.management.maintenance.merges["runs"] == 0


def _many_small_packs(root: Path, tmp_path: Path) -> dict[str, bytes]:
    """A store of 60 packs of 2000 small objects each (a merge of them takes seconds here)
    and 3 published versions; return their content by versioned name."""
    contents = {}
    with DiskObjectStore(root, fsync=False) as store, DiskRefStore(root, fsync=False) as refs:
        for _ in range(60):
            with store.batch() as b:
                for _ in range(2000):
                    b.put_blob(os.urandom(200))
        for k in range(3):
            src = tmp_path / f"v{k}"
            src.write_bytes(os.urandom(5000))
            v = publish(store, refs, Name.parse("/big"), src)
            contents[f"/big/v{v.number}"] = src.read_bytes()
    return contents


def _indexes(root: Path) -> set[str]:
    return {n for n in os.listdir(root / "packs") if n.endswith(".idx")}


async def test_sigterm_stops_a_node_within_a_second_while_it_merges_packs(tmp_path: Path) -> None:
    """The merge runs on a worker thread that the shutdown waits for: it must stop between
    objects, not merge 120,000 objects first. What it leaves is the store as it was; the next
    start merges it all, and every version is still there byte for byte."""
    root = tmp_path / "N" / "store"
    contents = _many_small_packs(root, tmp_path)
    before = _indexes(root)
    config = tmp_path / "node.toml"
    config.write_text("auto_merge = 10\nauto_merge_age = 0\n")
    sock = f"unix://{tmp_path}/N.sock"
    nodes: list[NodeProcess] = []
    try:
        with trio.fail_after(60):
            node = await start_node("N", tmp_path, [sock], [], sock, config=config)
            nodes.append(node)
            async with connect(sock) as client:
                while not (await client.status())["store"]["auto_merge"]["running"]:
                    await trio.sleep(0.01)
            await trio.sleep(0.2)  # well into it
            node.stop()  # SIGTERM, our child by its pid
            with trio.fail_after(1.0):
                await node.process.wait()
            assert node.process.returncode == 0
            assert _indexes(root) == before  # cut short: the merge under way was discarded
            node = await start_node("N", tmp_path, [sock], [], sock, config=config)
            nodes.append(node)
            async with connect(sock) as client:
                while (await client.status())["store"]["auto_merge"]["runs"] < 1:
                    await trio.sleep(0.05)
                s = (await client.status())["store"]
                assert (s["packs"], s["loose"], s["auto_merge"]["packs_merged"]) == (1, 0, 63)
                for name, data in contents.items():
                    assert await client.get(name) == data
                assert (await client.fsck())["count"] == 0
    finally:
        await stop_all(nodes)


async def test_gc_waits_for_a_publish_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publish stores its version object, then moves the ref. A GC in between (here with no
    # grace period: ccn gc --grace 0 beside ccn put) removed the object, and the ref then named
    # a version that was not there (fsck: "version object missing"). The publish is held
    # between the two; the GC must wait for it, and a publish asked for meanwhile for the GC.
    held, release = threading.Event(), threading.Event()
    src = tmp_path / "f"
    src.write_bytes(os.urandom(5000))
    async with node_in_process(tmp_path / "n") as (node, uri):
        m = node.management.maintenance
        real = node.refs.compare_and_swap

        def slow_cas(*args: Any) -> None:
            held.set()
            release.wait(10)
            real(*args)

        monkeypatch.setattr(node.refs, "compare_and_swap", slow_cas)
        collected = trio.Event()
        replies: list[dict[str, Any]] = []

        async def gc_now() -> None:
            await m.gc(False, grace_s=0)
            collected.set()

        async def put(name: str) -> None:
            async with connect(uri) as client:
                replies.append(await client.publish(src, name))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(put, "/m/held")
                assert await trio.to_thread.run_sync(held.wait, 10)
                nursery.start_soon(gc_now)
                await trio.sleep(0.5)  # far longer than a GC of a few objects takes
                assert not collected.is_set()
                monkeypatch.setattr(node.refs, "compare_and_swap", real)
                nursery.start_soon(put, "/m/after")
                await trio.sleep(0.2)
                assert replies == []  # it waits behind the GC, which waits for the first
                release.set()
            assert [r["name"] for r in replies] == ["/m/held/v1", "/m/after/v1"]
            checked = await m.fsck(False)
        assert checked["count"] == 0, checked["problems"]
        assert checked["checked"]["versions"] == 2
