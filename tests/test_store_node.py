"""The node's store and cache tier, end to end with in-process nodes on real sockets.

P publishes; C (a consumer's node, small in-memory CS) routes ``/p`` to P over TCP. Bytes that
leave P are counted on P's TCP faces (the link to C).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import ccn.node as node_module
from ccn.client import CommandError, connect
from ccn.name import Name
from ccn.store.cache import CacheTier
from ccn.testing import node_in_process

SIZE = 3 << 20


def _out_bytes(node: Any) -> int:
    return sum(f["out_bytes"] for f in node.status()["faces"] if f["remote"].startswith("tcp"))


@asynccontextmanager
async def _consumer(tmp_path: Path, p: Any, **settings: Any) -> AsyncIterator[tuple[Any, str]]:
    tcp = next(str(b) for b in p.bound if str(b).startswith("tcp"))
    settings.setdefault("cs_bytes", 256 << 10)
    async with node_in_process(tmp_path, "c", routes=[(Name.parse("/p"), tcp)], **settings) as c:
        yield c


@asynccontextmanager
async def _producer(tmp_path: Path, *names: str) -> AsyncIterator[tuple[Any, Path]]:
    """P, publishing one random file of SIZE bytes under each of ``names`` (default ``/p/f``);
    yields P and the file."""
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(SIZE))
    async with node_in_process(tmp_path, "p", tcp=True) as (p, p_uri):
        async with connect(p_uri) as client:
            for name in names or ("/p/f",):
                await client.put(src, name)
        yield p, src


async def _fetch(uri: str, name: str, dest: Path) -> None:
    async with connect(uri) as client:
        await client.fetch(name, dest)


async def test_cache_tier_answers_after_restart_and_across_names(tmp_path: Path) -> None:
    with trio.fail_after(60):
        # the same bytes under another name, too
        async with _producer(tmp_path, "/p/f", "/p/same") as (p, src):
            async with _consumer(tmp_path, p) as (c, c_uri):
                before = _out_bytes(p)
                await _fetch(c_uri, "/p/f/v1", tmp_path / "o1")
                assert _out_bytes(p) - before > SIZE
                await c.cache_feed.flush()
                # what left the small in-memory CS is on disk, the rest still in memory
                assert c.cache.status()["bytes"] + c.forwarder.cs.bytes > SIZE
                before = _out_bytes(p)
                await _fetch(c_uri, "/p/same", tmp_path / "o2")  # cross-name: digest hits
                assert _out_bytes(p) - before < 4096  # only the version record travelled
                assert c.status()["cache"]["hits"] > 0
            async with _consumer(tmp_path, p) as (c, c_uri):  # restarted: empty CS
                before = _out_bytes(p)
                await _fetch(c_uri, "/p/f/v1", tmp_path / "o3")
                assert _out_bytes(p) - before < 4096
                assert c.status()["cache"]["hits"] >= SIZE // (256 << 10)
    for out in ("o1", "o2", "o3"):
        assert (tmp_path / out).read_bytes() == src.read_bytes()


async def test_a_cs_smaller_than_one_object_still_answers_from_store_and_tier(
    tmp_path: Path,
) -> None:
    # Most chunks (up to 256 KiB) are larger than a 16 KiB CS: the store and the tier answer
    # them without caching them in memory, not by going upstream.
    with trio.fail_after(60):
        async with (
            _producer(tmp_path) as (p, src),
            _consumer(tmp_path, p, cs_bytes=16 << 10) as (c, c_uri),
        ):
            await _fetch(c_uri, "/p/f/v1", tmp_path / "o1")
            await c.cache_feed.flush()
            assert c.cache.status()["bytes"] + c.forwarder.cs.bytes > SIZE
            before = _out_bytes(p)
            await _fetch(c_uri, "/p/f/v1", tmp_path / "o2")
            assert _out_bytes(p) - before < 4096
            assert c.forwarder.cs.bytes <= 16 << 10
            async with connect(c_uri) as client:
                await client.put(src, "/c/own")  # the store, through the same 16 KiB
                hits = c.status()["producer"]["data"]
                await client.fetch("/c/own", tmp_path / "o3")
                assert c.status()["producer"]["data"] - hits > SIZE // (256 << 10)
    for out in ("o1", "o2", "o3"):
        assert (tmp_path / out).read_bytes() == src.read_bytes()


async def test_cache_tier_is_written_when_objects_leave_memory_or_at_exit(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with _producer(tmp_path) as (p, src):
            async with _consumer(tmp_path, p, cs_bytes=64 << 20) as (c, c_uri):
                await _fetch(c_uri, "/p/f/v1", tmp_path / "o1")
                await c.cache_feed.flush()
                # everything fits in memory: a victim cache writes nothing yet, but the
                # version record, kept at once with the version it names (ccn/store/seen.py)
                assert c.cache.status()["objects"] == 1 and c.cache.status()["bytes"] < 4096
                assert len(c.seen) == 1
                assert c.forwarder.cs.bytes > SIZE
            async with _consumer(tmp_path, p, cs_bytes=64 << 20) as (c, c_uri):
                # the first run saved its CS on the way out; the tier answers after a restart
                assert c.cache.status()["bytes"] > SIZE
                before = _out_bytes(p)
                await _fetch(c_uri, "/p/f/v1", tmp_path / "o2")
                assert _out_bytes(p) - before < 4096
    for out in ("o1", "o2"):
        assert (tmp_path / out).read_bytes() == src.read_bytes()


async def test_saving_the_cs_at_exit_keeps_to_its_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_module, "SAVE_AT_EXIT_S", 0.0)  # one batch, then out of time
    monkeypatch.setattr(node_module, "SAVE_BATCH_BYTES", 256 << 10)
    with trio.fail_after(60):
        async with (
            _producer(tmp_path) as (p, _src),
            _consumer(tmp_path, p, cs_bytes=64 << 20) as (_c, c_uri),
        ):
            await _fetch(c_uri, "/p/f/v1", tmp_path / "o1")
    tier = CacheTier(tmp_path / "c" / "cache")
    try:
        saved = tier.status()["bytes"]
    finally:
        tier.close()
    assert 256 << 10 <= saved < SIZE


async def test_cache_budget_evicts_but_never_published_content(tmp_path: Path) -> None:
    own = tmp_path / "own.bin"
    own.write_bytes(os.urandom(SIZE))
    with trio.fail_after(60):
        async with (
            _producer(tmp_path) as (p, src),
            _consumer(tmp_path, p, cache_bytes=1 << 20) as (c, c_uri),
            connect(c_uri) as client,
        ):
            await client.put(own, "/c/own")
            await client.fetch("/p/f", tmp_path / "o")
            await c.cache_feed.flush()
            cache = c.status()["cache"]
            assert cache["bytes"] <= 1 << 20 and cache["evictions"] > 0
            report = await client.fsck()
            assert report["count"] == 0
            assert await client.get("/c/own") == own.read_bytes()
    assert (tmp_path / "o").read_bytes() == src.read_bytes()


async def test_log_pin_gc_through_the_node(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    with trio.fail_after(60):
        async with node_in_process(tmp_path, "p", tcp=True) as (p, p_uri):
            async with connect(p_uri) as client:
                for _ in range(2):
                    src.write_bytes(os.urandom(SIZE))
                    await client.put(src, "/p/f")
                log = await client.log("/p/f")
                assert [v["number"] for v in log] == [1, 2]
                assert log[1]["previous"] == log[0]["id"] and log[0]["previous"] is None
                assert log[1]["size"] == SIZE
                assert await client.pin("/p/f/v1") == Name.parse("/p/f/v1")
                assert [v["pinned"] for v in await client.log("/p/f")] == [True, False]
                assert [v["number"] for v in await client.log("/p/f/v2")] == [2]
                with pytest.raises(CommandError, match="/p/f/v7 is not published"):
                    await client.log("/p/f/v7")
                with pytest.raises(CommandError, match="not published on this node"):
                    await client.log("/nothing")
                with pytest.raises(CommandError, match="no such version"):
                    await client.pin("/p/f/v9")
                r = await client.gc(grace=0)
                assert r["count"] == 0  # everything is published
                # the two puts' packs became one pack
                assert (r["packs_merged"], r["packs_written"]) == (2, 1)
                assert len(p.store.packs()) == 1
            async with _consumer(tmp_path, p) as (c, c_uri), connect(c_uri) as client:
                pinned = await client.pin("/p/f")  # fetched through C, then promoted
                assert pinned == Name.parse("/p/f/v2")
                c.forwarder.cs.clear()  # what the CS held when pinned is on disk all the same
                assert c.store.stats().bytes > SIZE
                r = await client.gc(grace=0)
                assert r["count"] == 0
                assert await client.unpin("/p/f/v2") == 1
                with pytest.raises(CommandError, match="is not pinned"):
                    await client.unpin("/p/f/v2")
                dry = await client.gc(dry_run=True, grace=0)
                assert dry["count"] > 0 and c.store.stats().bytes > SIZE
                r = await client.gc(grace=0)
                assert r["count"] == dry["count"] and c.store.stats().objects == 0
                # the cache tier still has the content: a fetch does not go upstream
                before = _out_bytes(p)
                await client.fetch("/p/f/v2", tmp_path / "again")
                assert _out_bytes(p) - before < 4096
    assert (tmp_path / "again").read_bytes() == src.read_bytes()
