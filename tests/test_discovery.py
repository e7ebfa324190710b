"""Nodes in process over UDP faces on loopback: static UDP routes, and discovery's neighbour and
prefix-announcement machinery (hellos handed over directly: multicast is not looped back on one
host, so the multicast path itself is tested across network namespaces in test_netns.py)."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import msgpack
import pytest
import trio

from ccn import codec
from ccn import discovery as disc
from ccn.client import connect
from ccn.config import ConfigError, NodeConfig
from ccn.discovery import Discovery
from ccn.faces.multicast import MulticastFace
from ccn.faces.uri import FaceUri
from ccn.name import Name
from ccn.packet import Data, Interest
from ccn.testing import node_in_process

# Discovery on, but on no interface: nothing leaves this host.
LAN: dict[str, Any] = {"discovery": True, "interfaces": ["ccn-test-none"]}


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.02)


def routes_to(node: Any, prefix: str) -> list[dict[str, Any]]:
    for e in node.status()["fib"]:
        if e["prefix"] == prefix:
            hops: list[dict[str, Any]] = e["nexthops"]
            return hops
    return []


async def test_static_udp_route_fetch_is_byte_identical(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "f.bin").write_bytes(data)
    with trio.fail_after(60):
        async with node_in_process(tmp_path, "p", udp=True) as (p, p_uri):
            udp = next(str(b) for b in p.bound if b.scheme == "udp")
            routes = [(Name.parse("/u"), udp)]
            async with node_in_process(tmp_path, "c", routes=routes) as (c, c_uri):
                async with connect(p_uri) as client:
                    await client.put(tmp_path / "f.bin", "/u/f")
                async with connect(c_uri) as client:
                    await client.fetch("/u/f", tmp_path / "out")
                assert (tmp_path / "out").read_bytes() == data
                hops = routes_to(c, "/u")
                assert hops and hops[0]["origin"].startswith("static udp://")
                faces = {f["id"]: f for f in c.status()["faces"]}
                assert faces[hops[0]["face"]]["persistent"]


#: Whether the nodes of each :func:`lan_pair` hear each other's hellos, by the first node's id.
HEARING: dict[int, dict[str, bool]] = {}


@asynccontextmanager
async def lan_pair(tmp_path: Path) -> AsyncIterator[tuple[Any, str, Any, str]]:
    """Two discovery nodes whose hellos are handed to each other while ``HEARING[id(a)]`` is
    set."""
    async with (
        node_in_process(tmp_path, "a", **LAN) as (a, a_uri),
        node_in_process(tmp_path, "b", **LAN) as (b, b_uri),
        trio.open_nursery() as nursery,
    ):
        hearing = {"on": True}

        async def hellos() -> None:
            while True:
                if hearing["on"]:
                    for x, y in ((a, b), (b, a)):
                        dx, dy = x.discovery, y.discovery
                        uri = f"udp://127.0.0.1:{dx._channel.bound.port}"
                        dy._on_hello({"id": dx.id, "uri": uri, "seq": dx.seq})
                await trio.sleep(0.1)

        nursery.start_soon(hellos)
        HEARING[id(a)] = hearing
        try:
            yield a, a_uri, b, b_uri
        finally:
            del HEARING[id(a)]
            nursery.cancel_scope.cancel()


async def ccn(*args: str) -> str:
    """What the ``ccn`` command prints (a real process)."""
    done = await trio.run_process([sys.executable, "-m", "ccn", *args], capture_stdout=True)
    out: str = done.stdout.decode()
    return out


async def test_route_list_shows_the_link_to_a_neighbour_as_text(tmp_path: Path) -> None:
    # The route to a neighbour's table used to be its raw 8-byte id in the name, printed as
    # /localhop/ccn/nd/routes/V%1A%E6%20%17E%FF%D7; it is the id in hex, as everywhere else.
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, _a_uri, b, b_uri):
            da, db = a.discovery, b.discovery
            assert isinstance(da, Discovery) and isinstance(db, Discovery) and da._channel
            await wait_until(lambda: len(db.neighbours) == 1)
            a_id = da.id.hex()
            a_udp = f"udp://127.0.0.1:{da._channel.bound.port}"
            face = db.neighbours[da.id].face.id
            listed = await ccn("--node", b_uri, "route", "list")
            link = f"/localhop/ccn/nd/routes/{a_id}"
            line = f"{link}  face {face} cost 0 (discovery: link to neighbour {a_id} {a_udp})"
            assert line in listed.splitlines()
            assert "%" not in listed
            status = json.loads(await ccn("--node", b_uri, "status", "--json"))
            assert link in {e["prefix"] for e in status["fib"]}
            assert Name.parse(link) == disc.link_prefix(da.id)


async def test_neighbours_announce_prefixes_and_fetch_works(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    (tmp_path / "f.bin").write_bytes(data)
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, b_uri):
            assert isinstance(a.discovery, Discovery)
            await wait_until(lambda: len(a.discovery.neighbours) == 1)
            async with connect(a_uri) as client:
                await client.put(tmp_path / "f.bin", "/lan/file")
            await wait_until(lambda: bool(routes_to(b, "/lan/file")))
            hop = routes_to(b, "/lan/file")[0]
            assert hop["cost"] == disc.LINK_COST
            assert hop["origin"].startswith(f"discovery: neighbour {a.discovery.id.hex()}")
            # split horizon: A learns nothing back from B
            assert routes_to(a, "/lan/file") == [
                {"face": a.producer.face.id, "cost": 0, "origin": "producer"}
            ]
            async with connect(b_uri) as client:
                await client.fetch("/lan/file", tmp_path / "out")
            assert (tmp_path / "out").read_bytes() == data
            status = b.status()["discovery"]
            assert status["neighbours"][0]["id"] == a.discovery.id.hex()


async def published_and_learned(tmp_path: Path, a_uri: str, b: Any, name: str) -> dict[str, Any]:
    """Publish a small file as ``name`` on A; return B's next hop for it once B learned it."""
    (tmp_path / "f.bin").write_bytes(b"hello")
    async with connect(a_uri) as client:
        await client.put(tmp_path / "f.bin", name)
    await wait_until(lambda: bool(routes_to(b, name)))
    return routes_to(b, name)[0]


