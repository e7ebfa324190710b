"""Stream transports: what a Unix listener may replace at its path; how long a dial waits."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import trio

from ccn.errors import ConnectError
from ccn.faces import transport
from ccn.faces.stream import StreamFace
from ccn.faces.transport import dial, open_listener
from ccn.faces.uri import FaceUri
from ccn.testing import CrowdedNode


async def test_a_unix_listener_replaces_a_dead_socket_but_no_other_file(tmp_path: Path) -> None:
    # A stale socket left by a node that died is replaced. Any other file at the path is the
    # user's (ccn node --listen unix:///home/me/notes.txt): it used to be deleted.
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))
    listener, _bound = await open_listener(FaceUri.parse(f"unix://{stale}"))
    await listener.aclose()

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ConnectError, match=r"notes\.txt exists and is not a socket"):
        await open_listener(FaceUri.parse(f"unix://{notes}"))
    assert notes.read_text() == "mine"


async def test_a_unix_listener_in_a_missing_directory_names_it_and_makes_none(
    tmp_path: Path,
) -> None:
    # It used to create the whole tree (--listen unix:///some/new/dir/sock, a typo included).
    missing = tmp_path / "some" / "new"
    with pytest.raises(ConnectError, match=f"directory {missing} does not exist"):
        await open_listener(FaceUri.parse(f"unix://{missing}/n.sock"))
    assert not (tmp_path / "some").exists()


async def test_both_ends_of_a_unix_connection_ask_for_a_large_send_buffer(tmp_path: Path) -> None:
    # A Unix stream socket is not autotuned: at its default (208 KiB) a 256 MiB fetch from the
    # node's cache ran at 0.75x the rate. The kernel grants at most wmem_max, doubled.
    wmem_max = int(Path("/proc/sys/net/core/wmem_max").read_text())
    want = 2 * min(transport.UNIX_SNDBUF, wmem_max)
    uri = FaceUri.parse(f"unix://{tmp_path / 'n.sock'}")
    listener, bound = await open_listener(uri)
    faces: list[StreamFace] = []

    async def on_face(face: StreamFace) -> None:
        faces.append(face)
        await trio.sleep_forever()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.serve, listener, bound, on_face)
            dialled = await dial(bound)
            while not faces:
                await trio.sleep(0.01)
            for face in (dialled, faces[0]):
                sock = face._stream.socket  # type: ignore[attr-defined]
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == want
            nursery.cancel_scope.cancel()
        await dialled._stream.aclose()


async def test_a_dial_that_gets_no_answer_gives_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A host that is off drops SYNs: the dial used to wait out the kernel's retries (about two
    # minutes), holding up a neighbour's redial and `ccn --node tcp://...`. Played on loopback
    # by a listener whose accept queue is full (the kernel then drops new SYNs).
    monkeypatch.setattr(transport, "DIAL_TIMEOUT", 0.5)
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        try:
            for _ in range(8):  # fill the queue: connects that complete, never accepted
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                queued.append(c)
            await trio.sleep(0.2)
            with trio.fail_after(5):
                with pytest.raises(ConnectError, match=r"127\.0\.0\.1:\d+: no answer in 0\.5 s"):
                    await dial(FaceUri.parse(f"tcp://127.0.0.1:{port}"))
        finally:
            for c in queued:
                c.close()


def test_a_node_out_of_descriptors_says_so_in_a_line_and_serves_again(tmp_path: Path) -> None:
    # Under ulimit -n 64 with 100 clients connected, accept fails with EMFILE. trio's
    # serve_listeners logged a nine-line traceback at every retry, ten a second per listener,
    # for as long as it lasted; now the node says so once, and once when it accepts again.
    with CrowdedNode(tmp_path, 64, 64, clients=100) as node:
        time.sleep(1.5)  # fifteen retries
        node.release()
        status = node.status()
        assert status.returncode == 0, status.stderr
    err, sock = node.err, node.sock
    assert node.process.returncode == 0
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == (
        f"ccn node: cannot accept connections on unix://{sock}: Too many open files (this "
        "process may open 64: ulimit -n); new connections wait until some close"
    )
    assert f"ccn node: accepting connections on unix://{sock} again" in lines
    assert len(lines) <= 6, err  # a second episode while the backlog drains, at most


def _link_local() -> tuple[str, str] | None:
    """An IPv6 link-local address of this host and its interface, if it has one."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().split()
    except OSError:
        return None
    for i in range(0, len(lines) - 5, 6):
        hexaddr, _index, _plen, scope, _flags, name = lines[i : i + 6]
        if scope == "20":  # link
            return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr)), name
    return None


async def test_a_link_local_listener_keeps_its_zone() -> None:
    # It printed as tcp://[fe80::…]:PORT (at start and in status), which is no address to
    # reach it by, and a route to it with its zone was not taken for the node's own.
    found = _link_local()
    if found is None:
        pytest.skip("this host has no IPv6 link-local address")
    address, iface = found
    listener, bound = await open_listener(FaceUri.parse(f"tcp://[{address}%{iface}]:0"))
    async with listener:
        assert bound.host == f"{address}%{iface}"
        assert str(bound) == f"tcp://[{address}%{iface}]:{bound.port}"


async def test_a_stopped_unix_listener_removes_only_its_own_socket(tmp_path: Path) -> None:
    # Its file removed meanwhile (a tmp cleaner) and another node listening there now: the
    # first node's stop removed the second's socket (helper-54).
    path = tmp_path / "n.sock"
    listener, bound = await open_listener(FaceUri("unix", path=str(path)))
    await listener.aclose()
    path.unlink()
    await trio.sleep(0.02)  # later, as a cleaner and a new node would be (coarse ctime)
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        transport.remove_socket(bound)
        assert path.exists()
    path.unlink()
    listener, bound = await open_listener(FaceUri("unix", path=str(path)))
    await listener.aclose()
    transport.remove_socket(bound)
    assert not path.exists()
