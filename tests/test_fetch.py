"""Fetching a whole object through a node: ordered, verified output, and a fetching task that
sleeps while answers flow (it wakes only for retransmission timers)."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from ccn.client import connect
from ccn.fetch import fetch_version
from ccn.name import Name
from ccn.testing import node_in_process


async def test_a_lossless_fetch_never_wakes_for_timers(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(6 << 20))
    with trio.fail_after(60):
        async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
            await client.put(src, "/f")
            _name, _version, stats = await fetch_version(client, Name.parse("/f"), tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == src.read_bytes()
    assert stats.objects > 50 and stats.timeouts == 0
    # Retransmission timers are on trio's clock: a deadline on another clock would either
    # never fire or fire at once, every time round (a busy loop for the whole fetch).
    assert stats.timer_wakeups == 0
