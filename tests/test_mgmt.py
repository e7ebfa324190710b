"""Management commands against a node in process: what each verb answers, and the one-line
error every malformed command, unknown verb and bad parameter gets (the node keeps serving)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from ccn.client import Client, CommandError, connect, new_nonce
from ccn.mgmt import Management
from ccn.mgmt_proto import PREFIX, command_name, decode_reply
from ccn.name import Name
from ccn.packet import Interest
from ccn.store import files
from ccn.store.objects import Blob, encode
from ccn.testing import leave_command, node_in_process


async def _raw(client: Client, name: Name) -> dict[str, Any]:
    """Send a command by its name as given; return the decoded reply (never raises on ok=False)."""
    data = await client.express(
        Interest(name, new_nonce(), must_be_fresh=True), timeout=5, retries=0
    )
    assert data.name == name and data.freshness_ms == 0  # no cache may answer a command
    return decode_reply(data.content)


def _one_line_error(reply: dict[str, Any], expected: str) -> str | None:
    """None if ``reply`` is a one-line error containing ``expected``, else what is wrong."""
    error = reply.get("error")
    if reply.get("ok") is not False or not isinstance(error, str):
        return f"not an error reply: {reply}"
    if "\n" in error or expected not in error:
        return f"{error!r} does not say {expected!r} in one line"
    return None


async def test_malformed_commands_get_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (PREFIX, "not a management command"),
        (PREFIX.append(b"status", b"\xc1"), "not msgpack"),  # 0xc1: never used by msgpack
        (PREFIX.append(b"status", msgpack.packb([1, 2])), "must be a map"),
        (PREFIX.append(b"list", msgpack.packb({1: "/"})), "not msgpack"),  # keys are strings
        (PREFIX.append(b"explode"), "unknown command 'explode'"),
        (PREFIX.append(b"\xff\xfe"), "unknown command"),
        (PREFIX.append(b"__init__"), "unknown command"),
    ]
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(20):
            wrong = [(str(n), _one_line_error(await _raw(client, n), e)) for n, e in cases]
            assert [w for w in wrong if w[1] is not None] == []
            assert (await _raw(client, command_name("ping"))) == {"ok": True}


async def test_parameter_errors_name_the_parameter(tmp_path: Path) -> None:
    key_rel = "keys/alice.key"
    (tmp_path / "data").mkdir()
    cases: list[tuple[str, dict[str, Any] | None, str]] = [
        ("log", None, "a name parameter is missing"),
        ("log", {"name": 7}, "a name parameter is missing"),
        ("log", {"name": "no-slash"}, "no-slash"),
        ("list", {"prefix": 3}, "a name parameter is missing"),
        ("route-list", {"prefix": None}, "a name parameter is missing"),
        ("route-add", {"prefix": "/r"}, "route-add needs a uri"),
        ("route-add", {"prefix": "/r", "uri": "http://x:1"}, "scheme must be"),
        ("route-add", {"prefix": "/r", "uri": "tcp://127.0.0.1:1", "cost": -1}, "cost must be"),
        ("route-add", {"prefix": "/r", "uri": "tcp://127.0.0.1:1", "cost": "1"}, "cost must be"),
        ("route-add", {"prefix": "/r", "uri": "tcp://127.0.0.1:1", "cost": True}, "cost must be"),
        ("route-add", {"prefix": "/localhost/x", "uri": "tcp://127.0.0.1:1"}, "takes no routes"),
        ("route-remove", {"prefix": "/r"}, "needs a face id or uri"),
        ("route-remove", {"prefix": "/r", "face": "99999"}, "no route for /r via 99999"),
        ("publish", {"name": "/p/v2", "path": "/tmp"}, "cannot publish under /p/v2"),
        ("publish", {"name": "/localhost/p", "path": "/tmp"}, "cannot publish under"),
        ("publish", {"name": "/localhop/p", "path": "/tmp"}, "cannot publish under"),
        ("publish", {"name": "/", "path": "/tmp"}, "cannot publish under /"),
        ("publish", {"name": "/p"}, "publish needs an absolute path"),
        ("publish", {"name": "/p", "path": "relative/file"}, "publish needs an absolute path"),
        ("publish", {"name": "/p", "path": "/no/such/file"}, "the node cannot read it"),
        (
            "publish",
            {"name": "/p", "path": str(tmp_path / "data"), "key": key_rel},
            "absolute key path",
        ),
        ("pin", {"name": "/p", "version": "text"}, "version must be the version record's bytes"),
        ("pin", {"name": "/"}, "cannot pin the root name"),
        ("gc", {"grace": -1}, "grace must be a number of seconds >= 0"),
        ("gc", {"grace": float("nan")}, "grace must be a number of seconds >= 0"),
        ("gc", {"grace": "1h"}, "grace must be a number of seconds >= 0"),
        ("unpin", {"name": "/never/pinned"}, "/never/pinned is not pinned"),
        ("refuse", {"name": "/p/v1"}, "refuse needs a version's name (/n/vN) and its record's id"),
        ("refuse", {"name": "/p", "id": bytes(32)}, "refuse needs a version's name"),
        ("refuse", {"name": "/p/v1", "id": bytes(31)}, "refuse needs a version's name"),
        ("refuse", {"name": "/p/v1", "id": "00" * 32}, "refuse needs a version's name"),
    ]
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        with trio.fail_after(30):
            wrong = []
            for verb, params, expected in cases:
                reply = await _raw(client, command_name(verb, params))
                problem = _one_line_error(reply, expected)
                if problem is not None:
                    wrong.append((verb, params, problem))
            assert wrong == []
            assert (await client.status())["producer"]["nacks"] == 0  # still serving
    assert not list((tmp_path / "n").glob("refs/p*"))  # nothing was published


async def test_replies_of_the_plain_verbs(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    async with node_in_process(tmp_path / "n") as (node, uri), connect(uri) as client:
        with trio.fail_after(20):
            published = await client.command(
                "publish", {"name": "/m/f", "path": str(tmp_path / "f")}
            )
            assert published["ok"] is True
            assert published["name"] == "/m/f/v1" and published["size"] == len(b"content")
            assert len(bytes.fromhex(published["id"])) == 32
            await client.publish(tmp_path / "f", "/m/f")
            await client.publish(tmp_path / "f", "/other")
            listed = await client.command("list", {"prefix": "/m"})
            assert listed["names"] == [{"name": "/m/f", "versions": [1, 2], "versions_total": 2}]
            assert listed["more"] is False
            everything = await client.command("list")
            assert [e["name"] for e in everything["names"]] == ["/m/f", "/other"]
            faces = (await client.command("face-list"))["faces"]
            assert {f["remote"] for f in faces} >= {"internal://management", "internal://producer"}
            assert len(faces) == len(node.faces)
            routes = await client.command("route-list", {"prefix": "/m"})
            assert [e["prefix"] for e in routes["fib"]] == ["/m/f"]
            assert routes["fib_total"] == 1 and routes["down"] == []
            assert set((await client.command("status"))["status"]) >= {"faces", "fib", "producer"}
            pins = await client.command("pins")
            assert pins == {"ok": True, "pins": []}


def _publish_many(node: Any, names: int, versions: int) -> None:
    """``/b/n0`` … with version 1 each, and ``/b/n0`` up to ``versions`` (records not stored)."""
    for i in range(names):
        node.refs.compare_and_swap(Name.parse(f"/b/n{i}"), None, 1, bytes(32))
    for v in range(2, versions + 1):
        node.refs.compare_and_swap(Name.parse("/b/n0"), v - 1, v, bytes(32))


async def test_list_pages_and_log_is_cut_at_its_bound_with_a_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30,000 names made a 1.9 MB list reply, more than a packet: the client waited 10 s and
    # blamed the node ("did not answer"). Now a reply holds a page of names, and the client
    # asks for the next after the last one; the versions of each are cut, with their total.
    monkeypatch.setattr("ccn.mgmt.LIST_MAX_NAMES", 3)
    monkeypatch.setattr("ccn.mgmt.LIST_MAX_VERSIONS", 2)
    monkeypatch.setattr("ccn.maintenance.MAX_LINES", 4)
    async with node_in_process(tmp_path) as (node, uri), connect(uri) as client:
        _publish_many(node, names=5, versions=6)
        with trio.fail_after(10):
            first = await client.command("list", {"prefix": "/b"})
            assert [e["name"] for e in first["names"]] == ["/b/n0", "/b/n1", "/b/n2"]
            assert first["more"] is True
            assert first["names"][0]["versions"] == [5, 6]
            assert first["names"][0]["versions_total"] == 6
            rest = await client.command("list", {"prefix": "/b", "after": "/b/n2"})
            assert [e["name"] for e in rest["names"]] == ["/b/n3", "/b/n4"]
            assert rest["more"] is False
            pages = [[e["name"] for e in page] async for page in client.list_pages("/b")]
            assert pages == [["/b/n0", "/b/n1", "/b/n2"], ["/b/n3", "/b/n4"]]
            assert [e["name"] for e in await client.ls()] == [f"/b/n{i}" for i in range(5)]
            versions, total = await client.history("/b/n0")
            assert total == 6 and [v["number"] for v in versions] == [3, 4, 5, 6]


async def test_a_reply_too_large_for_a_packet_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def huge(_self: Management, _params: dict[str, Any]) -> dict[str, Any]:
        return {"pins": ["x" * 1000] * 2000}

    monkeypatch.setattr(Management, "cmd_pins", huge)
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            reply = await _raw(client, command_name("pins"))
            assert _one_line_error(reply, "the reply to 'pins' is too large (2,") is None
            assert "faces" in await client.status()


async def test_a_command_that_fails_inside_the_node_does_not_stop_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(_self: Management, _params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Management, "cmd_list", broken)
    async with node_in_process(tmp_path) as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            with pytest.raises(CommandError, match="internal error in the node: RuntimeError"):
                await client.ls()
            assert "faces" in await client.status()
    assert "RuntimeError: a bug" in capsys.readouterr().err


@pytest.mark.parametrize("where", [None, "packs/pack-1-2-3-0.pack", "refs/full/.lock"])
async def test_a_full_store_is_named_in_the_publish_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str | None
) -> None:
    # A write into the store carries no file name (the error used to be the bare "No space
    # left on device"), or the name of a file of the store's own (out of inodes: the error
    # used to show the pack being written): either way, say that the node's store is full.
    store = os.path.realpath(tmp_path / "n" / "node")  # node_in_process puts it there

    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", where and f"{store}/{where}")

    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.setattr("ccn.mgmt.publish", full)
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        with trio.fail_after(10):
            with pytest.raises(CommandError) as e:
                await client.publish(tmp_path / "f", "/full")
            assert str(e.value) == f"the node's store {store}: No space left on device"


async def test_a_full_store_is_named_in_the_pin_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only publish said so: a pin (or unpin) whose pins file could not be written answered
    # "<store>/pins.tmp.<pid>.<token>.<thread>: No space left on device".
    from ccn.store.refs import DiskRefStore

    def full(_self: DiskRefStore, path: str, _text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", f"{path}.tmp.1.2.3")

    (tmp_path / "f").write_bytes(b"x")
    async with node_in_process(tmp_path / "n") as (node, uri), connect(uri) as client:
        with trio.fail_after(10):
            await client.publish(tmp_path / "f", "/p")
            monkeypatch.setattr(DiskRefStore, "_replace", full)
            with pytest.raises(CommandError) as e:
                await client.pin("/p/v1")
            store = os.path.realpath(node.config.store)
            assert str(e.value) == f"the node's store {store}: No space left on device"
            assert await client.pins() == []


async def test_an_unreadable_file_to_publish_is_named_not_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store is named only for files of its own: an error about the file being published
    # keeps its path.
    outside = str(tmp_path / "f")

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", outside)

    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.setattr("ccn.mgmt.publish", failing)
    async with node_in_process(tmp_path / "n") as (_node, uri), connect(uri) as client:
        with trio.fail_after(10), pytest.raises(CommandError) as e:
            await client.publish(tmp_path / "f", "/f")
        assert str(e.value) == f"{outside}: Read-only file system"


async def test_a_publish_whose_client_goes_away_is_stopped_unpublished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ctrl-C'd 'ccn put' used to be published all the same: the node finished the import.
    # The import is held until told to stop, then goes on as the real one would.
    started, stopped = threading.Event(), threading.Event()

    def held(*args: Any, stop: threading.Event, **kwargs: Any) -> Any:
        if args[2] == Name.parse("/gone"):  # (store, refs, name, path)
            started.set()
            if stop.wait(10):
                stopped.set()
        return files.publish(*args, stop=stop, **kwargs)

    monkeypatch.setattr("ccn.mgmt.publish", held)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(4 << 20))  # more than one block: the import checks for stop
    params = {"name": "/gone", "path": str(src)}
    interest = Interest(command_name("publish", params), new_nonce(), lifetime_ms=600_000)
    async with node_in_process(tmp_path / "n") as (node, uri):
        with trio.fail_after(20):
            await leave_command(uri, node, interest, started, stopped)
            async with connect(uri) as client:  # once stopped, the import never publishes
                assert await client.ls("/gone") == []
                assert (await client.publish(src, "/kept"))["name"] == "/kept/v1"


async def test_a_publish_stopped_after_part_of_its_pack_was_synced_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With fsync, a pack is synced as it grows, and an abandoned one is only set aside (a
    # node stopping must not wait for its blocks to be freed): a publish whose client left,
    # on a node that goes on, removes it at once.
    from ccn.store import objstore

    monkeypatch.setattr(objstore, "PACK_SYNC_STEP", 256 << 10)
    started, stopped = threading.Event(), threading.Event()

    class Late(threading.Event):
        """The stop flag, seen by the import only from its fourth block on."""

        def __init__(self, stop: threading.Event) -> None:
            super().__init__()
            self.stop, self.asked = stop, 0

        def is_set(self) -> bool:
            self.asked += 1
            return self.asked > 3 and self.stop.is_set()

    def held(*args: Any, stop: threading.Event, **kwargs: Any) -> Any:
        started.set()
        if stop.wait(10):
            stopped.set()
        return files.publish(*args, stop=Late(stop), **kwargs)

    monkeypatch.setattr("ccn.mgmt.publish", held)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 << 20))  # 6 blocks: 3 written (and partly synced), then stop
    params = {"name": "/gone", "path": str(src)}
    interest = Interest(command_name("publish", params), new_nonce(), lifetime_ms=600_000)
    async with node_in_process(tmp_path / "n", fsync=True) as (node, uri):
        removed: list[int] = []
        remove_aborted = node.store.remove_aborted
        monkeypatch.setattr(
            node.store, "remove_aborted", lambda stop: removed.append(remove_aborted(stop))
        )
        with trio.fail_after(20):
            await leave_command(uri, node, interest, started, stopped)
            while not removed:  # bounded by fail_after
                await trio.sleep(0.01)
        assert removed == [1]
        assert os.listdir(node.config.store / "tmp") == []
        assert os.listdir(node.config.store / "packs") == []


async def test_a_publish_that_fills_the_disk_gives_the_space_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put that failed on a full disk left its pack set aside until the node restarted: the
    disk stayed full, and every put after it failed (a hunt on a 64 MB tmpfs). The pack of a
    batch that fails is removed as soon as the command returns, as a stopped one's is."""

    def half_then_full(store: Any, *_args: Any, **_kwargs: Any) -> Any:
        with store.batch() as batch:
            for _ in range(8):
                batch.put(encode(Blob(os.urandom(200_000))))
            raise OSError(errno.ENOSPC, "No space left on device")

    from ccn.store import objstore

    # with fsync, a pack partly synced is set aside to be removed in steps (a GiB in one
    # unlink kept a node waiting): that is the one that stayed
    monkeypatch.setattr(objstore, "PACK_SYNC_STEP", 256 << 10)
    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.setattr("ccn.mgmt.publish", half_then_full)
    async with (
        node_in_process(tmp_path / "n", fsync=True) as (node, uri),
        connect(uri) as client,
    ):
        with trio.fail_after(10):
            with pytest.raises(CommandError, match="No space left on device"):
                await client.publish(tmp_path / "f", "/full")
        assert os.listdir(node.config.store / "tmp") == []
        assert os.listdir(node.config.store / "packs") == []


async def test_ls_lists_every_name_and_says_which_ref_file_is_damaged(tmp_path: Path) -> None:
    """One garbled ref log made `ccn ls` fail as a whole: no name was listed."""
    (tmp_path / "f").write_bytes(b"x")
    async with node_in_process(tmp_path / "n") as (node, uri), connect(uri) as client:
        with trio.fail_after(10):
            await client.publish(tmp_path / "f", "/a")
            await client.publish(tmp_path / "f", "/b")
            (node.config.store / "refs" / "a" / ".log").write_bytes(b"garbage\n")
            names = [e async for page in client.list_pages(Name.parse("/")) for e in page]
    assert [e["name"] for e in names] == ["/a", "/b"]
    assert "header" in names[0]["error"] and names[0]["versions"] == []
    assert "error" not in names[1] and names[1]["versions"] == [1]
