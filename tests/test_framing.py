from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.errors import FrameError
from ccn.framing import Deframer, frame, frame_many


@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_any_split_and_coalescing_yields_the_same_frames(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = frame_many(payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    d = Deframer()
    out: list[bytes | memoryview] = []
    for piece in pieces:
        out.extend(d.feed(piece))
    assert out == payloads
    assert d.buffered == 0


def test_frame_header() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame_many([b"a", b""]) == b"\x00\x00\x00\x01a\x00\x00\x00\x00"


def test_partial_frame_is_held() -> None:
    d = Deframer()
    assert d.feed(b"\x00\x00\x00\x05ab") == []
    assert d.buffered == 6
    assert d.feed(b"cde\x00") == [b"abcde"]
    assert d.buffered == 1


def test_oversize_frame_poisons_the_stream() -> None:
    d = Deframer(max_frame=10)
    with pytest.raises(FrameError):
        d.feed(b"\x00\x00\x00\x0b")
    with pytest.raises(FrameError):
        d.feed(frame(b"ok"))


def test_non_ccn_stream_is_rejected_at_once() -> None:
    with pytest.raises(FrameError):
        Deframer().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_large_stream_compacts_buffer() -> None:
    d = Deframer()
    payload = b"x" * 1000
    stream = frame_many([payload] * 500)
    out: list[bytes | memoryview] = []
    for i in range(0, len(stream), 777):
        out.extend(d.feed(stream[i : i + 777]))
    assert out == [payload] * 500
