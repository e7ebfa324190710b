from __future__ import annotations

import errno
import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from ccn.client import Client, CommandError, connect
from ccn.errors import ConnectError, NoAnswer, NoRoute
from ccn.faces.liveness import PROBE
from ccn.mgmt_proto import encode_reply, parse_command
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.testing import RecordingFace, node_in_process


def test_answered_interests_leave_no_registration_behind() -> None:
    face = RecordingFace()
    client = Client(face)
    got: list[Data | Nack] = []
    contents = [os.urandom(64) for _ in range(3)]
    for i, content in enumerate(contents):
        data = Data(ROOT, content)
        client.send(Interest(Name.parse("/loc"), i, digest=data.digest), got.append)
    named = Data(Name.parse("/a/b"), b"x")
    client.send(Interest(named.name, 10), got.append)
    nacked = Interest(Name.parse("/c"), 11)
    client.send(nacked, got.append)
    for content in contents:
        client._deliver(face, Data(ROOT, content))
    client._deliver(face, named)
    client._deliver(face, Nack(nacked, NackReason.NO_ROUTE))
    assert len(got) == 5
    assert not client.pending.by_digest
    assert not client.pending.by_name
    assert not client.pending.by_nonce


def test_one_data_answers_every_interest_outstanding_under_its_key() -> None:
    # The node's PIT aggregates Interests with the same name (or digest) from one face and
    # sends one Data; the client kept one registration per key, so of two tasks fetching the
    # same name only the last was answered and the other timed out.
    face = RecordingFace()
    client = Client(face)
    got: list[tuple[str, Name]] = []

    def answered(task: str, packet: Data | Nack) -> None:
        assert type(packet) is Data
        got.append((task, packet.name))

    blob = Data(ROOT, b"chunk")
    named = Data(Name.parse("/a/v1"), b"x")
    latest = Data(Name.parse("/b/v2"), b"y")
    for n, task in enumerate(("one", "two")):
        answer = partial(answered, task)
        client.send(Interest(Name.parse("/loc"), n * 10 + 1, digest=blob.digest), answer)
        client.send(Interest(named.name, n * 10 + 2), answer)
        client.send(Interest(Name.parse("/b"), n * 10 + 3, can_be_prefix=True), answer)
    forgotten = Interest(Name.parse("/gone"), 7)
    client.send(forgotten, partial(answered, "forgotten"))
    client.send(Interest(Name.parse("/gone"), 8), partial(answered, "kept"))
    client.forget(forgotten)
    for data in (blob, named, latest, Data(Name.parse("/gone"), b"z")):
        client._deliver(face, data)
    assert sorted(got) == sorted(
        [(task, d.name) for task in ("one", "two") for d in (blob, named, latest)]
        + [("kept", Name.parse("/gone"))]
    )
    pending = client.pending
    assert not pending.by_digest and not pending.by_name and not pending.by_prefix
    assert not pending.by_nonce


async def test_calls_cancelled_by_the_caller_leave_no_registration_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A get or express under the caller's move_on_after, cancelled while its Interest was out,
    # left its registration (and the answer closure) in the client's tables: one more for every
    # cancelled call, for as long as the connection lived (a soak run of a long-lived client).
    face = RecordingFace()
    client = Client(face)
    for i in range(50):
        with trio.move_on_after(0.5):
            if i % 3 == 0:
                await client.get(f"/latest/{i}")  # can-be-prefix: by_prefix
            elif i % 3 == 1:
                await client.express(Interest(Name.parse(f"/exact/{i}"), i), retries=2)
            else:
                digest = os.urandom(32)
                await client.express(Interest(Name.parse("/loc"), i, digest=digest))
    assert len(face.sent) == 50  # each call was cut while its first Interest was out
    pending = client.pending
    assert not pending.by_name and not pending.by_prefix and not pending.by_digest
    assert not pending.by_nonce


async def test_tasks_fetching_the_same_name_on_one_connection_all_get_it(tmp_path: Path) -> None:
    content = os.urandom(1 << 20)  # several chunks: their Interests carry digests
    (tmp_path / "f").write_bytes(content)
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        await client.put(tmp_path / "f", "/same")
        got: list[bytes] = []

        async def get(name: str) -> None:
            got.append(await client.get(name))

        with trio.fail_after(5):  # each took 4 s per lost answer, or failed with NoAnswer
            async with trio.open_nursery() as nursery:
                for name in ("/same", "/same", "/same/v1", "/same/v1"):
                    nursery.start_soon(get, name)
                for i in range(2):
                    nursery.start_soon(client.fetch, "/same/v1", tmp_path / f"out{i}")
        assert got == [content] * 4
        assert [(tmp_path / f"out{i}").read_bytes() for i in range(2)] == [content] * 2


