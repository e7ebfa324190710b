"""Real ``ccn node`` processes in a chain on loopback: A, A2 -> B -> C."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.client import connect
from ccn.errors import CcnError
from ccn.fetch import fetch_version, resolve
from ccn.testing import NodeProcess, free_port, start_node, stop_all

pytestmark = pytest.mark.slow
SIZE = 50 * 1024 * 1024


async def _status(uri: str) -> dict[str, Any]:
    async with connect(uri) as c:
        return await c.status()


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[dict[str, NodeProcess]]:
    c_port, b_port = free_port(), free_port()
    sock = {k: f"unix://{tmp_path}/{k}.sock" for k in ("A", "A2", "B", "C")}
    nodes: dict[str, NodeProcess] = {}
    try:
        with trio.fail_after(60):
            nodes["C"] = await start_node(
                "C", tmp_path, [sock["C"], f"tcp://127.0.0.1:{c_port}"], [], sock["C"]
            )
            nodes["B"] = await start_node(
                "B",
                tmp_path,
                [sock["B"], f"tcp://127.0.0.1:{b_port}"],
                [f"/c=tcp://127.0.0.1:{c_port}"],
                sock["B"],
            )
            for label in ("A", "A2"):
                nodes[label] = await start_node(
                    label, tmp_path, [sock[label]], [f"/c=tcp://127.0.0.1:{b_port}"], sock[label]
                )
        yield nodes
    finally:
        await stop_all(list(nodes.values()))


async def test_chain_fetch_then_neighbour_cache(
    chain: dict[str, NodeProcess], tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(SIZE))
    with trio.fail_after(120):
        async with connect(chain["C"].uri) as c:
            await c.put(src, "/c/big")
        async with connect(chain["A"].uri) as a:
            await a.fetch("/c/big", tmp_path / "out1")
        assert (tmp_path / "out1").read_bytes() == src.read_bytes()
        c_before = (await _status(chain["C"].uri))["producer"]
        b_before = (await _status(chain["B"].uri))["cs"]["hits"]
        # second consumer node off B: answered by B's cache, C's producer does not move
        proc = await trio.run_process(
            [
                sys.executable,
                "-m",
                "ccn",
                "--node",
                chain["A2"].uri,
                "get",
                "/c/big/v1",
                "-o",
                str(tmp_path / "out2"),
            ],
            capture_stderr=True,
        )
        assert proc.returncode == 0
        assert (tmp_path / "out2").read_bytes() == src.read_bytes()
        c_after = (await _status(chain["C"].uri))["producer"]
        b_after = (await _status(chain["B"].uri))["cs"]["hits"]
    assert c_after == c_before
    assert b_after - b_before >= SIZE // (256 * 1024)  # at least one hit per max-size chunk


async def test_killing_the_producer_mid_fetch_fails_cleanly(
    chain: dict[str, NodeProcess], tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(SIZE))
    with trio.fail_after(120):
        async with connect(chain["C"].uri) as c:
            await c.put(src, "/c/big")
        killed = False

        def progress(done: int, total: int) -> None:
            nonlocal killed
            if not killed and done > total // 5:
                os.kill(chain["C"].process.pid, signal.SIGKILL)
                killed = True

        outcome = "finished"
        async with connect(chain["A"].uri) as a:
            try:
                await fetch_version(a, _name("/c/big"), tmp_path / "out", progress=progress)
            except CcnError as e:
                outcome = str(e)
    assert killed
    # either a clear error, or the caches had it all; never a hang (fail_after above)
    if outcome == "finished":
        assert (tmp_path / "out").read_bytes() == src.read_bytes()
    else:
        assert "no route" in outcome or "not received" in outcome or "not found" in outcome
        assert not (tmp_path / "out").exists()


async def test_a_producer_killed_under_pending_interests_is_felt_at_once(
    chain: dict[str, NodeProcess], tmp_path: Path
) -> None:
    """B's connection to the producer C closes with Interests waiting on it: B dials C again
    for HOLD_WAIT (1 s: a restart), then Nacks them "no route", so the consumer fails (or falls
    back to the newest version seen) well within the Interest lifetime (4 s) it used to wait
    out."""
    small = tmp_path / "small.txt"
    with trio.fail_after(60):
        async with connect(chain["C"].uri) as c:
            small.write_bytes(b"one")
            await c.put(small, "/c/small")
            async with connect(chain["A"].uri) as a:
                # A and B have seen v1 (asked for by its version: its record is never fresh, so
                # the "latest" asked for below is not answered from their caches)
                assert await a.get("/c/small/v1") == b"one"
            small.write_bytes(b"two")
            await c.put(small, "/c/small")  # v2, which nobody has fetched
        idle = (await _status(chain["B"].uri))["pit"]["entries"]
    producer = chain["C"].process.pid
    os.kill(producer, signal.SIGSTOP)  # what reaches it waits there
    got: dict[str, str] = {}
    done = trio.Event()
    async with connect(chain["A"].uri) as a:

        async def ask(label: str, text: str) -> None:
            try:
                versioned, _ = await resolve(a, _name(text))
                got[label] = str(versioned)
            except CcnError as e:
                got[label] = str(e)
            if len(got) == 2:
                done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "v2", "/c/small/v2")
            nursery.start_soon(ask, "latest", "/c/small")
            with trio.fail_after(20):
                while (await _status(chain["B"].uri))["pit"]["entries"] < idle + 2:
                    await trio.sleep(0.02)
            os.kill(producer, signal.SIGKILL)
            with trio.fail_after(2.0):  # Interest lifetime: 4 s
                await done.wait()
        notes = list(a.notes)
    assert got == {"v2": "no route to /c/small/v2", "latest": "/c/small/v1"}
    assert any("no producer of /c/small could be reached (no route" in n for n in notes)
    # Each of the two counts once per connection to C that closes under it. 4 was seen in
    # about 1 run in 3 on a 2-core VM, with the code of stop 26 too (fea8f46); the likeliest
    # cause: B's redial reaches C's listener while C's exit is still closing its sockets (the
    # kernel takes the connection into the backlog, then resets it), so the held Interests go
    # out on it and are felt a second time. Either way the consumer heard at once (above).
    assert (await _status(chain["B"].uri))["forwarder"]["upstream_down"] in (2, 4)


def _name(text: str) -> Any:
    from ccn.name import Name

    return Name.parse(text)


def test_sigterm_stops_a_node_within_a_second(tmp_path: Path) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccn",
            "node",
            "--store",
            str(tmp_path / "s"),
            "--listen",
            f"unix://{tmp_path}/n.sock",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert select.select([proc.stdout], [], [], 5)[0], "not stopped after 5 s"
        assert proc.stdout.readline() == "ccn node: stopped\n"
        # The node's own shutdown is bounded; the interpreter's exit after it is not timed (it
        # takes ~0.1 s of CPU, unloading trio, and passed 1 s on a loaded machine).
        assert time.monotonic() - t0 < 1.0
        assert proc.wait(timeout=5) == 0
