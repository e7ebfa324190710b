"""Versions in practice, with real ``ccn`` processes: fetch only what changed, resume after
SIGKILL, concurrent publishers, and the store commands' exit codes.

P publishes (``/p`` is its prefix); C is the consumer's node, routed to P over TCP, with a
small in-memory CS so that what C keeps between fetches is its on-disk cache tier. Bytes that
leave P are read from ``ccn status --json`` (P's TCP faces, and its producer counters).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.client import connect
from ccn.testing import NodeProcess, edit_one_percent, free_port, stop_all, wait_ready

pytestmark = pytest.mark.slow
SIZE = 64 << 20


def _ccn(*args: str) -> list[str]:
    return [sys.executable, "-m", "ccn", *args]


async def _start(label: str, work: Path, args: list[str], config: str = "") -> NodeProcess:
    sock = f"unix://{work}/{label}.sock"
    cmd = _ccn("node", "--store", str(work / label), "--listen", sock, *args)
    if config:
        (work / f"{label}.toml").write_text(config)
        cmd += ["--config", str(work / f"{label}.toml")]
    log = open(work / f"{label}.log", "wb")  # noqa: SIM115 - owned by the child
    proc = await trio.lowlevel.open_process(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    node = NodeProcess(label, sock, proc)
    await wait_ready(node, work)
    return node


@pytest.fixture
async def pc(tmp_path: Path) -> AsyncIterator[tuple[NodeProcess, NodeProcess]]:
    port = free_port()
    nodes: list[NodeProcess] = []
    try:
        with trio.fail_after(30):
            nodes.append(await _start("P", tmp_path, ["--listen", f"tcp://127.0.0.1:{port}"]))
            nodes.append(
                await _start(
                    "C",
                    tmp_path,
                    ["--route", f"/p=tcp://127.0.0.1:{port}"],
                    "cs_bytes = 1048576\n",
                )
            )
        yield nodes[0], nodes[1]
    finally:
        await stop_all(nodes)


async def _run(*args: str, node: NodeProcess) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        _ccn("--node", node.uri, *args), capture_stdout=True, capture_stderr=True, check=False
    )


async def _status_json(node: NodeProcess) -> dict[str, Any]:
    proc = await _run("status", "--json", node=node)
    assert proc.returncode == 0, proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    return status


def _sent(status: dict[str, Any]) -> int:
    """Bytes P sent to other nodes: its TCP faces' out counters."""
    return sum(f["out_bytes"] for f in status["faces"] if f["remote"].startswith("tcp"))


