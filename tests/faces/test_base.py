"""Face.peer_host: which faces count toward one network host's share (max_faces_per_host)."""

from __future__ import annotations

import trio.testing

from ccn.faces.stream import StreamFace


def face(remote: str, *, local: bool = False, by_peer: bool = True) -> StreamFace:
    ours, _theirs = trio.testing.memory_stream_pair()
    f = StreamFace(ours, remote, local=local)
    f.opened_by_peer = by_peer
    return f


def test_peer_host_of_network_faces_opened_by_their_peer() -> None:
    assert face("tcp://192.0.2.7:6464").peer_host == "192.0.2.7"
    assert face("udp://192.0.2.7:56363").peer_host == "192.0.2.7"
    assert face("ndn+tcp://[2001:db8::1]:6363").peer_host == "2001:db8::1"


def test_no_peer_host_for_local_or_dialled_faces() -> None:
    assert face("tcp://127.0.0.1:6464", local=True).peer_host is None
    assert face("unix:///run/ccn.sock#peer", local=True).peer_host is None
    assert face("tcp://192.0.2.7:6464", by_peer=False).peer_host is None