async def test_a_command_nobody_answers_names_the_address(autojump_clock: trio.abc.Clock) -> None:
    # '--node tcp://<an HTTP server> status' said '/localhost/ccn/status: no answer (timed out)'
    client = Client(RecordingFace())
    with pytest.raises(NoAnswer, match=r"^test did not answer 'status' within 10 s \(is a ccn"):
        await client.status()
    # Another host's node drops commands without a word: say so, not "is a node listening?";
    # so does this host's node reached at its LAN address (said "run this there" to a user
    # who was there)
    remote = Client(RecordingFace(local=False))
    with pytest.raises(NoAnswer, match=r"\(a node takes commands only from its own host, ") as e:
        await remote.status()
    assert "over its Unix socket or a loopback address (tcp://127.0.0.1:PORT" in str(e.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, p: c.put(p, "/x"),
        lambda c, p: c.gc(),
        lambda c, p: c.fsck(),
    ],
    ids=["put", "gc", "fsck"],
)
async def test_a_long_command_to_a_silent_peer_fails_in_seconds_not_minutes(
    autojump_clock: trio.abc.Clock, tmp_path: Any, call: Any
) -> None:
    # 'ccn --node tcp://<an HTTP server> put f /x' waited for the 600 s publish timeout
    (tmp_path / "f").write_bytes(b"x")
    client = Client(RecordingFace())
    start = trio.current_time()
    with pytest.raises(NoAnswer, match=r"^test did not answer 'ping' within 10 s"):
        await call(client, tmp_path / "f")
    assert trio.current_time() - start < 11


async def test_a_peer_that_is_not_a_ccn_node_is_named_as_such() -> None:
    # `--node tcp://host:80` (or a node's NDN port) used to say "the node closed the
    # connection", as if a ccn node had hung up.
    async def http_server(stream: trio.SocketStream) -> None:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await trio.sleep(5)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, host="127.0.0.1"), http_server, 0
            )
            port = listeners[0].socket.getsockname()[1]
            uri = f"tcp://127.0.0.1:{port}"
            expected = pytest.RaisesExc(ConnectError, match=f"^{uri} is not a ccn node ")
            with expected:
                async with connect(uri) as client:
                    await client.status()
            nursery.cancel_scope.cancel()


async def test_each_long_command_is_one_of_its_own(tmp_path: Any) -> None:
    # Two identical 'ccn gc' (two users, or one run again right after a Ctrl-C) had one name:
    # the node's PIT aggregated them, and one could get the other's "gc stopped".
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            sent: list[Interest] = []
            real_send = client.send

            def recording(interest: Interest, answer: Any) -> None:
                sent.append(interest)
                real_send(interest, answer)

            client.send = recording  # type: ignore[method-assign]
            for _ in range(2):
                assert (await client.gc(dry_run=True))["dry_run"] is True
            gcs = [i.name for i in sent if parse_command(i.name)[0] == "gc"]
            assert len(gcs) == 2 and gcs[0] != gcs[1]
            assert all(parse_command(n)[1]["dry_run"] is True for n in gcs)


async def test_an_error_in_the_block_comes_out_of_connect_as_raised(tmp_path: Any) -> None:
    # connect() runs the face in a nursery, which wrapped the block's error in an
    # ExceptionGroup: `except NoRoute` around `async with connect()` caught nothing.
    async with node_in_process(tmp_path) as (_node, uri):
        with pytest.raises(NoRoute, match=r"^no route to /nothing/here$") as caught:
            async with connect(uri) as client:
                await client.get("/nothing/here")
        assert not isinstance(caught.value.__context__, BaseExceptionGroup)
        with pytest.raises(KeyError):  # not a ccn error: the same
            async with connect(uri) as client:
                raise KeyError("x")


async def test_an_error_as_the_callers_deadline_passes_comes_out_as_raised(tmp_path: Any) -> None:
    # A get under move_on_after whose Nack came as the deadline passed: the block raised
    # NoRoute while the connection's own task was cancelled, and the caller got an
    # ExceptionGroup(NoRoute) out of the cancel scope instead of NoRoute (a soak run's
    # short-lived clients, one in a few hundred).
    async with node_in_process(tmp_path) as (_node, uri):
        for _ in range(3):
            with pytest.raises(NoRoute), trio.CancelScope() as scope:
                async with connect(uri) as client:
                    try:
                        await client.get("/nothing/here")
                    finally:
                        scope.cancel()  # the deadline, at the worst moment