async def test_new_version_costs_the_producer_only_what_changed(
    pc: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    p, c = pc
    v1 = os.urandom(SIZE)
    (tmp_path / "v1.bin").write_bytes(v1)
    v2 = edit_one_percent(v1, seed=7)
    (tmp_path / "v2.bin").write_bytes(v2)
    with trio.fail_after(120):
        assert (await _run("put", str(tmp_path / "v1.bin"), "/p/big", node=p)).returncode == 0
        got = await _run("get", "/p/big", "-o", str(tmp_path / "out1"), node=c)
        assert got.returncode == 0, got.stderr
        assert (await _run("put", str(tmp_path / "v2.bin"), "/p/big", node=p)).returncode == 0
        before = await _status_json(p)
        got = await _run("get", "/p/big", "-o", str(tmp_path / "out2"), node=c)
        assert got.returncode == 0, got.stderr
        after = await _status_json(p)
    assert (tmp_path / "out2").read_bytes() == v2
    sent = _sent(after) - _sent(before)
    served = after["producer"]["bytes"] - before["producer"]["bytes"]  # includes store-served
    assert served <= sent  # everything P answered went over the link, with framing
    assert sent <= 0.05 * SIZE, f"{sent} bytes left the producer for a 1 % edit"


async def test_a_killed_get_resumes_with_only_the_missing_part(
    pc: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    p, c = pc
    data = os.urandom(SIZE)
    (tmp_path / "f.bin").write_bytes(data)
    out = tmp_path / "out"
    with trio.fail_after(120):
        assert (await _run("put", str(tmp_path / "f.bin"), "/p/f", node=p)).returncode == 0
        get = await trio.lowlevel.open_process(
            _ccn("--node", c.uri, "get", "/p/f", "-o", str(out)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with connect(p.uri) as client:
                while _sent(await client.status()) < 0.3 * SIZE:
                    assert get.returncode is None, "the fetch ended before it could be killed"
                    await trio.sleep(0.005)
                os.kill(get.pid, signal.SIGKILL)
                await get.wait()
                assert get.returncode == -signal.SIGKILL
                # Data already requested keeps arriving at C and is kept: wait until P is idle.
                first = _sent(await client.status())
                while True:
                    await trio.sleep(0.3)
                    now = _sent(await client.status())
                    if now == first:
                        break
                    first = now
        finally:
            if get.returncode is None:
                get.kill()
                await get.wait()
        assert first < SIZE
        again = await _run("get", "/p/f", "-o", str(out), node=c)
        assert again.returncode == 0, again.stderr
        total = _sent(await _status_json(p))
    assert out.read_bytes() == data
    resumed = total - first
    assert resumed < SIZE - 0.25 * SIZE  # the part that had arrived was not fetched again
    assert total <= 1.03 * SIZE, f"P sent {total} bytes for a {SIZE} byte file"


async def test_concurrent_puts_and_store_commands(tmp_path: Path) -> None:
    nodes: list[NodeProcess] = []
    try:
        with trio.fail_after(90):
            p = await _start("P", tmp_path, [])
            nodes.append(p)
            files = []
            for i in range(2):
                files.append(tmp_path / f"in{i}.bin")
                files[-1].write_bytes(os.urandom(4 << 20))
            results: list[subprocess.CompletedProcess[bytes]] = []

            async def put(path: Path) -> None:
                results.append(await _run("put", str(path), "/p/same", node=p))

            async with trio.open_nursery() as nursery:
                for f in files:
                    nursery.start_soon(put, f)
            assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
            names = sorted(r.stdout.split()[0].decode() for r in results)
            assert names == ["/p/same/v1", "/p/same/v2"]
            log = await _run("log", "/p/same", node=p)
            lines = log.stdout.decode().splitlines()
            assert [ln.split()[0] for ln in lines] == ["v1", "v2"]
            assert lines[1].split()[-1] == lines[0].split()[5]  # v2's previous is v1's id
            got = set()
            for v in ("v1", "v2"):
                r = await _run("get", f"/p/same/{v}", "-o", str(tmp_path / v), node=p)
                assert r.returncode == 0, r.stderr
                got.add((tmp_path / v).read_bytes())
            assert got == {f.read_bytes() for f in files}

            bad = await _run("log", "/nothing", node=p)
            assert bad.returncode == 1
            assert bad.stderr.decode().splitlines() == [
                "ccn: error: /nothing is not published on this node"
            ]
            assert (await _run("pin", "/p/same/v1", node=p)).stdout == b"pinned /p/same/v1\n"
            assert (await _run("pins", node=p)).stdout == b"/p/same  v1\n"
            # The publisher that lost the race left its first version object unreferenced.
            gc = await _run("gc", "--dry-run", "--grace", "0", node=p)
            listed = gc.stdout.decode().splitlines()
            assert gc.returncode == 0 and listed[-1].startswith(
                f"gc: would remove {len(listed) - 1} "
            )
            assert all(ln.startswith("would remove ") for ln in listed[:-1])
            # the two puts' packs become one pack (with the version the loser built again)
            assert re.search(
                r"; would merge 2 packs(?: and 1 loose object)? \([0-9.]+ MiB\) into 1$", listed[-1]
            ), listed[-1]
            gc = await _run("gc", "--grace", "0", node=p)
            # one line, as the dry run said: the ids are listed by --dry-run and --verbose only
            assert gc.stdout.decode().splitlines() == [
                listed[-1].replace("would remove", "removed").replace("would merge", "merged")
            ]
            assert len(list((tmp_path / "P" / "packs").glob("*.pack"))) == 1
            ok = await _run("fsck", node=p)
            assert ok.returncode == 0 and ok.stdout == b""
            pack = next((tmp_path / "P" / "packs").glob("*.pack"))
            pack.chmod(0o644)
            with open(pack, "r+b") as fh:
                fh.seek(pack.stat().st_size // 2)
                fh.write(b"\xff" * 16)
            for args in (["fsck"], ["fsck", "--repair"]):
                bad = await _run(*args, node=p)
                assert bad.returncode == 1
                out = bad.stdout.decode().splitlines()
                assert out[0].startswith("damaged object ")
                assert any(ln.startswith("/p/same/v") and "damaged" in ln for ln in out)
                assert "Traceback" not in bad.stderr.decode()
            assert "not repaired" in out[0]
    finally:
        await stop_all(nodes)
