"""A node in process, with real Unix/TCP sockets: publish, fetch, caches, management."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from blake3 import blake3

from ccn.client import CommandError, connect
from ccn.config import ConfigError, NodeConfig
from ccn.errors import NoRoute, NotFound
from ccn.name import Name
from ccn.node import DESCRIPTORS_BESIDES_FACES, Node
from ccn.packet import Data, Interest
from ccn.relay import run_relay
from ccn.store.files import publish
from ccn.store.objects import Blob, Version, object_id
from ccn.store.objects import encode as encode_object
from ccn.store.objstore import DiskObjectStore, MemoryObjectStore
from ccn.store.refs import MemoryRefStore
from ccn.testing import CrowdedNode, node_in_process

FACE_KEYS = {
    "id",
    "remote",
    "in_interests",
    "out_interests",
    "in_data",
    "out_data",
    "in_nacks",
    "out_nacks",
    "in_bytes",
    "out_bytes",
    "dropped",
}


def _write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def test_publish_get_ls_status(tmp_path: Path) -> None:
    data = _write(tmp_path / "f.bin", 300_000)
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            name = await client.put(tmp_path / "f.bin", "/t/file")
            assert name == Name.parse("/t/file/v1")
            assert await client.get("/t/file") == data
            assert await client.get("/t/file/v1") == data
            assert await client.put(tmp_path / "f.bin", "/t/file") == Name.parse("/t/file/v2")
            assert await client.ls("/t") == [
                {"name": "/t/file", "versions": [1, 2], "versions_total": 2}
            ]
            status = await client.status()
    for key in ("faces", "fib", "pit", "cs", "producer", "store"):
        assert key in status
    assert all(set(f) >= FACE_KEYS for f in status["faces"])
    assert {"entries", "bytes", "hits", "misses"} <= set(status["cs"])
    assert "entries" in status["pit"]
    assert status["producer"]["interests"] > 0 and status["store"]["objects"] > 0
    assert any(e["prefix"] == "/t/file" for e in status["fib"])


async def test_latest_is_not_an_old_version_fetched_by_its_number(tmp_path: Path) -> None:
    # /t/f/v1 fetched by number sits in the CS; it must not answer "latest" once v2 exists
    (tmp_path / "one").write_bytes(b"one")
    (tmp_path / "two").write_bytes(b"two")
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            await client.put(tmp_path / "one", "/t/f")
            assert await client.get("/t/f/v1") == b"one"
            await client.put(tmp_path / "two", "/t/f")
            assert await client.get("/t/f") == b"two"


async def test_directory_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    files = {
        "a.txt": b"hello",
        "empty": b"",
        "sub/b.bin": os.urandom(200_000),
        "sub/deeper/c": os.urandom(10),
    }
    for rel, content in files.items():
        (src / rel).write_bytes(content)
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            await client.put(src, "/t/dir")
            await client.fetch("/t/dir", tmp_path / "out")
    for rel, content in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == content


async def test_errors_are_typed(tmp_path: Path) -> None:
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            with pytest.raises(NoRoute):
                await client.get("/nobody/serves/this")
            await client.put(_touch(tmp_path / "x"), "/t/x")
            with pytest.raises(NotFound):
                await client.get("/t/x/v9")
            with pytest.raises(CommandError, match="cannot reach"):
                await client.route_add(Name.parse("/far"), "tcp://127.0.0.1:1")
            with pytest.raises(CommandError, match="unknown command"):
                await client.command("explode")


async def test_localhost_takes_no_routes(tmp_path: Path) -> None:
    # removing /localhost/ccn left the node deaf to every command until it restarted
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            mgmt = next(h["face"] for e in await client.routes("/localhost") for h in e["nexthops"])
            with pytest.raises(CommandError, match="takes no routes"):
                await client.route_remove(Name.parse("/localhost/ccn"), str(mgmt))
            with pytest.raises(CommandError, match="takes no routes"):
                await client.route_add(Name.parse("/localhost/ccn/status"), uri)
            assert "faces" in await client.status()


def _touch(path: Path) -> Path:
    path.write_bytes(b"x")
    return path


async def _status(uri: str) -> dict[str, Any]:
    async with connect(uri) as c:
        return await c.status()


async def test_chain_caches_and_aggregates(tmp_path: Path) -> None:
    """A, A2 -> B -> C over TCP: C's producer answers each object once; B's cache serves A2."""
    data = _write(tmp_path / "f.bin", 3_000_000)
    route = Name.parse("/c")
    async with (
        node_in_process(tmp_path, "C", tcp=True) as (c_node, c_uri),
        trio.open_nursery() as relays,
    ):
        # a 10 ms link between B and C, so the two consumers' Interests meet in B's PIT
        c_port = c_node.bound[1].port
        relay_port = await relays.start(run_relay, ("127.0.0.1", c_port), 0.010)
        c_tcp = f"tcp://127.0.0.1:{relay_port}"
        async with node_in_process(tmp_path, "B", tcp=True, routes=[(route, c_tcp)]) as (
            b_node,
            b_uri,
        ):
            b_tcp = str(b_node.bound[1])
            async with (
                node_in_process(tmp_path, "A", routes=[(route, b_tcp)]) as (_a, a_uri),
                node_in_process(tmp_path, "A2", routes=[(route, b_tcp)]) as (_a2, a2_uri),
            ):
                async with connect(c_uri) as producer:
                    await producer.put(tmp_path / "f.bin", "/c/file")
                results: dict[str, bytes] = {}
                with trio.fail_after(30):
                    async with trio.open_nursery() as nursery:
                        for label, uri in (("A", a_uri), ("A2", a2_uri)):

                            async def one(label: str = label, uri: str = uri) -> None:
                                async with connect(uri) as client:
                                    results[label] = await client.get("/c/file")

                            nursery.start_soon(one)
                assert results == {"A": data, "A2": data}
                c_status = await _status(c_uri)
                objects = c_status["store"]["objects"]
                # version record (at most twice: "latest" is re-asked when stale) + every object
                assert c_status["producer"]["data"] <= objects + 1
                before = c_status["producer"]["data"]
                async with (
                    node_in_process(tmp_path, "A3", routes=[(route, b_tcp)]) as (_x, a3),
                    connect(a3) as client,
                ):
                    assert await client.get("/c/file/v1") == data
                assert (await _status(c_uri))["producer"]["data"] == before
                b_status = await _status(b_uri)
                assert b_status["cs"]["hits"] >= objects - 1
                assert b_status["forwarder"]["aggregated"] > 0
        relays.cancel_scope.cancel()


async def test_requests_that_used_to_stop_the_node_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these ended the node (found by an audit); now each fails alone, with a reason."""
    from ccn import mgmt

    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            await client.put(_touch(tmp_path / "x"), "/t/x")
            with pytest.raises(NotFound):  # version 0 does not exist (the store raised)
                await client.get("/t/x/v0")
            fifo = tmp_path / "fifo"
            os.mkfifo(fifo)  # a worker thread blocked in open() for ever
            with pytest.raises(CommandError, match="not a regular file or directory"):
                await client.publish(fifo, "/t/fifo")
            with pytest.raises(CommandError, match="not a regular file or directory"):
                await client.publish(tmp_path / "node.sock", "/t/sock")  # a socket

            def unreadable(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied", str(tmp_path / "sub"))

            monkeypatch.setattr(mgmt, "publish", unreadable)  # as root nothing is unreadable
            with pytest.raises(CommandError, match="sub: Permission denied"):
                await client.publish(tmp_path / "x", "/t/y")
            assert (await client.status())["producer"]["interests"] >= 1  # still serving


async def test_the_nodes_own_store_is_not_published(tmp_path: Path) -> None:
    # Importing the store read the pack the import was writing: it grew while read (a 20 MB
    # store took ~900 MB of disk before the import gave up).
    async with node_in_process(tmp_path / "w") as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            for inside in (tmp_path / "w" / "node", tmp_path / "w" / "node" / "refs"):
                with pytest.raises(CommandError, match="the node's own store"):
                    await client.publish(inside, "/t/store")
            (tmp_path / "w" / "node.sock").unlink()  # else the socket alone refuses w/
            with pytest.raises(CommandError, match="the node's own store"):
                await client.publish(tmp_path / "w", "/t/store")
            (tmp_path / "data").mkdir()
            _touch(tmp_path / "data" / "x")
            assert (await client.publish(tmp_path / "data", "/t/data"))["name"] == "/t/data/v1"


async def test_status_fits_one_packet_however_large_the_tables(tmp_path: Path) -> None:
    # 20,000 routes made the status reply larger than a packet: it was dropped and status
    # failed (a LAN neighbour may announce 10,000 routes).
    from ccn.node import STATUS_MAX_ROUTES

    async with node_in_process(tmp_path) as (node, uri), connect(uri) as client:
        for k in range(20_000):
            node.forwarder.add_route(Name.parse(f"/routes/r{k:05d}"), node.producer.face.id, 0)
        with trio.fail_after(10):
            status = await client.status()
        assert len(status["fib"]) == STATUS_MAX_ROUTES and status["fib_total"] > 20_000
        assert status["faces_total"] == len(status["faces"])
        # The routes past the first 2000 are reached by asking for a prefix.
        for k in range(5):
            node.forwarder.add_route(Name.parse(f"/deep/a/x{k}"), node.producer.face.id, 0)
        fib, total = await client.route_table()
        assert len(fib) == STATUS_MAX_ROUTES and total == status["fib_total"] + 5
        fib, total = await client.route_table("/deep/a")
        assert sorted(e["prefix"] for e in fib) == [f"/deep/a/x{k}" for k in range(5)]
        assert total == 5
        fib, total = await client.route_table("/routes/r19999")
        assert [e["prefix"] for e in fib] == ["/routes/r19999"] and total == 1
        # route list pages through all of them, in name order, each once.
        pages = [(fib, total) async for fib, total, _down in client.route_pages()]
        listed = [e["prefix"] for fib, _total in pages for e in fib]
        assert len(pages) == 11 and {total for _fib, total in pages} == {len(listed)}
        assert listed == sorted(listed, key=Name.parse) and len(set(listed)) == len(listed)
        assert len(listed) == status["fib_total"] + 5 and "/routes/r12345" in listed
        under = [e["prefix"] async for fib, _t, _d in client.route_pages("/routes") for e in fib]
        assert under == [f"/routes/r{k:05d}" for k in range(20_000)]


async def test_only_the_first_page_of_route_list_counts_the_routes(tmp_path: Path) -> None:
    # Every page counted the routes under its prefix again (a walk of the whole subtree):
    # O(routes) a page, O(routes^2 / 2000) to list them all. The first page gives the total;
    # a later page does not count (a spy on Fib.count would miss the compiled node's calls).
    async with node_in_process(tmp_path) as (node, uri), connect(uri) as client:
        for k in range(5000):
            node.forwarder.add_route(Name.parse(f"/routes/r{k:05d}"), node.producer.face.id, 0)
        with trio.fail_after(20):
            pages = [(fib, total) async for fib, total, _down in client.route_pages("/routes")]
        assert len(pages) == 3 and {total for _fib, total in pages} == {5000}
        first = await client.command("route-list", {"prefix": "/routes"})
        assert first["fib_total"] == 5000
        second = await client.command(
            "route-list", {"prefix": "/routes", "after": "/routes/r01999"}
        )
        assert "fib_total" not in second and second["fib"][0]["prefix"] == "/routes/r02000"


def test_a_node_in_process_refuses_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    # the check of `ccn node --store` holds for the Python API too
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a ccn store"):
        Node(NodeConfig(store=tmp_path, listen=[]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


async def test_published_names_beyond_the_fib_bound_are_served(tmp_path: Path) -> None:
    # A node with more published names than its FIB's bound used to fail at start ("FIB is
    # full"); its own names are not counted, so they are all served and routes still go in.
    store = tmp_path / "node"  # node_in_process keeps its store there
    src = _touch(tmp_path / "x")
    async with node_in_process(tmp_path) as (node, uri), connect(uri) as client:
        with trio.fail_after(20):
            for i in range(4):
                await client.put(src, f"/own/{i}")
    config = NodeConfig(store=store, listen=[f"unix://{tmp_path}/m.sock"], discovery=False)
    node = Node(config)
    node.forwarder.fib.max_entries = 2  # the management prefix, and one more
    async with (
        node_in_process(tmp_path, "neighbour") as (_other, neighbour),
        trio.open_nursery() as nursery,
    ):
        with trio.fail_after(20):
            (bound,) = await nursery.start(node.run)
            async with connect(str(bound)) as client:
                assert await client.get("/own/3") == b"x"
                await client.route_add(Name.parse("/far"), neighbour)  # up
                with pytest.raises(CommandError, match="FIB is full"):
                    await client.route_add(Name.parse("/farther"), neighbour)
                await client.put(src, "/own/4")
                assert await client.get("/own/4") == b"x"
        nursery.cancel_scope.cancel()


async def _fetch_all(uri: str, names: list[str]) -> tuple[list[bytes], list[str]]:
    async with connect(uri) as client:
        got = [await client.get(n) for n in names]
        return got, list(client.notes)


async def test_a_node_answers_for_versions_it_fetched_when_no_producer_can(
    tmp_path: Path,
) -> None:
    """A fetched /c/doc through B; with B gone, and after A restarts, A still answers /c/doc/v1,
    and /c/doc with the newest version it holds in full (the client says so): v2, not v3, of
    which A saw only the record."""
    v1 = _write(tmp_path / "1.bin", 200_000)
    v2 = _write(tmp_path / "2.bin", 3_000)
    _write(tmp_path / "3.bin", 300_000)
    route = Name.parse("/c")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            b_scope = trio.CancelScope()

            async def run_b(*, task_status: trio.TaskStatus[tuple[str, str]]) -> None:
                with b_scope:
                    async with node_in_process(tmp_path, "B", tcp=True) as (b_node, b_uri):
                        async with connect(b_uri) as producer:
                            await producer.put(tmp_path / "1.bin", "/c/doc")
                            await producer.put(tmp_path / "2.bin", "/c/doc")
                        task_status.started((str(b_node.bound[1]), b_uri))
                        await trio.sleep_forever()

            b_tcp, b_uri = await nursery.start(run_b)
            a: dict[str, Any] = {"routes": [(route, b_tcp)]}
            async with node_in_process(tmp_path, "A", **a) as (a_node, a_uri):
                got, notes = await _fetch_all(a_uri, ["/c/doc/v1", "/c/doc"])
                assert got == [v1, v2] and notes == []
                async with connect(b_uri) as producer, connect(a_uri) as client:
                    await producer.put(tmp_path / "3.bin", "/c/doc")
                    await client.express(Interest(route / "doc" / "v3", 2))  # the record only
                assert a_node.status()["cache"]["versions"] == 3
                assert a_node.status()["cache"]["versions_write_errors"] == 0
                log = a_node.seen.path  # a log that cannot be opened is counted in status
                log.rename(log.with_name("moved"))
                log.mkdir()
                a_node.seen._open()
                assert a_node.status()["cache"]["versions_write_errors"] == 1
                log.rmdir()
                log.with_name("moved").rename(log)
                a_node.seen._open()
                b_scope.cancel()
                await trio.sleep(1.2)  # until the "latest" record A cached is no longer fresh
                async with connect(a_uri) as client:
                    with pytest.raises(NoRoute):  # must-be-fresh is never answered from memory
                        await client.express(
                            Interest(route / "doc", 1, can_be_prefix=True, must_be_fresh=True)
                        )
                    with pytest.raises(NoRoute):  # what it never saw is still no route
                        await client.get("/c/other")
                    with pytest.raises(NoRoute, match=r"^no route to /c/doc/v3 for object \w{16} "):
                        await client.get("/c/doc/v3")  # its record is here, its content is not
                got, notes = await _fetch_all(a_uri, ["/c/doc", "/c/doc/v1"])
                assert got == [v2, v1]
                assert notes == [
                    "no producer of /c/doc could be reached (no route to /c/doc); /c/doc/v2 is "
                    "the newest version the nearest node that has one holds in full"
                ]
            async with node_in_process(tmp_path, "A", **a) as (a_node, a_uri):
                assert a_node.status()["cache"]["versions"] == 3
                got, notes = await _fetch_all(a_uri, ["/c/doc/v1", "/c/doc"])
                assert got == [v1, v2] and len(notes) == 1


async def test_a_store_from_before_seen_versions_answers_for_its_pinned_versions(
    tmp_path: Path,
) -> None:
    """ccn before e6f2f2a kept a version pinned from elsewhere as its objects in the main
    store and a pins line with its id, and had no seen-versions log (cache/versions). After
    the upgrade, with no producer reachable, the node answers for that version as it does for
    one it fetched: by number, and as the newest it holds."""
    content = _write(tmp_path / "doc.bin", 300_000)
    objects, refs = MemoryObjectStore(), MemoryRefStore()
    version = publish(objects, refs, Name.parse("/c/doc"), tmp_path / "doc.bin")
    vid = object_id(encode_object(version))
    store = tmp_path / "A"  # node_in_process keeps its store there
    disk = DiskObjectStore(store)
    with disk.batch() as batch:
        for oid in objects.ids():
            batch.put(objects.get(oid))
    disk.close()
    (store / "refs").mkdir()
    (store / "pins").write_text(f"ccn-pins 1\n/c/doc 1 {vid.hex()}\n")
    assert not (store / "cache").exists()
    with trio.fail_after(30):
        async with node_in_process(tmp_path, "A") as (node, uri):
            assert node.status()["cache"]["versions"] == 1
            got, notes = await _fetch_all(uri, ["/c/doc/v1", "/c/doc"])
            assert got == [content, content]
            assert notes == [
                "no producer of /c/doc could be reached (no route to /c/doc); /c/doc/v1 is "
                "the newest version the nearest node that has one holds in full"
            ]


def test_only_version_records_that_match_their_name_are_remembered(
    tmp_path: Path, version: Callable[..., Version]
) -> None:
    node = Node(NodeConfig(store=tmp_path / "n", listen=[], discovery=False))
    try:
        good = encode_object(version("/pub/doc", 3))
        node._remember_version(7, Data(Name.parse("/pub/doc/v3"), good))
        for name, raw in [
            ("/pub/doc/v4", good),  # another number
            ("/pub/other/v3", good),  # another name
            ("/pub/doc/v5", b"\x00not an object"),
            ("/pub/doc/v6", encode_object(Blob(b"x"))),  # not a version record
            ("/pub/doc", good),  # no version in the name
        ]:
            node._remember_version(7, Data(Name.parse(name), raw))
        node._remember_version(node.producer.face.id, Data(Name.parse("/pub/x/v3"), good))
        assert list(node.seen.newest_first(Name.parse("/pub/doc"))) == [(3, blake3(good).digest())]
        assert len(node.seen) == 1
        assert node.cache_feed.pending(blake3(good).digest()) == good  # kept in the tier too
    finally:
        node.seen.close()
        node.cache.close()
        node.store.close()


async def test_a_start_that_finds_its_new_store_in_use_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two nodes started on one new path at once: the second looked before the first made the
    # store, then lost its lock. Taking back "what it created" removed the first's store.
    import ccn.node as node_module
    from ccn.store.cache import CacheInUse
    from ccn.store.newstore import NewStore

    looked_early = NewStore(tmp_path / "a")
    with trio.fail_after(20):
        async with node_in_process(tmp_path, "a"):
            monkeypatch.setattr(node_module, "NewStore", lambda _store: looked_early)
            second = NodeConfig(store=tmp_path / "a", listen=[f"unix://{tmp_path}/b.sock"])
            with pytest.raises(CacheInUse):
                Node(second)
            assert (tmp_path / "a" / "objects").is_dir()


async def test_start_routes_published_names_with_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A start routes every published name: with 66,000 names the cyclic collector ran 660
    # times meanwhile (0.47 of 1.7 s) for objects none of which are garbage. It is paused
    # for that loop only, and left as it was found, also by a start that fails there.
    import gc

    from ccn.store.refs import DiskRefStore

    async with node_in_process(tmp_path):
        pass
    with DiskRefStore(tmp_path / "node", fsync=False) as refs:
        for k in range(3):
            refs.compare_and_swap(Name.parse(f"/pub/n{k}"), None, 1, bytes([k + 1]) * 32)
    seen: list[bool] = []
    names = DiskRefStore.names

    def listed(refs: DiskRefStore, prefix: Name | None = None) -> list[Name]:
        seen.append(gc.isenabled())  # the start routes each name of this list
        return names(refs, prefix)

    monkeypatch.setattr(DiskRefStore, "names", listed)
    assert gc.isenabled()
    with trio.fail_after(10):
        async with node_in_process(tmp_path) as (node, _uri):
            assert gc.isenabled() and seen[:1] == [False]
            routes = [str(e.prefix) for e in node.forwarder.fib.entries(Name.parse("/pub"))]
            assert routes == ["/pub/n0", "/pub/n1", "/pub/n2"]
        gc.disable()
        try:
            async with node_in_process(tmp_path):
                assert not gc.isenabled()
        finally:
            gc.enable()

        def unreadable(self: DiskRefStore, prefix: Name | None = None) -> list[Name]:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(DiskRefStore, "names", unreadable)
        with pytest.raises(BaseExceptionGroup) as failed:
            async with node_in_process(tmp_path):
                pass
        assert failed.value.subgroup(OSError) is not None
        assert gc.isenabled()


async def test_the_cache_tier_is_bounded_by_cache_max_entries(tmp_path: Path) -> None:
    async with node_in_process(tmp_path, cache_max_entries=7) as (node, uri), connect(uri) as c:
        assert node.cache.max_entries == 7
        with trio.fail_after(10):
            status = await c.status()
        assert status["limits"]["cache_max_entries"] == 7
        assert status["cache"]["max_entries"] == 7


def test_a_node_raises_its_soft_descriptor_limit_to_fit_its_faces(tmp_path: Path) -> None:
    # Started under a soft limit of 64 (the usual 1024 is as short of 2 x max_faces), the node
    # took no 65th connection: 100 clients at once left the next one waiting. It raises the
    # soft limit (within the hard one) to what its faces need, and serves them all.
    with CrowdedNode(tmp_path, 64, 4096, clients=100) as node:
        limits = Path(f"/proc/{node.process.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert row.split()[3:5] == [str(2 * 1024 + DESCRIPTORS_BESIDES_FACES), "4096"]
        status = node.status()  # while the hundred are connected
        assert status.returncode == 0, status.stderr
    assert node.process.returncode == 0 and node.err == ""


async def test_fetching_a_longer_name_does_not_hide_the_latest_of_a_shorter_one(
    tmp_path: Path,
) -> None:
    """The version record of /n/sub, cached as it passed, answered "latest of /n" for its
    second of freshness: `ccn get /n` right after `ccn get /n/sub` failed ("/n not found (only
    names under it...)"), on the producer's own node too."""
    short = tmp_path / "short"
    short.write_bytes(b"the /n file")
    deep = tmp_path / "deep"
    deep.write_bytes(b"the /n/sub file")
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            await client.put(short, "/n")
            await client.put(deep, "/n/sub")
            assert await client.get("/n/sub") == b"the /n/sub file"
            assert await client.get("/n") == b"the /n file"
