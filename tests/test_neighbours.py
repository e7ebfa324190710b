"""Configured neighbours of a node in process: dialled at start and by route add, reported
when down, dialled again at once when a route is added to them or an Interest needs them; UDP
ones probed, taken down by the kernel's ICMP errors and brought back by an answer."""

from __future__ import annotations

import contextlib
import socket
from functools import partial
from pathlib import Path

import msgpack
import pytest
import trio

from ccn.client import CommandError, connect
from ccn.errors import NoRoute
from ccn.faces.stream import StreamFace
from ccn.faces.transport import dial
from ccn.faces.uri import FaceUri
from ccn.framing import frame
from ccn.name import Name
from ccn.neighbours import HELD_FAILURE_STANDS, Neighbour
from ccn.testing import free_port, node_in_process


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


async def failed_dials(nb: Neighbour, count: int) -> None:
    """Return when ``count`` more dials (or probes) of ``nb`` have failed."""
    for _ in range(count):
        await nb.attempt.wait()
        assert nb.face is None, "the neighbour came back"


async def test_a_get_right_after_a_producer_restart_dials_it_at_once(tmp_path: Path) -> None:
    # The producer goes away; the consumer's node fails its redials (0.5 s, 1 s, 2 s later,
    # then 4 s) and is 4 s from its next one when the producer is back on the same port. A
    # get at once dials it now and is answered, instead of "no route" until the next redial.
    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    for f in "ab":
        (tmp_path / f).write_bytes(f.encode() * 100)
    with trio.fail_after(30):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            nb = node.neighbours[far]
            async with (
                node_in_process(tmp_path, "far", tcp=True, tcp_port=port) as (_, far_uri),
                connect(far_uri) as producer,
            ):
                for f in "ab":
                    await producer.put(tmp_path / f, f"/far/{f}")
                while nb.face is None:  # the consumer's first dial was refused
                    await trio.sleep(0.05)
                async with connect(uri) as client:
                    assert await client.get("/far/a") == b"a" * 100
            await failed_dials(nb, 4)
            async with (
                node_in_process(tmp_path, "far", tcp=True, tcp_port=port),
                connect(uri) as client,
            ):
                with trio.fail_after(2):  # the next redial is 4 s away
                    assert await client.get("/far/b") == b"b" * 100
            assert node.links.held >= 1


async def test_a_udp_neighbour_is_probed_at_once_for_a_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above for UDP: down at start, probed 0.25 s, 0.5 s and 1 s later and now 2 s from
    # the next probe when a node comes up on its port; a get probes it at once and is answered.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 0.25)
    port = dead_udp_port()
    far = f"udp://127.0.0.1:{port}"
    (tmp_path / "f").write_bytes(b"hello")
    with trio.fail_after(20):
        async with node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri):
            nb = node.neighbours[far]
            assert nb.face is None
            await failed_dials(nb, 3)
            async with (
                node_in_process(tmp_path, "far", udp=True, udp_port=port) as (_, far_uri),
                connect(far_uri) as producer,
                connect(uri) as client,
            ):
                await producer.put(tmp_path / "f", "/far/f")
                with trio.fail_after(1.5):
                    assert await client.get("/far/f") == b"hello"
            assert node.links.held >= 1