async def test_names_may_use_ndn_spellings(tmp_path: Any) -> None:
    (tmp_path / "f").write_bytes(b"one")
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            assert await client.put(tmp_path / "f", "/ndn/spelled") == Name.parse("/ndn/spelled/v1")
            assert await client.get("/ndn/spelled/v=1") == b"one"
            assert [v["number"] for v in await client.log("/ndn/spelled/v=1")] == [1]
            with pytest.raises(NoRoute, match=r"^no route to /elsewhere/v=1/seg=0$"):
                await client.get("/elsewhere/v=1/seg=0")


async def test_a_pin_that_fails_because_the_cache_tier_cannot_write_says_so(
    tmp_path: Path,
) -> None:
    # Pinning a version published elsewhere fetches it through the node and copies it from
    # the cache tier. With the tier's disk full the copy found objects missing, and the pin
    # said only "N objects did not reach the node", which sent users looking at the network.
    (tmp_path / "f").write_bytes(os.urandom(3 << 20))
    async with node_in_process(tmp_path, "far") as (_far, far_uri):
        routes = [(Name.parse("/far"), far_uri)]
        async with node_in_process(tmp_path, "near", routes=routes, cs_bytes=1 << 20) as (
            near,
            near_uri,
        ):

            def full(*_args: Any, **_kwargs: Any) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            near.cache.add_many = full  # every write of the tier fails, as on a full disk
            async with connect(far_uri) as far, connect(near_uri) as client:
                with trio.fail_after(30):
                    await far.publish(tmp_path / "f", "/far/f")
                    with pytest.raises(CommandError) as e:
                        await client.pin("/far/f/v1")
        assert "objects did not reach the node; its cache tier could not write them" in str(e.value)


async def test_listing_a_node_that_does_not_page_notes_the_names_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node from before paging answers ``list`` with its first 2000 names and their total,
    # and no ``more``: the client cannot ask for the rest, and says so instead of silently
    # listing part of them.
    client = Client(RecordingFace())
    asked: list[dict[str, Any]] = []

    async def old_node(verb: str, params: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        asked.append(dict(params))
        names = [{"name": f"/a/n{i:04}", "versions": [1]} for i in range(2000)]
        return {"names": names, "names_total": 2500}

    monkeypatch.setattr(client, "command", old_node)
    listed = await client.ls("/a")
    assert len(listed) == 2000 and len(asked) == 1
    assert list(client.notes) == [
        "the node listed 2,000 of 2,500 names under /a (it runs an older ccn, which does not "
        "page: ccn ls PREFIX lists fewer)"
    ]


def test_a_duplicate_nack_is_told_as_a_likely_routing_loop() -> None:
    """A TCP loop of routes (A -> B -> A) ended a get with "network answered duplicate"."""
    from ccn.client import nack_error

    name = Name.parse("/x/nothing")
    error = nack_error(Nack(Interest(name, 1), NackReason.DUPLICATE), name)
    assert str(error).startswith("/x/nothing: the request came back to a node it had passed")
    assert "routing loop" in str(error)
    other = nack_error(Nack(Interest(name, 1), NackReason.CONGESTION), name)
    assert str(other) == "/x/nothing: network answered congestion"


async def test_a_put_cancelled_by_its_caller_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # move_on_after around put reported the cancellation, and the node published the version
    # a moment later all the same (it stopped a put only when its client's connection closed):
    # a caller who retried got v1 and v2 of one file. Each block of the import is slowed here,
    # so that the cancellation comes while the node imports.
    import time

    from ccn.store import files

    check = files._check_stop

    def slow_check(stop: Any) -> None:
        time.sleep(0.05)
        check(stop)

    monkeypatch.setattr(files, "_check_stop", slow_check)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(24 << 20))
    async with node_in_process(tmp_path / "n") as (node, uri), connect(uri) as client:
        with trio.fail_after(30):
            with trio.move_on_after(0.2) as scope:
                await client.put(big, "/t/cancelled")
            assert scope.cancelled_caught
            await trio.sleep(1.5)  # the import notices at its next block
            assert node.refs.latest(Name.parse("/t/cancelled")) is None
            monkeypatch.setattr(files, "_check_stop", check)
            assert await client.put(big, "/t/cancelled") == Name.parse("/t/cancelled/v1")


async def test_fetch_to_a_path_ending_in_a_slash_wants_a_directory(tmp_path: Path) -> None:
    # Client.fetch dropped the slash: a file version replaced the file `hello.txt` named by
    # 'hello.txt/', and 'newdir/' became a file (the CLI's -o refused both).
    from ccn.errors import LocalError

    (tmp_path / "f").write_bytes(b"content")
    (tmp_path / "hello.txt").write_bytes(b"mine")
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        await client.put(tmp_path / "f", "/t/f")
        for target in ("hello.txt/", "newdir/"):
            with pytest.raises(LocalError, match="names a directory"):
                await client.fetch("/t/f", f"{tmp_path}/{target}")
        assert (tmp_path / "hello.txt").read_bytes() == b"mine"
        assert not (tmp_path / "newdir").exists()
        assert await client.fetch("/t/f", tmp_path / "out") == Name.parse("/t/f/v1")


