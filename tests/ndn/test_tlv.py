from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.ndn.tlv import (
    MAX_PACKET_SIZE,
    NdnDecodeError,
    NdnFrameError,
    TlvFramer,
    decode_nonneg,
    encode_nonneg,
    encode_varnum,
    read_varnum,
    tlv,
)


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "00"),
        (252, "fc"),
        (253, "fd00fd"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00010000"),
        (0x100000000, "ff0000000100000000"),
    ],
)
def test_varnum_golden(n: int, wire: str) -> None:
    assert encode_varnum(n).hex() == wire
    raw = bytes.fromhex(wire)
    assert read_varnum(raw, 0, len(raw)) == (n, len(raw))


@pytest.mark.parametrize("wire", ["fd0010", "fe0000ffff", "ff00000000ffffffff", "fd00", ""])
def test_varnum_rejects_non_shortest_and_truncated(wire: str) -> None:
    raw = bytes.fromhex(wire)
    with pytest.raises(NdnDecodeError):
        read_varnum(raw, 0, len(raw))


@pytest.mark.parametrize(
    ("n", "wire"), [(0, "00"), (255, "ff"), (256, "0100"), (2**32, "0000000100000000")]
)
def test_nonneg_golden(n: int, wire: str) -> None:
    assert encode_nonneg(n).hex() == wire
    assert decode_nonneg(bytes.fromhex(wire)) == n


def test_nonneg_rejects_odd_sizes() -> None:
    with pytest.raises(NdnDecodeError):
        decode_nonneg(b"\x00\x00\x01")


@given(st.integers(0, 2**64 - 1))
def test_varnum_and_nonneg_round_trip(n: int) -> None:
    w = encode_varnum(n)
    assert read_varnum(w, 0, len(w)) == (n, len(w))
    assert decode_nonneg(encode_nonneg(n)) == n


def test_framer_reassembles_across_any_split() -> None:
    packets = [tlv(5, b"x" * 10), tlv(6, b"y" * 300), tlv(100, b"")]
    stream = b"".join(packets)
    for cut in range(len(stream) + 1):
        f = TlvFramer()
        assert f.feed(stream[:cut]) + f.feed(stream[cut:]) == packets


def test_framer_rejects_foreign_and_oversized_streams() -> None:
    f = TlvFramer()
    with pytest.raises(NdnFrameError):
        f.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(NdnFrameError):  # poisoned
        f.feed(tlv(5, b""))
    with pytest.raises(NdnFrameError):
        TlvFramer().feed(b"\x06\xfd" + (MAX_PACKET_SIZE).to_bytes(2, "big"))


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_framer_fuzz_raises_only_decode_errors(a: bytes, b: bytes) -> None:
    f = TlvFramer()
    try:
        for raw in f.feed(a) + f.feed(b):
            assert raw[0] in (5, 6, 100)
    except NdnDecodeError:
        pass