async def test_with_nothing_listening_a_get_still_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The neighbour refuses (each dial takes 0.3 s here): gets fail with "no route" once the
    # dial their Interests wait for fails, not after HOLD_WAIT (here 10 s). The Interests of
    # five gets share one dial, and their second Interests (fetch asks again for the newest
    # version seen) take its failure as the answer: no second dial. Beyond MAX_HELD waiting
    # Interests, the next are Nacked at once, without a dial, and counted.
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)  # no redial but the gets'
    monkeypatch.setattr("ccn.neighbours.HOLD_WAIT", 10.0)
    dials: list[FaceUri] = []

    async def slow_dial(uri: FaceUri) -> StreamFace:
        dials.append(uri)
        await trio.sleep(0.3)
        return await dial(uri)

    monkeypatch.setattr("ccn.neighbours.dial", slow_dial)
    far = f"tcp://127.0.0.1:{free_port()}"
    with trio.fail_after(15):
        async with (
            node_in_process(tmp_path, routes=[(Name.parse("/far"), far)]) as (node, uri),
            connect(uri) as client,
        ):
            assert len(dials) == 1 and node.unreachable()

            async def get(name: str) -> None:
                with pytest.raises(NoRoute, match=f"no route to {name}"):
                    await client.get(name)

            with trio.fail_after(2):
                async with trio.open_nursery() as nursery:
                    for i in range(5):
                        nursery.start_soon(get, f"/far/{i}")
            assert node.links.held == 5 and len(dials) == 2  # the gets' dial, one only
            await trio.sleep(HELD_FAILURE_STANDS)
            monkeypatch.setattr("ccn.neighbours.MAX_HELD", 0)
            with trio.fail_after(1):
                await get("/far/x")
            assert node.links.held == 5 and len(dials) == 2
            assert (await client.status())["drops"]["held_overflow"] == 2


async def test_a_neighbour_speaking_another_packet_format_is_told_once_and_backed_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A configured neighbour that accepts the connection, then sends packets of format version
    # 2 (a newer ccn): each connection is closed at its first packet, as before, but the node
    # used to say nothing and redial every 0.5 s for good; now it says why, once, counts the
    # packets as malformed, shows the route as down with that reason, and backs off.
    future = msgpack.packb([2, 1, [b"x"], 1, 4000, 32, 0, None])
    accepted = 0

    async def newer_ccn(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(frame(future))
            await stream.receive_some()  # until the node closes

    port = free_port()
    far = f"tcp://127.0.0.1:{port}"
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), newer_ccn, port)
            routes = [(Name.parse("/far"), far)]
            async with node_in_process(tmp_path, routes=routes) as (node, _uri):
                await trio.sleep(3.2)  # dials at 0, then after 0.5, 1 and 2 s of back-off
                error = (
                    f"{far} does not speak this ccn's protocol (unsupported format version 2 "
                    "(this node speaks 1)): it may run an older or newer ccn "
                    "(docs/protocol.md §2), or not be ccn"
                )
                assert node.unreachable() == [error]
                assert 2 <= accepted <= 4  # redialled every 0.5 s, 7 in 3.2 s
                assert node.status()["drops"]["malformed"] == accepted
            nursery.cancel_scope.cancel()
    err = capsys.readouterr().err
    assert err.count("does not speak") == 1
    assert f"ccn node: {error}; retrying in the background" in err
    assert "reachable again" not in err


async def test_a_get_dials_a_neighbour_speaking_another_format_once_and_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A neighbour known to speak another packet format accepts each dial, then closes on its
    # first packet. A get used to dial it twice (its second Interest had a dial of its own),
    # and each dial "succeeded": the Interest held for it was sent into the connection and
    # lost, and the get waited out every retry ("no answer", ~25 s). Now the node waits for a
    # packet of ours (it probes) before the neighbour's routes go in: one dial, "no route".
    monkeypatch.setattr("ccn.neighbours.REDIAL_DELAY", 60.0)  # no redial but the get's
    future = msgpack.packb([2, 1, [b"x"], 1, 4000, 32, 0, None])
    accepted = 0

    async def newer_ccn(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(frame(future))
            await stream.receive_some()  # until the node closes

    port = free_port()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), newer_ccn, port)
            routes = [(Name.parse("/far"), f"tcp://127.0.0.1:{port}")]
            async with (
                node_in_process(tmp_path, routes=routes) as (node, uri),
                connect(uri) as client,
            ):
                with trio.fail_after(5):
                    while not node.unreachable():  # its first packet closed the connection
                        await trio.sleep(0.01)
                assert accepted == 1
                with trio.fail_after(3), pytest.raises(NoRoute, match="no route to /far/x"):
                    await client.get("/far/x")
                assert accepted == 2
            nursery.cancel_scope.cancel()
