"""Fetching a whole object through a node: ordered, verified output, and a fetching task that
sleeps while answers flow (it wakes only for retransmission timers)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from blake3 import blake3

import ccn.fetch as fetch_module
from ccn.client import Client, connect
from ccn.errors import LocalError, NackError, NoRoute, NotFound, VerificationError
from ccn.faces.base import Face
from ccn.faces.memory import memory_face_pair
from ccn.fetch import INITIAL_RTO, INITIAL_WINDOW, Pipeline, fetch_version, resolve
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.store.objects import Version
from ccn.store.objects import encode as encode_object
from ccn.testing import node_in_process


@asynccontextmanager
async def _published(tmp_path: Path, size: int) -> AsyncIterator[tuple[Client, Path]]:
    """An in-process node with ``size`` random bytes published as ``/f``: a client to it, and
    the file."""
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(size))
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        await client.put(src, "/f")
        yield client, src


async def test_a_lossless_fetch_never_wakes_for_timers(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with _published(tmp_path, 6 << 20) as (client, src):
            start = trio.current_time()
            _name, _version, stats = await fetch_version(client, Name.parse("/f"), tmp_path / "o")
            elapsed = trio.current_time() - start
    assert (tmp_path / "o").read_bytes() == src.read_bytes()
    assert stats.objects > 50 and stats.timeouts == 0
    # Retransmission timers are on trio's clock: a deadline on another clock would either
    # never fire or fire at once, every time round (a busy loop for the whole fetch).
    assert stats.timer_wakeups == 0
    assert stats.idle_wakeups <= elapsed / fetch_module.MIN_RTO + 1


async def test_an_answered_interests_timer_is_no_timeout(autojump_clock: trio.abc.Clock) -> None:
    # Every Interest is answered 0.8 RTO after it left: no timer ever fires. The fetching task
    # went to sleep until the first Interests' timers, which were answered meanwhile: it wakes
    # once for them, finds nothing to retransmit, and sleeps until the next live timer.
    contents = [bytes([i]) * 100 for i in range(3 * INITIAL_WINDOW)]
    ids = [blake3(c).digest() for c in contents]
    by_id = dict(zip(ids, contents, strict=True))
    near, far = memory_face_pair()
    due, pending = trio.open_memory_channel[tuple[float, bytes]](len(ids))

    def producer_gets(_face: Face, packet: Packet) -> None:
        assert type(packet) is Interest and packet.digest is not None
        due.send_nowait((trio.current_time() + 0.8 * INITIAL_RTO, packet.digest))

    async def producer_answers() -> None:
        async for when, digest in pending:
            await trio.sleep_until(when)
            far.send(Data(Name(()), by_id[digest]))

    got: list[int] = []
    client = Client(near)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, producer_gets)
        nursery.start_soon(producer_answers)
        pipe = Pipeline(client, Name.parse("/f"))
        await pipe.fetch_ordered(ids, lambda i, _raw: got.append(i))
        nursery.cancel_scope.cancel()
    assert got == list(range(len(ids)))
    assert pipe.stats.timeouts == 0
    assert pipe.stats.timer_wakeups == 0
    assert pipe.stats.idle_wakeups == 1


async def test_a_timer_earlier_than_the_sleep_is_not_late(autojump_clock: trio.abc.Clock) -> None:
    # The first answer comes after 0.05 s, so the RTO falls from INITIAL_RTO to MIN_RTO and the
    # Interests the window sends then have timers before those the task went to sleep on. The
    # producer ignores every first Interest but that one: the next Interest's retransmission
    # must leave when its own timer fires.
    contents = [bytes([i]) * 100 for i in range(INITIAL_WINDOW + 2)]
    ids = [blake3(c).digest() for c in contents]
    by_id = dict(zip(ids, contents, strict=True))
    near, far = memory_face_pair()
    seen: dict[bytes, list[float]] = {}

    async def answer_later(digest: bytes) -> None:
        await trio.sleep(0.05)
        far.send(Data(Name(()), by_id[digest]))

    async with trio.open_nursery() as nursery:

        def producer_gets(_face: Face, packet: Packet) -> None:
            assert type(packet) is Interest and packet.digest is not None
            times = seen.setdefault(packet.digest, [])
            times.append(trio.current_time())
            if packet.digest == ids[0] or len(times) > 1:
                nursery.start_soon(answer_later, packet.digest)

        client = Client(near)
        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, producer_gets)
        pipe = Pipeline(client, Name.parse("/f"))
        await pipe.fetch_ordered(ids, lambda _i, _raw: None)
        nursery.cancel_scope.cancel()
    start = seen[ids[0]][0]
    first, again = seen[ids[INITIAL_WINDOW]]
    assert first == pytest.approx(start + 0.05)
    assert again == pytest.approx(first + fetch_module.MIN_RTO)
    assert seen[ids[1]][1] == pytest.approx(start + INITIAL_RTO)


#: How a test producer answers the ``n``-th Interest (from 1) for an object: a Nack, its Data
#: that many seconds later, or (None) its Data at once.
Answer = Callable[[bytes, int], NackReason | float | None]


@dataclasses.dataclass
class _Fetched:
    pipe: Pipeline
    #: Interests each object took, and when it was first asked for.
    asked: dict[bytes, int]
    first_asked: dict[bytes, float]
    #: The indexes the sink saw, in order.
    got: list[int]
    #: A "no route" or "not found" that ended the fetch (others propagate).
    error: BaseException | None


async def _fetch_from_producer(
    contents: list[bytes], answer: Answer, sizes: list[int] | None = None
) -> _Fetched:
    """Fetch ``contents`` by id through a pipeline from a producer on a memory face that
    answers as ``answer`` says."""
    ids = [blake3(c).digest() for c in contents]
    by_id = dict(zip(ids, contents, strict=True))
    near, far = memory_face_pair()
    asked: dict[bytes, int] = {}
    first_asked: dict[bytes, float] = {}
    got: list[int] = []
    error: BaseException | None = None

    async def answer_later(digest: bytes, delay: float) -> None:
        await trio.sleep(delay)
        far.send(Data(Name(()), by_id[digest]))

    client = Client(near)
    pipe = Pipeline(client, Name.parse("/f"))
    async with trio.open_nursery() as nursery:

        def producer_gets(_face: Face, packet: Packet) -> None:
            assert type(packet) is Interest and packet.digest is not None
            n = asked[packet.digest] = asked.get(packet.digest, 0) + 1
            assert n <= 50, "asked without end"  # ends a fetch that loops (no time passes)
            first_asked.setdefault(packet.digest, trio.current_time())
            reason = answer(packet.digest, n)
            if isinstance(reason, NackReason):
                far.send(Nack(packet, reason))
            elif reason is None:
                far.send(Data(Name(()), by_id[packet.digest]))
            else:
                nursery.start_soon(answer_later, packet.digest, reason)

        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, producer_gets)
        try:
            await pipe.fetch_ordered(ids, lambda i, _raw: got.append(i), sizes)
        except (NoRoute, NotFound) as e:
            error = e
        nursery.cancel_scope.cancel()
    return _Fetched(pipe, asked, first_asked, got, error)


async def _fetch_held(
    contents: list[bytes], sizes: list[int] | None, hold_first: float
) -> tuple[Pipeline, list[int], dict[bytes, float]]:
    """Fetch ``contents`` from a producer that answers every Interest at once but the first
    object's, which it answers ``hold_first`` seconds late; return the pipeline, the order the
    sink saw, and when each object was first asked for."""
    first = blake3(contents[0]).digest()
    f = await _fetch_from_producer(
        contents, lambda d, _n: hold_first if d == first else None, sizes
    )
    return f.pipe, f.got, f.first_asked


async def test_the_window_reaches_past_a_missing_leaf_by_at_most_reorder_bytes(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Leaves whose manifest says 4 MiB each: while the first is missing, the window may run
    # ahead of it by REORDER_BYTES of content, however large the window has grown.
    contents = [bytes([i]) * 64 for i in range(40)]
    size = 4 << 20
    per_bound = fetch_module.REORDER_BYTES // size
    pipe, got, asked = await _fetch_held(contents, [size] * len(contents), 0.3)
    assert got == list(range(len(contents)))
    assert pipe.stats.timeouts == 0
    start = min(asked.values())
    early = [d for d, t in asked.items() if t < start + 0.3]
    assert len(early) == per_bound


async def test_without_sizes_the_window_reaches_max_window_objects_past_a_missing_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    contents = [i.to_bytes(4, "big") for i in range(fetch_module.MAX_WINDOW + 50)]
    pipe, got, asked = await _fetch_held(contents, None, 0.3)
    assert got == list(range(len(contents)))
    assert pipe.stats.timeouts == 0
    start = min(asked.values())
    assert len([t for t in asked.values() if t < start + 0.3]) == fetch_module.MAX_WINDOW


async def test_a_leaf_larger_than_its_manifest_says_fails_as_it_arrives(
    autojump_clock: trio.abc.Clock,
) -> None:
    contents = [bytes([i]) * 1000 for i in range(8)]
    sizes = [1000] * 8
    sizes[5] = 100  # the manifest understates one leaf: the reorder bound would not hold
    with pytest.RaisesGroup(
        pytest.RaisesExc(VerificationError, match="more than the 100 its manifest says")
    ):
        await _fetch_held(contents, sizes, 0.3)


async def test_a_content_hash_mismatch_leaves_no_partial_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A version record whose content hash does not match what its objects add up to: the fetch
    # fails, and neither the output nor its partial file is left.
    # (The record is doctored as the fetch decodes it: the module's functions call each other
    # directly when compiled, so the decoder, from an uncompiled module, is where to step in.)
    real_decode = fetch_module.decode  # type: ignore[attr-defined]

    def wrong_hash(raw: bytes) -> object:
        obj = real_decode(raw)
        return dataclasses.replace(obj, content_hash=bytes(32)) if type(obj) is Version else obj

    monkeypatch.setattr(fetch_module, "decode", wrong_hash)
    out = tmp_path / "out"
    out.mkdir()
    with trio.fail_after(60):
        async with _published(tmp_path, 1 << 20) as (client, _src):
            with pytest.raises(VerificationError, match="content hash mismatch"):
                await fetch_version(client, Name.parse("/f"), out / "o")
    assert list(out.iterdir()) == []


async def test_a_cancelled_fetch_leaves_no_partial_output_and_a_usable_client(
    tmp_path: Path,
) -> None:
    # What the README promises a program that wraps client.fetch in trio.move_on_after.
    out = tmp_path / "out"
    out.mkdir()
    with trio.fail_after(60):
        async with _published(tmp_path, 16 << 20) as (client, src):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.fetch, "/f", out / "o")
                for _ in range(100_000):  # until it has begun writing
                    if list(out.glob("o.ccn-partial-*")):
                        break
                    await trio.sleep(0)
                assert list(out.glob("o.ccn-partial-*"))
                nursery.cancel_scope.cancel()
            assert list(out.iterdir()) == []
            assert await client.get("/f") == src.read_bytes()


async def test_what_a_killed_fetch_left_does_not_become_part_of_the_next(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    dead = subprocess.Popen(["true"])  # a process that has ended: no fetch of its is alive
    dead.wait()
    stale = tmp_path / f"got.ccn-partial-{dead.pid}-1"  # as a fetch killed outright left it
    stale.mkdir()
    (stale / "stray.bin").write_bytes(b"not published")
    with trio.fail_after(60):
        async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
            await client.put(tree, "/t")
            await fetch_version(client, Name.parse("/t"), tmp_path / "got")
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == ["a.txt"]
    assert not stale.exists()


async def test_a_damaged_object_at_the_source_is_named_in_the_error(tmp_path: Path) -> None:
    # said "/f/v1 not found", although the version was found and only one chunk was not
    with trio.fail_after(60):
        async with _published(tmp_path, 1 << 20) as (client, _src):
            (pack,) = (tmp_path / "node" / "packs").glob("*.pack")
            with open(pack, "r+b") as f:
                f.seek(1 << 19)
                byte = f.read(1)[0]
                f.seek(1 << 19)
                f.write(bytes([byte ^ 0xFF]))
            with pytest.raises(NotFound, match=r"^/f/v1: object [0-9a-f]{16} of its content"):
                await fetch_version(client, Name.parse("/f"), tmp_path / "o")


async def test_a_directory_is_not_written_over_a_dangling_link(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with trio.fail_after(60):
        async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
            await client.put(tree, "/t")
            with pytest.raises(LocalError, match="link already exists"):
                await fetch_version(client, Name.parse("/t"), link)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_write_errors_name_the_output_not_the_partial(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    partial = fetch_module.partial_path(dest)

    def shown(filename: object) -> Path:
        return fetch_module._shown(OSError(13, "Permission denied", filename), partial, dest)

    assert shown(str(partial)) == dest
    assert shown(str(partial / "sub" / "f")) == dest / "sub" / "f"
    assert shown(None) == dest
    assert shown(str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("reason", "newest_seen", "outcome"),
    [
        (NackReason.NO_ROUTE, True, "v2 from a cache"),
        (NackReason.NOT_FOUND, True, NotFound),  # the producer's word is final
        (NackReason.CONGESTION, True, NackError),
        (NackReason.NO_ROUTE, False, NoRoute),
        (None, True, "v2 from a cache"),  # no answer at all
        (NackReason.REFUSED, True, "v2 from a cache"),  # the latest refused on the way
    ],
)
async def test_latest_falls_back_to_the_newest_seen_only_when_no_producer_is_reached(
    autojump_clock: trio.abc.Clock,
    version: Callable[..., Version],
    reason: NackReason | None,
    newest_seen: bool,
    outcome: str | type[Exception],
) -> None:
    record = encode_object(version("/doc", 2))
    asked: list[Interest] = []
    near, far = memory_face_pair()

    def node(_face: Face, packet: Packet) -> None:
        assert type(packet) is Interest
        asked.append(packet)
        if not packet.must_be_fresh:
            far.send(Data(Name.parse("/doc/v2"), record))
        elif reason is not None:
            far.send(Nack(packet, reason))

    client = Client(near)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, node)
        if isinstance(outcome, str):
            got, _v = await resolve(client, Name.parse("/doc"), newest_seen=newest_seen)
            assert got == Name.parse("/doc/v2")
            newest = "/doc/v2 is the newest version the nearest node that has one holds in full"
            if reason == NackReason.REFUSED:
                # the producer answered: "no producer could be reached" was not so (helper-53)
                assert list(client.notes) == [
                    "the latest version of /doc was refused by a node on the way (its trust "
                    f"anchors reject it: forged, or signed by a key not trusted); {newest}"
                ]
            else:
                why = "no route to /doc" if reason else "no answer in time"
                assert list(client.notes) == [
                    f"no producer of /doc could be reached ({why}); {newest}"
                ]
        else:
            with pytest.raises(outcome):
                await resolve(client, Name.parse("/doc"), newest_seen=newest_seen)
            assert not client.notes
            assert all(i.must_be_fresh for i in asked)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("fresh_answer", [True, False])
async def test_a_version_of_a_longer_name_is_not_the_latest(
    autojump_clock: trio.abc.Clock, version: Callable[..., Version], fresh_answer: bool
) -> None:
    # A cache holding only /doc/sub/v1 answers a "latest" Interest for /doc with it: /doc has
    # no version of its own there. With a producer: "not found"; without one: its own error,
    # and no note about a newest version.
    deeper = encode_object(version("/doc/sub", 1))
    near, far = memory_face_pair()

    def node(_face: Face, packet: Packet) -> None:
        assert type(packet) is Interest
        if packet.must_be_fresh and not fresh_answer:
            far.send(Nack(packet, NackReason.NO_ROUTE))
        else:
            far.send(Data(Name.parse("/doc/sub/v1"), deeper))

    client = Client(near)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, node)
        if fresh_answer:
            with pytest.raises(
                NotFound, match=r"^/doc not found \(only names under it, such as /doc/sub\)$"
            ):
                await resolve(client, Name.parse("/doc"))
        else:
            with pytest.raises(NoRoute, match=r"^no route to /doc$"):
                await resolve(client, Name.parse("/doc"))
        assert not client.notes
        nursery.cancel_scope.cancel()


async def _fetch_with_nacks(
    nacks: Callable[[bytes, int], NackReason | None],
) -> tuple[Pipeline, dict[bytes, int], list[int], BaseException | None]:
    """Fetch 6 small objects from a producer that answers the ``n``-th Interest for an object
    (from 1) with a Nack ``nacks(digest, n)``, or, if None, its Data. Returns the pipeline,
    the Interests each object took, what was written, and the error."""
    f = await _fetch_from_producer([bytes([i]) * 100 for i in range(6)], nacks)
    return f.pipe, f.asked, f.got, f.error


async def test_an_object_nacked_no_route_mid_fetch_is_asked_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A router on the way went down: what it had pending came back "no route" before the
    # routes moved to another (or a neighbour was being redialled). One such Nack used to end
    # the whole fetch; the object is asked again at its retransmission timer.
    start = trio.current_time()
    pipe, asked, got, error = await _fetch_with_nacks(
        lambda _d, n: NackReason.NO_ROUTE if n <= 2 else None
    )
    assert error is None and got == list(range(6))
    assert set(asked.values()) == {3}
    assert pipe.stats.no_route_nacks == 12
    assert trio.current_time() - start < 2 * INITIAL_RTO + 4 * INITIAL_RTO


async def test_a_producer_gone_for_good_still_fails_the_fetch_with_no_route(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    _pipe, asked, got, error = await _fetch_with_nacks(lambda _d, _n: NackReason.NO_ROUTE)
    assert isinstance(error, NoRoute) and "of its content" in str(error)
    assert got == [] and max(asked.values()) == fetch_module.NO_ROUTE_RETRIES + 1
    assert trio.current_time() - start < 8  # RTO, then twice that: seconds, not the lifetime


async def test_congestion_nacks_without_end_fail_the_fetch_after_its_retries(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Each congestion (or duplicate) Nack was answered by asking again at once, without bound:
    # a node that Nacks every Interest had the fetch loop for good.
    _pipe, asked, _got, error = await _fetch_with_nacks(lambda _d, _n: NackReason.CONGESTION)
    assert isinstance(error, NotFound) and "the network answered congestion" in str(error)
    assert max(asked.values()) == fetch_module.MAX_RETRIES + 1


async def test_duplicate_nacks_without_end_say_the_requests_came_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    # "the network answered duplicate" said nothing a user could act on: it is a routing loop.
    _pipe, asked, _got, error = await _fetch_with_nacks(lambda _d, _n: NackReason.DUPLICATE)
    assert isinstance(error, NotFound)
    assert "came back to a node it had passed: a routing loop?" in str(error)
    assert max(asked.values()) == fetch_module.MAX_RETRIES + 1


async def test_a_window_lost_at_once_backs_the_rto_off_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Every first Interest is lost. The RTO used to double once per Interest timed out: a
    # window of four lost together put it at 16x (8 s, the cap); once per loss event (at most
    # once an RTT, with the window's decrease), as ndncatchunks does, it is 2x.
    contents = [bytes([i]) * 100 for i in range(INITIAL_WINDOW)]
    ids = [blake3(c).digest() for c in contents]
    by_id = dict(zip(ids, contents, strict=True))
    near, far = memory_face_pair()
    seen: set[bytes] = set()

    def producer_gets(_face: Face, packet: Packet) -> None:
        assert type(packet) is Interest and packet.digest is not None
        if packet.digest in seen:
            far.send(Data(Name(()), by_id[packet.digest]))
        seen.add(packet.digest)

    client = Client(near)
    pipe = Pipeline(client, Name.parse("/f"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(near.run, client._deliver)
        nursery.start_soon(far.run, producer_gets)
        await pipe.fetch_ordered(ids, lambda _i, _raw: None)
        nursery.cancel_scope.cancel()
    assert pipe.stats.timeouts == INITIAL_WINDOW
    assert pipe.rto == 2 * INITIAL_RTO
