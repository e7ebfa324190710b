"""The NDN face against an in-process node, over real loopback sockets, with raw NDN packets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing
from ndn.app_support import nfd_mgmt
from ndn.encoding import InterestParam, make_interest
from ndn.security import DigestSha256Signer

from ccn.name import Name
from ccn.ndn import lp
from ccn.ndn import packets as p
from ccn.ndn.tlv import TlvFramer
from ccn.testing import node_in_process


class Peer:
    """A raw NDN app: a TCP connection and a TLV framer."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.framer = TlvFramer()
        self.inbox: list[bytes] = []

    async def send(self, wire: bytes) -> None:
        await self.stream.send_all(wire)

    async def receive(self) -> bytes:
        with trio.fail_after(5):
            while not self.inbox:
                chunk = await self.stream.receive_some(65536)
                assert chunk, "the node closed the connection"
                self.inbox += self.framer.feed(chunk)
        return self.inbox.pop(0)


_peers: list[Peer] = []


@asynccontextmanager
async def ndn_node(tmp_path: Path) -> AsyncIterator[tuple[Any, int]]:
    async with node_in_process(tmp_path, ndn=["tcp://127.0.0.1:0"]) as (node, _uri):
        try:
            yield node, node.bound_ndn[0].port
        finally:
            while _peers:
                await _peers.pop().stream.aclose()


async def peer(port: int) -> Peer:
    app = Peer(await trio.open_tcp_stream("127.0.0.1", port))
    _peers.append(app)
    return app


async def register(app: Peer, prefix: str, maker: Any = nfd_mgmt.make_command) -> dict[str, Any]:
    if maker is nfd_mgmt.make_command:
        wire = make_interest(maker("rib", "register", None, name=prefix), InterestParam(nonce=7))
    else:
        wire = make_interest(
            maker("rib", "register", None, name=prefix),
            InterestParam(nonce=8),
            app_param=b"",
            signer=DigestSha256Signer(for_interest=True),
        )
    interest = p.decode_interest(bytes(wire))
    await app.send(bytes(wire))
    reply = p.decode_data(await app.receive())
    assert reply.name == interest.name and reply.digest_valid()
    assert reply.freshness_ms is not None
    got: dict[str, Any] = nfd_mgmt.parse_response(reply.content)
    return got