async def test_many_own_names_are_announced_shortened_and_still_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 66,000 names made a table too big for one packet: it was dropped, and neighbours learned
    # nothing. More own prefixes than MAX_OWN_ANNOUNCED go out cut to the longest that fit.
    monkeypatch.setattr(disc, "MAX_OWN_ANNOUNCED", 10)
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, b_uri):
            for i in range(100):
                name = Name.parse(f"/lan/set{i % 10}/item{i}")
                a.forwarder.add_route(name, a.producer.face.id, bounded=False)
            await published_and_learned(tmp_path, a_uri, b, "/lan/set0")
            learned = {e["prefix"] for e in b.status()["fib"] if e["prefix"].startswith("/lan")}
            assert learned == {f"/lan/set{k}" for k in range(10)}
            (tmp_path / "g.bin").write_bytes(b"one of many")
            async with connect(a_uri) as client:
                await client.put(tmp_path / "g.bin", "/lan/set3/item3")
            async with connect(b_uri) as client:
                assert await client.get("/lan/set3/item3") == b"one of many"


def test_announced_prefixes_are_cut_to_fit_and_tables_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = [Name.parse(f"/d/s{i % 3}/i{i}/x") for i in range(12)] + [Name.parse("/e")]
    assert disc.announced(names, 13) == sorted(names)
    assert [str(p) for p in disc.announced(names, 4)] == ["/d/s0", "/d/s1", "/d/s2", "/e"]
    assert [str(p) for p in disc.announced(names, 3)] == ["/d", "/e"]
    assert disc.announced([], 3) == []
    table = {Name.parse(f"/n{i}"): i % 2 for i in range(6)}
    assert disc._bounded_table(table) == [
        ["/n0", 0],
        ["/n2", 0],
        ["/n4", 0],
        ["/n1", 1],
        ["/n3", 1],
        ["/n5", 1],
    ]
    monkeypatch.setattr(disc, "MAX_ROUTES", 4)
    assert len(disc._bounded_table(table)) == 4
    monkeypatch.setattr(disc, "MAX_TABLE_BYTES", 15)  # "/nK" + 4 each: 7 bytes a route
    assert disc._bounded_table(table) == [["/n0", 0], ["/n2", 0]]


async def test_silent_neighbour_is_removed_with_its_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disc, "DEAD_INTERVAL", 0.5)
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, _b_uri):
            face_id = (await published_and_learned(tmp_path, a_uri, b, "/lan/x"))["face"]
            HEARING[id(a)]["on"] = False
            await wait_until(lambda: not b.discovery.neighbours)
            assert routes_to(b, "/lan/x") == []
            await wait_until(lambda: face_id not in b.faces)


