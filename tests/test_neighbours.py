"""Configured neighbours of a node in process: dialled at start and by route add, reported
when down, dialled again at once when a route is added to them."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from ccn.client import CommandError, connect
from ccn.name import Name
from ccn.testing import node_in_process


async def test_a_neighbour_that_refuses_is_reported_and_leaves_no_route(tmp_path: Path) -> None:
    # A configured neighbour that refuses the connection: the node starts without waiting out
    # the start-up grace for it and says why it is down; a route added to it fails, naming the
    # refusal, and is not kept.
    far = "tcp://127.0.0.1:1"
    routes = [(Name.parse("/far"), far)]
    with trio.fail_after(10):
        async with node_in_process(tmp_path, routes=routes) as (node, uri), connect(uri) as client:
            assert node.unreachable() == [f"cannot reach a ccn node at {far}: Connection refused"]
            _fib, _total, down = await client.route_state()
            assert down == [{"prefix": "/far", "uri": far, "error": node.unreachable()[0]}]
            assert (await client.route_state("/elsewhere"))[2] == []
            with trio.fail_after(2), pytest.raises(CommandError, match="Connection refused"):
                await client.route_add(Name.parse("/also"), far)  # at once, not after 3 s
            assert set(next(iter(node.neighbours.values())).prefixes) == {Name.parse("/far")}


async def test_a_route_added_to_a_neighbour_that_came_back_dials_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node waits REDIAL_DELAY (here 60 s) before dialling a down neighbour again; a route
    # added meanwhile dials it at once and succeeds, since the neighbour is up by then.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)
    far = f"unix://{tmp_path}/far.sock"
    with trio.fail_after(10):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            assert node.unreachable()
            async with node_in_process(tmp_path, "far"), connect(uri) as client:
                with trio.fail_after(2):
                    await client.route_add(Name.parse("/also"), far)
                assert node.unreachable() == []
                fib = {e["prefix"] for e in await client.routes()}
                assert {"/far", "/also"} <= fib