async def test_register_relay_byte_for_byte_and_pit_token(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (node, port):
        producer = await peer(port)
        consumer = await peer(port)
        for maker, prefix in ((nfd_mgmt.make_command, "/p"), (nfd_mgmt.make_command_v2, "/r")):
            got = await register(producer, prefix, maker)
            assert got["status_code"] == 200 and got["name"] is not None
        fib = {e["prefix"] for e in node.forwarder.status()["fib"]}
        assert {"/p", "/r"} <= fib
        origins = {e["prefix"]: e["nexthops"][0]["origin"] for e in node.status()["fib"]}
        assert origins["/p"] == origins["/r"] == "ndn app"  # it said "manual"

        interest = p.encode_interest(((8, b"p"), (8, b"x")), nonce=99, lifetime_ms=2000).wire
        await consumer.send(lp.encode_lp(interest, pit_token=b"\x01\x02\x03"))
        assert await producer.receive() == interest  # relayed byte for byte, token dropped
        data = p.encode_data(((8, b"p"), (8, b"x")), b"payload", freshness_ms=1000)
        await producer.send(data)
        back = lp.decode_lp(await consumer.receive())
        assert back.pit_token == b"\x01\x02\x03" and back.fragment == data

        # Cached in the ccn content store as the NDN wire under the mapped name.
        again = p.encode_interest(((8, b"p"), (8, b"x")), nonce=100, must_be_fresh=True).wire
        await consumer.send(again)
        assert await consumer.receive() == data


async def test_routes_go_when_the_app_disconnects(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (node, port):
        app = await peer(port)
        assert (await register(app, "/gone"))["status_code"] == 200
        assert Name.parse("/gone") in {e.prefix for e in node.forwarder.fib.entries()}
        await app.stream.aclose()
        with trio.fail_after(5):
            while Name.parse("/gone") in {e.prefix for e in node.forwarder.fib.entries()}:
                await trio.sleep(0.01)


async def test_registration_is_for_local_apps_and_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    # Commands are not signed: a peer on the network could otherwise fill the FIB (an audit
    # did: 65,536 /localhop registrations, after which publishing and status failed).
    from ccn import ndngw
    from ccn.faces.ndn import NdnFace

    monkeypatch.setattr(ndngw, "MAX_REGISTERED", 2)
    async with ndn_node(tmp_path) as (node, port):
        app = await peer(port)  # loopback: a local app
        codes = [(await register(app, f"/ok{k}"))["status_code"] for k in range(3)]
        assert codes == [200, 200, 403]
        assert (await register(app, "/ok0"))["status_code"] == 200  # again: not a new one
        ours, theirs = trio.testing.memory_stream_pair()
        face = NdnFace(ours, "ndn+tcp://192.0.2.7:6363", local=False, host=node.ndn)
        node.nursery.start_soon(node._serve_face, face)
        remote = Peer(theirs)
        _peers.append(remote)
        assert (await register(remote, "/far"))["status_code"] == 403
        assert Name.parse("/far") not in {e.prefix for e in node.forwarder.fib.entries()}


async def test_no_route_is_a_nack_with_reason(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (_node, port):
        app = await peer(port)
        interest = p.encode_interest(((8, b"nowhere"),), nonce=5).wire
        await app.send(interest)
        got = lp.decode_lp(await app.receive())
        assert got.nack and got.nack_reason == lp.NACK_NO_ROUTE and got.fragment == interest


async def test_bad_command_still_gets_control_parameters(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (_node, port):
        app = await peer(port)
        wire = make_interest(
            nfd_mgmt.make_command("faces", "create", None, uri="tcp://x"), InterestParam(nonce=1)
        )
        await app.send(bytes(wire))
        reply = p.decode_data(await app.receive())
        assert reply.digest_valid()
        assert nfd_mgmt.parse_response(reply.content)["status_code"] == 501
        # NFD's datasets (no parameters) are unsupported too, not malformed (they got 400)
        for k, dataset in enumerate(("status/general", "faces/list", "rib/list"), 2):
            comps = tuple((8, c.encode()) for c in ("localhost", "nfd", *dataset.split("/")))
            await app.send(p.encode_interest(comps, nonce=k, can_be_prefix=True).wire)
            reply = p.decode_data(await app.receive())
            assert nfd_mgmt.parse_response(reply.content)["status_code"] == 501, dataset


async def test_malformed_stream_closes_only_that_face(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (node, port):
        good = await peer(port)
        bad = await peer(port)
        assert (await register(good, "/still"))["status_code"] == 200
        await bad.send(b"\x01\x02garbage")
        with trio.fail_after(5):
            assert await bad.stream.receive_some(100) == b""
        # A malformed packet inside valid framing is dropped; the face stays.
        await good.send(b"\x05\x02\x07\x00")  # an Interest with an empty name
        assert (await register(good, "/still/here"))["status_code"] == 200
        faces = [f for f in node.status()["faces"] if f["remote"].startswith("ndn+")]
        assert len(faces) == 1 and faces[0]["malformed"] == 1


async def test_gateway_metadata_and_segments_of_ccn_content(tmp_path: Path) -> None:
    from ccn.client import connect
    from ccn.ndngw import SEGMENT_SIZE

    content = bytes(range(256)) * 100  # 25600 bytes: 4 segments
    (tmp_path / "f").write_bytes(content)
    async with ndn_node(tmp_path) as (_node, port):
        async with connect(f"unix://{tmp_path}/node.sock") as client:
            await client.put(tmp_path / "f", "/demo/f")
        app = await peer(port)
        meta = p.encode_interest(
            ((8, b"demo"), (8, b"f"), p.METADATA), nonce=1, can_be_prefix=True, must_be_fresh=True
        ).wire
        await app.send(meta)
        reply = p.decode_data(await app.receive())
        assert reply.digest_valid() and reply.name[:3] == ((8, b"demo"), (8, b"f"), p.METADATA)
        assert p.decode_name(reply.content) == ((8, b"demo"), (8, b"f"), p.version(1))
        segments: dict[int, bytes] = {}
        for k in (3, 0, 1, 2):  # exact segment Interests, first one before any layout is known
            name = ((8, b"demo"), (8, b"f"), p.version(1), p.segment(k))
            await app.send(p.encode_interest(name, nonce=10 + k).wire)
            seg = p.decode_data(await app.receive())
            assert seg.name == name and seg.final_block_id == p.segment(3) and seg.digest_valid()
            assert seg.freshness_ms
            segments[k] = seg.content
        assert all(len(segments[k]) == SEGMENT_SIZE for k in (0, 1, 2))
        assert b"".join(segments[k] for k in range(4)) == content
        # A number spelled with a leading zero byte names no segment the gateway serves: it got
        # Data named .../seg=0, which its Interest does not match.
        odd_names = [
            ((8, b"demo"), (8, b"f"), p.version(1), (0x32, b"\0\0")),
            ((8, b"demo"), (8, b"f"), (0x36, b"\0\1"), p.segment(0)),
        ]
        for k, odd in enumerate(odd_names, 20):
            await app.send(p.encode_interest(odd, nonce=k).wire)
            got = lp.decode_lp(await app.receive())
            assert got.nack and got.nack_reason == lp.NACK_NO_ROUTE


async def test_pending_interest_bookkeeping_stays_bounded(monkeypatch: Any) -> None:
    """An NDN Interest's lifetime is capped as the ccn one is, and the expiry queue (trimmed
    from its front) cannot be pinned by one long-lived entry there."""
    from ccn.faces import ndn as ndn_face
    from ccn.packet import MAX_LIFETIME_MS, Nack, NackReason

    monkeypatch.setattr(ndn_face, "MAX_PENDING", 100)

    class Host:
        wires = ndn_face.InterestWires()

        def on_interest(self, face: Any, pending: Any) -> bool:
            return False

        def on_ccn_data(self, *args: Any) -> bool:
            return False

        def on_ccn_nack(self, *args: Any) -> bool:
            return False

    _a, b = trio.testing.memory_stream_pair()
    face = ndn_face.NdnFace(b, "memory://x", local=True, host=Host())

    def deliver(f: Any, interest: Any) -> None:  # no route: Nacked at once, as the node does
        f.send(Nack(interest, NackReason.NO_ROUTE))

    head = p.encode_interest(((8, b"head"),), nonce=1, lifetime_ms=2**64 - 1).wire
    face._take(head, deliver)
    assert face._expiries[0][0] <= trio.current_time() + MAX_LIFETIME_MS / 1000
    for i in range(1000):
        wire = p.encode_interest(((8, b"nx"), (8, b"%d" % i)), nonce=10 + i, lifetime_ms=1).wire
        face._take(wire, deliver)
    assert len(face._expiries) <= 2 * 100 + 1


async def test_gateway_refuses_a_layout_of_too_many_pieces(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Manifests may share sub-manifests: three small objects can describe millions of leaves.
    # Expanding them all stalled the node (7 s, 1 GB in an audit); now it stops at the bound.
    from ccn import ndngw
    from ccn.store.objects import Blob, Kind, Manifest, Pointer, Version, id_of

    monkeypatch.setattr(ndngw, "MAX_LAYOUT_LEAVES", 3 * 8192)
    async with ndn_node(tmp_path) as (node, port):
        blob = Blob(b"x")
        node.store.put_object(blob)
        shared = Manifest(tuple(Pointer(id_of(blob), 1, Kind.BLOB) for _ in range(1024)))
        node.store.put_object(shared)
        for name, fan in (("small", 16), ("huge", 64)):  # 16k leaves, 64k leaves
            root = Manifest(tuple(Pointer(id_of(shared), 1024, Kind.MANIFEST) for _ in range(fan)))
            node.store.put_object(root)
            version = Version(
                Name.parse(f"/{name}"), 1, id_of(root), Kind.MANIFEST, fan * 1024, bytes(32), 1
            )
            node.refs.compare_and_swap(
                Name.parse(f"/{name}"), None, 1, node.store.put_object(version)
            )
            node.on_published(Name.parse(f"/{name}"))
        app = await peer(port)
        for label, served in ((b"small", True), (b"huge", False)):
            seg0 = ((8, label), p.version(1), p.segment(0))
            await app.send(p.encode_interest(seg0, nonce=len(label)).wire)
            got = await app.receive()
            if served:
                assert p.decode_data(got).content == b"x" * ndngw.SEGMENT_SIZE
            else:
                assert lp.decode_lp(got).nack


async def test_answers_for_interests_no_longer_pending_are_counted_as_late() -> None:
    # They were counted as 'dropped', which the node reports as drops.queue_full.
    from ccn.faces import ndn as ndn_face
    from ccn.packet import Data, Interest, Nack, NackReason

    _a, b = trio.testing.memory_stream_pair()
    face = ndn_face.NdnFace(b, "memory://x", local=True, host=None)  # type: ignore[arg-type]
    face.send(Data(Name.parse("/gone"), b"late"))
    face.send(Nack(Interest(Name.parse("/gone"), 7), NackReason.NO_ROUTE))
    assert (face.counters.late, face.counters.dropped) == (2, 0)


async def test_segment_requests_in_hand_per_face_are_bounded(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Each segment request is a task of the gateway until answered or its lifetime ends: past
    MAX_SERVING_PER_FACE of one face's, the next are Nacked "congestion" (a flood towards an
    upstream that does not answer grew them without bound: 100k Interests, 20 s of CPU)."""
    from ccn import ndngw
    from ccn.client import connect

    monkeypatch.setattr(ndngw, "MAX_SERVING_PER_FACE", 2)
    (tmp_path / "f").write_bytes(bytes(range(256)) * 100)
    async with ndn_node(tmp_path) as (node, port):
        async with connect(f"unix://{tmp_path}/node.sock") as client:
            await client.put(tmp_path / "f", "/demo/f")
        app = await peer(port)
        gateway = node.ndn
        real = gateway._serve_segment

        async def slow(*_args: Any) -> None:  # an upstream that does not answer
            await trio.sleep(0.5)

        monkeypatch.setattr(gateway, "_serve_segment", slow)

        def seg(k: int, nonce: int) -> bytes:
            return p.encode_interest(
                ((8, b"demo"), (8, b"f"), p.version(1), p.segment(k)), nonce=nonce
            ).wire

        for k in range(3):
            await app.send(seg(k, 10 + k))
        refused = lp.decode_lp(await app.receive())  # the third, at once
        assert refused.nack and refused.nack_reason == lp.NACK_CONGESTION
        assert node.status()["drops"]["ndn_busy"] == 1 and gateway._serving
        with trio.fail_after(5):
            while gateway._serving:  # the two end; nothing is left counted
                await trio.sleep(0.05)
        monkeypatch.setattr(gateway, "_serve_segment", real)
        await app.send(seg(0, 20))
        answer = p.decode_data(await app.receive())
        assert answer.name[-1] == p.segment(0)


async def test_a_stream_cut_short_inside_an_element_counts_as_malformed(tmp_path: Path) -> None:
    async with ndn_node(tmp_path) as (node, port):
        app = await peer(port)
        wire = p.encode_interest(((8, b"x"),), nonce=1).wire
        await app.send(wire[:-2])
        assert isinstance(app.stream, trio.abc.HalfCloseableStream)
        await app.stream.send_eof()
        with trio.fail_after(5):
            while node.status()["drops"]["malformed"] < 1:
                await trio.sleep(0.02)


async def test_gateway_segments_fit_ndn_packets_under_a_long_name(tmp_path: Path) -> None:
    # Under a name of 7 x 250 bytes an 8000-byte segment made a 9832-byte Data: past NDN's
    # 8800-byte limit, so NFD (and ccn's own NDN face) would close the connection on it.
    # Segments under a long name are shorter; content and FinalBlockId stay consistent.
    from ccn.client import connect
    from ccn.ndngw import SEGMENT_SIZE, segment_size

    comps = tuple((8, bytes([97 + i]) * 250) for i in range(7))
    content = bytes(range(256)) * 80  # 20480 bytes
    (tmp_path / "f").write_bytes(content)
    ccn_name = Name.parse("/" + "/".join(c.decode() for _t, c in comps))
    size = segment_size(ccn_name.with_version(1), len(content))
    assert 1024 <= size < SEGMENT_SIZE
    last = -(-len(content) // size) - 1
    async with ndn_node(tmp_path) as (_node, port):
        async with connect(f"unix://{tmp_path}/node.sock") as client:
            await client.put(tmp_path / "f", ccn_name)
        app = await peer(port)
        got = []
        for k in range(last + 1):
            await app.send(p.encode_interest((*comps, p.version(1), p.segment(k)), nonce=k).wire)
            wire = await app.receive()  # (the framer refuses more than 8800 bytes)
            seg = p.decode_data(wire)
            assert len(wire) <= 8800 and seg.final_block_id == p.segment(last)
            got.append(seg.content)
        assert all(len(c) == size for c in got[:-1]) and b"".join(got) == content


async def test_gateway_metadata_only_for_what_it_serves_and_only_with_can_be_prefix(
    tmp_path: Path,
) -> None:
    # A directory version got metadata pointing at segments that are Nacked (ndnget followed
    # it, then failed); and a metadata Interest without CanBePrefix got Data named
    # .../32=metadata/v=.../seg=0, which it does not match (NFD drops it as unsolicited).
    from ccn.client import connect

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a")
    (tmp_path / "f").write_bytes(b"f" * 100)
    async with ndn_node(tmp_path) as (_node, port):
        async with connect(f"unix://{tmp_path}/node.sock") as client:
            await client.put(tmp_path / "d", "/demo/dir")
            await client.put(tmp_path / "f", "/demo/f")
        app = await peer(port)
        for k, (label, prefix) in enumerate(((b"dir", True), (b"f", False))):
            meta = ((8, b"demo"), (8, label), p.METADATA)
            wire = p.encode_interest(meta, nonce=k, can_be_prefix=prefix, must_be_fresh=True)
            await app.send(wire.wire)
            assert lp.decode_lp(await app.receive()).nack, label
        # (the file's, asked as RDR asks, is still served)
        meta = ((8, b"demo"), (8, b"f"), p.METADATA)
        await app.send(
            p.encode_interest(meta, nonce=9, can_be_prefix=True, must_be_fresh=True).wire
        )
        assert p.decode_name(p.decode_data(await app.receive()).content)[-1] == p.version(1)


def test_interest_wires_are_bounded_in_bytes_and_let_go_when_expired() -> None:
    # 65536 wires of 8.7 KB with 200 ms lifetimes held 570 MB for good: wires were evicted by
    # count only, never by bytes or expiry.
    from ccn.faces.ndn import InterestWires
    from ccn.packet import Interest

    wires = InterestWires(max_entries=1000, max_bytes=100_000)
    big = b"w" * 8700
    for i in range(50):
        wires.put(Interest(Name.parse("/x"), i), big, expiry=1.0, now=0.0)
    assert len(wires) == 11 and wires.bytes == 11 * 8700  # by bytes, oldest first
    assert wires.get(Interest(Name.parse("/x"), 49), 0.5) == big
    assert wires.get(Interest(Name.parse("/x"), 0), 0.5) is None
    wires.put(Interest(Name.parse("/y"), 99), b"s", expiry=5.0, now=2.0)  # the rest expired
    assert len(wires) == 1 and wires.bytes == 1


async def test_an_interest_with_a_parameters_digest_but_no_parameters_is_nacked_not_sent() -> None:
    # Relayed across a ccn link (no NDN wire kept), it was re-encoded with its
    # params-sha256 component and without ApplicationParameters: an invalid NDN Interest.
    from ccn.faces import ndn as ndn_face
    from ccn.ndn.names import to_ccn
    from ccn.packet import Interest, Nack, NackReason

    class Host:
        wires = ndn_face.InterestWires()

    _a, b = trio.testing.memory_stream_pair()
    face = ndn_face.NdnFace(b, "memory://x", local=True, host=Host())  # type: ignore[arg-type]
    got: list[Any] = []
    face._deliver = lambda _f, packet: got.append(packet)
    name = to_ccn(((8, b"app"), (p.C_PARAMS_DIGEST, bytes(32))))
    face.send(Interest(name, 5))
    assert got == [Nack(Interest(name, 5), NackReason.NO_ROUTE)]
    assert face.counters.out_interests == 0