async def test_a_neighbour_restarted_on_its_port_keeps_its_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node restarted on the same UDP port comes back with a new id, on the face the old id
    # shares; when the old id timed out, removing its routes removed the new id's as well
    # (same prefix, same face), and every get failed "no route" until the next table: 7-10 s
    # (helper-55).
    monkeypatch.setattr(disc, "DEAD_INTERVAL", 1.0)
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, _b_uri):
            face_id = (await published_and_learned(tmp_path, a_uri, b, "/lan/r"))["face"]
            old_id = a.discovery.id
            a.discovery.id = os.urandom(len(old_id))  # the restart, as b hears it
            await wait_until(lambda: a.discovery.id in b.discovery.neighbours)
            new = b.discovery.neighbours[a.discovery.id]
            await wait_until(lambda: Name.parse("/lan/r") in new.routes)
            assert new.face.id == face_id  # one face, shared by both ids
            await wait_until(lambda: old_id not in b.discovery.neighbours)
            assert [h["face"] for h in routes_to(b, "/lan/r")] == [face_id]
            assert routes_to(b, "/lan/r")[0]["origin"].startswith(
                f"discovery: neighbour {a.discovery.id.hex()}"
            )


async def test_withdrawn_prefix_disappears(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, _b_uri):
            await published_and_learned(tmp_path, a_uri, b, "/lan/y")
            a.forwarder.remove_route(Name.parse("/lan/y"), a.producer.face.id)
            await wait_until(lambda: not routes_to(b, "/lan/y"), timeout=20)


async def test_a_discovered_route_removed_by_hand_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It stayed gone: the neighbour's next table matched what discovery thought it had added.
    monkeypatch.setattr(disc, "REFRESH_INTERVAL", 0.3)
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (_a, a_uri, b, _b_uri):
            hop = await published_and_learned(tmp_path, a_uri, b, "/lan/z")
            assert b.forwarder.remove_route(Name.parse("/lan/z"), hop["face"])
            assert routes_to(b, "/lan/z") == []
            await wait_until(lambda: routes_to(b, "/lan/z") == [hop])


async def test_removing_a_static_route_to_a_discovered_peer_keeps_discovery_s_face(
    tmp_path: Path,
) -> None:
    # Both take the peer's one UDP face; removing the static route closed it, and discovery's
    # routes went with it until the neighbour was found again.
    with trio.fail_after(30):
        async with lan_pair(tmp_path) as (a, a_uri, b, _b_uri):
            hop = await published_and_learned(tmp_path, a_uri, b, "/lan/kept")
            peer = f"udp://127.0.0.1:{a.discovery._channel.bound.port}"
            await b.links.add_route(Name.parse("/static"), peer)
            assert routes_to(b, "/static")[0]["face"] == hop["face"]
            assert b.links.remove_route(Name.parse("/static"), peer) == 1
            await trio.sleep(0.3)  # the static route's task ends
            assert routes_to(b, "/static") == []
            assert routes_to(b, "/lan/kept") == [hop]
            assert hop["face"] in b.faces


def test_discovery_can_be_turned_off() -> None:
    assert NodeConfig().discovery is True
    assert NodeConfig.from_mapping({"discovery": False}).discovery is False
    with pytest.raises(ConfigError):
        NodeConfig.from_mapping({"discovery": "no"})
    with pytest.raises(ConfigError):
        NodeConfig.from_mapping({"strategy": "fastest"})
    from ccn.cli import build_parser

    args = build_parser().parse_args(["node", "--no-discovery"])
    assert args.no_discovery


def test_hello_params_round_trip() -> None:
    params = {"id": b"12345678", "uri": "udp://10.0.0.1:1", "seq": 3}
    name = disc._params_name(disc.HELLO, params)
    assert disc._params(name, disc.HELLO) == params
    assert name.is_localhop