async def test_a_name_of_the_wrong_type_is_an_invalid_name(tmp_path: Path) -> None:
    # put("f", 5) raised AttributeError ('int' object has no attribute 'version').
    from ccn.errors import InvalidName

    (tmp_path / "f").write_bytes(b"x")
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        wrong: Any = 5
        for call in (partial(client.put, tmp_path / "f", wrong), partial(client.get, wrong)):
            with pytest.raises(InvalidName, match=r"a name is a str or a ccn\.Name, not int"):
                await call()


class FreezingNode(RecordingFace):
    """Plays a node that answers pings and the first ``probes`` probes, and then nothing
    (stopped: its connection stays open). What it sends counts as heard, as a real face's
    decoded packets do."""

    def __init__(self, probes: int) -> None:
        super().__init__()
        self.probes = probes
        self.deliver: Any = None
        self._gone = trio.Event()

    def send(self, packet: Any) -> None:
        super().send(packet)
        if not isinstance(packet, Interest) or self.probes < 0:
            return
        if packet.name == PROBE:
            self.probes -= 1
            if self.probes >= 0:
                self.counters.in_nacks += 1
                self.deliver(self, Nack(packet, NackReason.NO_ROUTE))
        elif parse_command(packet.name)[0] == "ping":
            self.counters.in_data += 1
            self.deliver(self, Data(packet.name, encode_reply({"ok": True})))

    async def run(self, deliver: Any) -> None:
        await self._gone.wait()

    def close(self) -> None:
        super().close()
        self._gone.set()


async def test_a_long_command_to_a_node_that_stops_answering_fails_in_seconds(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    # A put to a node that was stopped (kill -STOP) once the command had begun waited for
    # LONG_COMMAND_TIMEOUT, 10 minutes. The connection is probed once it has been quiet for
    # QUIET with the command outstanding; a probe unanswered for QUIET closes it.
    from ccn.client import QUIET

    (tmp_path / "f").write_bytes(b"x")
    face = FreezingNode(probes=2)
    client = Client(face)
    face.deliver = client._deliver
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.serve)
        start = trio.current_time()
        with pytest.raises(
            ConnectError, match=r"^test stopped answering \(no answer to a probe within 3 s"
        ):
            await client.put(tmp_path / "f", "/x")
        took = trio.current_time() - start
    # quiet, probe (answered), quiet, probe (answered), quiet, probe left unanswered
    assert 4 * QUIET <= took < 5 * QUIET
    probes = [p for p in face.sent if isinstance(p, Interest) and p.name == PROBE]
    assert len(probes) == 3
    verbs = [
        parse_command(p.name)[0] for p in face.sent if isinstance(p, Interest) and p not in probes
    ]
    assert verbs == ["ping", "publish"]  # no abandon on a closed connection


async def test_a_quiet_connection_with_nothing_outstanding_is_not_probed(
    autojump_clock: trio.abc.Clock,
) -> None:
    face = FreezingNode(probes=0)
    client = Client(face)
    face.deliver = client._deliver
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.watch)
        await trio.sleep(60)
        assert face.sent == [] and not face.closed
        nursery.cancel_scope.cancel()


_GET_PEAK = """
import sys, tracemalloc, trio, ccn
async def main():
    async with ccn.connect(sys.argv[1]) as node:
        tracemalloc.start()
        data = await node.get("/big/f")
    assert len(data) == int(sys.argv[2])
    print(tracemalloc.get_traced_memory()[1])
trio.run(main)
"""


async def test_get_holds_the_content_once(tmp_path: Path) -> None:
    # get() built the content in a bytearray and returned bytes() of it: at the end the caller
    # held it twice (a peak of 2x the content; helper-51).
    import sys

    size = 192 << 20
    (tmp_path / "f").write_bytes(os.urandom(size))
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        await client.put(tmp_path / "f", "/big/f")
        (tmp_path / "f").unlink()
        done = await trio.run_process(
            [sys.executable, "-c", _GET_PEAK, uri, str(size)], capture_stdout=True
        )
    peak = int(done.stdout)  # bytes
    # Python's allocations at their peak (tracemalloc: the process's RSS also counts memory
    # freed and not given back, which a busy machine made vary by 100 MB): the content once,
    # and the fetch's window (at most REORDER_BYTES, 32 MiB of content, ahead of what was
    # written, each object held as read and as decoded: 64 MiB); a second copy of the content
    # would be 192 MiB more.
    assert peak < size + (80 << 20), peak
