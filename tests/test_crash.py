"""SIGKILL a node at random moments during ``ccn put`` and during fetches, 20 times.

After every kill the store (opened directly, the node being dead) passes fsck — every object
intact, every ref pointing to a complete version, the cache tier intact — and a version is either
fully published or absent; the node restarts on the same store and serves every published
version, byte for byte. Bounded: 8 MiB files, random kill points within the operation's span.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

import pytest
import trio

from ccn.client import connect
from ccn.name import Name
from ccn.store.cache import CacheTier
from ccn.store.fsck import fsck
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import DiskRefStore
from ccn.testing import NodeProcess, free_port, start_node, stop_all

pytestmark = pytest.mark.slow

PUT_KILLS = 10
FETCH_KILLS = 10
SIZE = 8 << 20


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