async def test_idle_table_check_reads_no_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether to announce a new table is decided by counting changes: building it from the
    # FIB once a second cost an idle node with 66,000 names 60 % of a core.
    with trio.fail_after(30):
        async with node_in_process(tmp_path, "a", **LAN) as (a, a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            (tmp_path / "f.bin").write_bytes(b"announced")
            async with connect(a_uri) as client:
                await client.put(tmp_path / "f.bin", "/lan/w")
            await wait_until(lambda: d.own_prefixes() == [Name.parse("/lan/w")])
            seq = d.seq

            def no_reading(*args: object) -> None:
                raise AssertionError("the idle check read the routes")

            fib = type(a.forwarder.fib)
            with monkeypatch.context() as m:
                m.setattr(fib, "entries", no_reading)
                m.setattr(fib, "prefixes_via", no_reading)
                for _ in range(3):
                    d._maintain(trio.current_time())
            assert d.seq == seq
            a.forwarder.remove_route(Name.parse("/lan/w"), a.producer.face.id)
            d._maintain(trio.current_time())
            assert d.seq == seq + 1 and d.own_prefixes() == []


async def test_idle_discovery_sleeps_until_something_is_due_or_poked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With nothing due for a long time, the loop must not wake at all (it used to wake 20 times
    # a second); a poke (a hello, a finished fetch, a publish) wakes it at once.
    monkeypatch.setattr(disc, "MAX_SLEEP", 60.0)
    monkeypatch.setattr(disc, "HELLO_INTERVAL", 60.0)
    with trio.fail_after(30):
        async with node_in_process(tmp_path, "a", **LAN) as (a, _a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            await wait_until(lambda: d.hellos_sent > 0 or d.wakeups > 1)
            await trio.sleep(0.2)
            before = d.wakeups
            await trio.sleep(1.0)
            assert d.wakeups == before
            with trio.fail_after(1.0):
                d.poke()
                await wait_until(lambda: d.wakeups > before)
            (tmp_path / "f.bin").write_bytes(b"announced")
            async with connect(_a_uri) as client:
                seq = d.seq
                await client.put(tmp_path / "f.bin", "/lan/z")
                await wait_until(lambda: d.seq > seq, timeout=1.0)


@asynccontextmanager
async def _lan_node_and_peer(
    tmp_path: Path,
) -> AsyncIterator[tuple[Any, str, Discovery, trio.socket.SocketType]]:
    """A node with discovery on, and a UDP socket on loopback to play a LAN neighbour with:
    ``(node, its uri, its discovery, the socket)``."""
    async with node_in_process(tmp_path, "a", **LAN) as (a, a_uri):
        d = a.discovery
        assert isinstance(d, Discovery)
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with sock:
            await sock.bind(("127.0.0.1", 0))
            yield a, a_uri, d, sock


@pytest.mark.parametrize("seq", ["x", None, [1], 1.5, float("nan")])
async def test_route_table_with_a_bad_seq_is_ignored_not_fatal(tmp_path: Path, seq: Any) -> None:
    # A LAN peer's route table whose "seq" was not an integer used to raise TypeError in the
    # discovery task and bring the whole node down with a traceback.
    fake_id = b"fakenbr1"
    with trio.fail_after(20):
        async with _lan_node_and_peer(tmp_path) as (a, a_uri, d, sock):
            port = sock.getsockname()[1]
            d._on_hello({"id": fake_id, "uri": f"udp://127.0.0.1:{port}", "seq": 7})
            while True:
                raw, addr = await sock.recvfrom(70_000)
                packet = codec.decode(raw)
                if type(packet) is Interest and disc.ROUTES.is_prefix_of(packet.name):
                    break
            table = {"id": fake_id, "seq": seq, "routes": [["/lan/bad", 0]]}
            content = msgpack.packb(table, use_bin_type=True)
            await sock.sendto(codec.encode(Data(packet.name, content, 0)), addr)
            await wait_until(lambda: bool(routes_to(a, "/lan/bad")))
            nb = d.neighbours[fake_id]
            assert type(nb.fetched_seq) is int
            async with connect(a_uri) as client:
                assert "discovery" in await client.status()


async def test_a_neighbour_that_never_answers_for_its_table_is_told_once_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A node from before 16050ec asks for tables under the raw id and ignores requests under
    # the hex one: the two hear each other's hellos and learn nothing, and nothing said so.
    # Played here by a socket that takes the requests and never answers.
    monkeypatch.setattr(disc, "FETCH_TIMEOUT", 0.2)
    monkeypatch.setattr(disc, "REFRESH_INTERVAL", 0.3)
    old_id = b"oldnode1"
    with trio.fail_after(20):
        async with _lan_node_and_peer(tmp_path) as (_a, _a_uri, d, sock):
            port = sock.getsockname()[1]
            asked = 0
            while asked < disc.UNANSWERED_TOLD + 2:
                d._on_hello({"id": old_id, "uri": f"udp://127.0.0.1:{port}", "seq": 7})
                with trio.move_on_after(0.5):
                    packet = codec.decode((await sock.recvfrom(70_000))[0])
                    if type(packet) is Interest and disc.ROUTES.is_prefix_of(packet.name):
                        asked += 1
            await wait_until(lambda: d.tables_unanswered >= disc.UNANSWERED_TOLD + 1)
            (nb,) = d.status()["neighbours"]
            assert nb["id"] == old_id.hex() and nb["unanswered"] >= disc.UNANSWERED_TOLD + 1
            assert d.status()["tables_unanswered"] >= disc.UNANSWERED_TOLD + 1
    err = capsys.readouterr().err
    assert err.count("has not answered") == 1
    assert (
        f"ccn node: discovery: neighbour {old_id.hex()} at udp://127.0.0.1:{port} has not "
        f"answered {disc.UNANSWERED_TOLD} requests for its route table: it may run a ccn whose "
        "discovery differs (before 16050ec)"
    ) in err


async def test_a_neighbour_gone_from_its_port_is_asked_for_its_table_at_a_bounded_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A neighbour that stopped (or restarted on another port) stays in the table until it has
    # been silent for DEAD_INTERVAL. A request for its table in that time comes back at once as
    # a "no route" Nack (the kernel's port unreachable), and the next request went out at once
    # too: a loop of requests and ICMP errors until the neighbour was dropped, and after three
    # of them each neighbour said the node "may run a ccn whose discovery differs" -- on every
    # restart of a node on a LAN. A Nack is no sign of an older ccn (that one stays silent), and
    # a request that got no table waits before the next is sent.
    gone_id = b"gonenode"
    with trio.fail_after(20):
        async with _lan_node_and_peer(tmp_path) as (_a, _a_uri, d, sock):
            port = sock.getsockname()[1]
            sock.close()  # nobody listens there any more: every request draws an ICMP error
            with trio.move_on_after(disc.DEAD_INTERVAL - 0.5):
                while True:
                    d._on_hello({"id": gone_id, "uri": f"udp://127.0.0.1:{port}", "seq": 7})
                    await trio.sleep(0.25)
            assert 1 <= d.tables_unanswered <= 2, d.tables_unanswered
            (nb,) = d.status()["neighbours"]
            assert nb["unanswered"] == 0  # Nacked, not silent
    assert "has not answered" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("nid", "uri"),
    [
        (b"", "udp://127.0.0.1:7"),  # used to kill the node: /localhop/ccn/nd/routes/<empty>
        (b"123456789", "udp://127.0.0.1:7"),  # a node id is 8 bytes
        (b"12345678", "udp://no-such-host.invalid:7"),  # a name would be resolved on every send
        (b"12345678", "udp://0.0.0.0:7"),
        (b"12345678", "udp://224.0.23.170:56464"),
        (b"12345678", "udp://255.255.255.255:7"),
        (b"12345678", "udp://127.0.0.1:0"),
        (b"12345678", "udp://[::1]:7"),  # IPv6 only from an IPv6 group
        (b"12345678", "udp://[fe80::1%e1]:7"),
    ],
)
async def test_hello_with_a_bad_id_or_address_makes_no_neighbour(
    tmp_path: Path, nid: bytes, uri: str
) -> None:
    with trio.fail_after(20):
        async with node_in_process(tmp_path, "a", **LAN) as (a, a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            hello = disc._params_name(disc.HELLO, {"id": nid, "uri": uri, "seq": 1})
            d._on_packet(Interest(hello, 1, lifetime_ms=200, hop_limit=1))
            await trio.sleep(0.3)  # the discovery loop would fetch the neighbour's table now
            assert d.neighbours == {}
            async with connect(a_uri) as client:
                assert "discovery" in await client.status()


async def test_hellos_naming_ever_new_addresses_keep_a_neighbour_the_same_size(
    tmp_path: Path,
) -> None:
    # A neighbour kept the time of every address a hello had named for it (a node on two
    # segments is heard under two), never pruned: hellos naming new ones grew it without end.
    with trio.fail_after(20):
        async with node_in_process(tmp_path, "a", **LAN) as (a, _a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            nid = b"nbr00001"
            d._on_hello({"id": nid, "uri": "udp://127.0.0.1:1000", "seq": 1})
            nb = d.neighbours[nid]

            def held() -> int:
                return sum(len(v) for v in vars(nb).values() if isinstance(v, dict | list | set))

            before = held()
            for i in range(500):
                d._on_hello({"id": nid, "uri": f"udp://127.0.0.2:{2000 + i}", "seq": 1})
                d._on_hello({"id": nid, "uri": "udp://127.0.0.1:1000", "seq": 1})
            assert d.neighbours[nid] is nb and nb.uri == "udp://127.0.0.1:1000"
            assert held() == before


async def test_neighbour_table_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hellos with fresh ids (one LAN host can send thousands a second) each made a neighbour,
    # a UDP face and a table fetch, without bound until they went silent.
    monkeypatch.setattr(disc, "MAX_NEIGHBOURS", 3)
    with trio.fail_after(20):
        async with node_in_process(tmp_path, "a", **LAN) as (a, _a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            for i in range(10):
                params = {"id": b"nbr%05d" % i, "uri": f"udp://127.0.0.1:{1000 + i}", "seq": 1}
                d._on_hello(params)
            assert len(d.neighbours) == 3
            assert d.status()["neighbours_refused"] == 7
            d._on_hello({"id": b"nbr00000", "uri": "udp://127.0.0.1:1000", "seq": 2})
            assert d.neighbours[b"nbr00000"].seq == 2  # the ones it has are still heard


def _group(family: int, iface: str = "e7") -> MulticastFace:
    """Stands for the multicast face a hello came in on: its family and interface are all
    discovery reads of it."""
    return cast(MulticastFace, SimpleNamespace(family=family, iface=SimpleNamespace(name=iface)))


@pytest.mark.parametrize(
    ("uri", "family", "peer"),
    [
        ("udp://10.0.0.2:6464", socket.AF_INET, "udp://10.0.0.2:6464"),
        ("udp://10.0.0.2:6464", None, "udp://10.0.0.2:6464"),  # not from a group: as before
        ("udp://[fe80::2]:6464", socket.AF_INET6, "udp://[fe80::2%e7]:6464"),
        # the sender's zone names its own interface; the one it came in on is ours
        ("udp://[fe80::2%eth0]:6464", socket.AF_INET6, "udp://[fe80::2%e7]:6464"),
        ("udp://[fe80::2]:6464", socket.AF_INET, None),
        ("udp://[fe80::2]:6464", None, None),
        ("udp://10.0.0.2:6464", socket.AF_INET6, None),
        ("udp://[2001:db8::2]:6464", socket.AF_INET6, None),  # hellos name link-local ones
        ("udp://[ff02::1:cc]:6464", socket.AF_INET6, None),
        ("udp://[fe80::2]:0", socket.AF_INET6, None),
        ("tcp://[fe80::2]:6464", socket.AF_INET6, None),
    ],
)
def test_a_hello_s_address_is_taken_in_the_family_and_zone_it_came_in(
    uri: str, family: int | None, peer: str | None
) -> None:
    arrival = None if family is None else _group(family)
    found = disc._peer(FaceUri.parse(uri), arrival)
    assert (None if found is None else str(found)) == peer


async def test_a_neighbour_heard_in_both_families_is_reached_over_ipv4(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with node_in_process(tmp_path, "a", **LAN) as (a, _a_uri):
            d = a.discovery
            assert isinstance(d, Discovery)
            assert d._channel6 is None  # opened only for an IPv6 group's face
            assert await d._channel_open(socket.AF_INET6) and d._channel6 is not None
            nid, v6, v4 = b"nbr00001", "udp://[fe80::2]:1000", "udp://127.0.0.1:1000"
            d._on_hello({"id": nid, "uri": v6, "seq": 1}, _group(socket.AF_INET6, "lo"))
            nb = d.neighbours[nid]
            assert nb.uri == "udp://[fe80::2%lo]:1000"
            assert nb.face.channel is d._channel6 and nb.face.remote == nb.uri
            d._on_hello({"id": nid, "uri": v4, "seq": 1}, _group(socket.AF_INET))
            assert d.neighbours[nid].uri == v4  # IPv4 preferred: moved over at once
            assert nb.face.closed and d.neighbours[nid].face.channel is d._channel
            d._on_hello({"id": nid, "uri": v6, "seq": 1}, _group(socket.AF_INET6, "lo"))
            assert d.neighbours[nid].uri == v4  # still heard over IPv4: kept there
