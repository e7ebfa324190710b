"""Listening on stream transports: what a Unix listener may replace at its path."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ccn.errors import ConnectError
from ccn.faces.transport import open_listener
from ccn.faces.uri import FaceUri


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
