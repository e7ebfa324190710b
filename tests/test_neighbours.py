"""Configured neighbours of a node in process: dialled at start and by route add, reported
when down, dialled again at once when a route is added to them; UDP ones probed, taken down by
the kernel's ICMP errors and brought back by an answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from ccn.client import CommandError, connect
from ccn.errors import NoRoute
from ccn.name import Name
from ccn.testing import node_in_process


def dead_udp_port() -> int:
    """A UDP port on loopback where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


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


async def test_a_udp_neighbour_nobody_listens_for_is_down_and_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at the route's UDP port: the kernel's ICMP error for the probe takes
    # the neighbour down at start, as a refused TCP dial does. Its routes are listed as down,
    # the node says so on stderr, a fetch under them is Nacked "no route" at once (it used to
    # wait out every Interest lifetime, 12 s), and a route added to it fails the same way.
    far = f"udp://127.0.0.1:{dead_udp_port()}"
    refused = f"cannot reach a ccn node at {far}: Connection refused"
    with trio.fail_after(10):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert node.unreachable() == [refused]
            assert f"ccn node: {refused}; retrying in the background" in capsys.readouterr().err
            fib, _total, down = await client.route_state()
            assert down == [{"prefix": "/far", "uri": far, "error": refused}]
            assert "/far" not in {e["prefix"] for e in fib}
            with trio.fail_after(1), pytest.raises(NoRoute):
                await client.get("/far/x")
            with trio.fail_after(2), pytest.raises(CommandError, match="Connection refused"):
                await client.route_add(Name.parse("/also"), far)
            face = next(f for f in await client.faces() if f["remote"] == far)
            assert face["unreachable"] >= 1 and face["unreachable_error"] == "Connection refused"
            assert (await client.status())["drops"]["udp_unreachable"] >= 1


async def test_a_udp_neighbour_that_comes_up_later_is_used_and_its_loss_noticed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Down at start, the neighbour is probed again (0.5 s, doubling): once a node listens
    # there, its answer puts the routes back without a restart. When that node goes away, the
    # ICMP error for the next Interest sent there answers it "no route" at once and takes
    # the routes down again.
    port = dead_udp_port()
    far = f"udp://127.0.0.1:{port}"
    (tmp_path / "f").write_bytes(b"hello")
    with trio.fail_after(20):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert node.unreachable()
            async with (
                node_in_process(tmp_path, "far", udp=True, udp_port=port) as (_far, far_uri),
                connect(far_uri) as producer,
            ):
                await producer.put(tmp_path / "f", "/far/f")
                while node.unreachable():
                    await trio.sleep(0.05)
                assert await client.get("/far/f") == b"hello"
            assert f"ccn node: {far} is reachable again" in capsys.readouterr().err
            with trio.fail_after(1), pytest.raises(NoRoute):
                await client.get("/far/other")
            assert node.unreachable() == [f"cannot reach a ccn node at {far}: Connection refused"]
