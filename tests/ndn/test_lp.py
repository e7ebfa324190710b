from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.ndn import lp
from ccn.ndn.tlv import NdnDecodeError, tlv

INTEREST = bytes.fromhex("051f070c080161080162360103320105210012000a04010203040c020fa0220120")
# LpPacket{PitToken aabb, Nack{NackReason 150}, Fragment{INTEREST}}, as python-ndn encodes it.
NACK = bytes.fromhex("64306202aabbfd032005fd032101965021") + INTEREST


def test_nack_golden_vector() -> None:
    assert lp.encode_lp(INTEREST, pit_token=b"\xaa\xbb", nack_reason=150) == NACK
    got = lp.decode_lp(NACK)
    assert got == lp.LpPacket(INTEREST, b"\xaa\xbb", True, 150)


def test_python_ndn_reads_our_nack() -> None:
    from ndn.encoding.ndnlp_v2 import parse_lp_packet

    reason, fragment = parse_lp_packet(NACK)
    assert reason == 150 and bytes(fragment) == INTEREST


def test_plain_fragment_idle_and_nack_without_reason() -> None:
    assert lp.decode_lp(lp.encode_lp(INTEREST)) == lp.LpPacket(INTEREST)
    assert lp.decode_lp(tlv(100, b"")) == lp.LpPacket(None)
    got = lp.decode_lp(tlv(100, tlv(lp.T_NACK, b"") + tlv(lp.T_FRAGMENT, INTEREST)))
    assert got.nack and got.nack_reason == 0


def test_skips_ignorable_fields() -> None:
    wire = tlv(
        100,
        tlv(lp.T_SEQUENCE, b"\x00" * 8)
        + tlv(0x0340, b"\x01")
        + tlv(0x0384, b"")
        + tlv(lp.T_FRAGMENT, INTEREST),
    )
    assert lp.decode_lp(wire).fragment == INTEREST


@pytest.mark.parametrize(
    "value",
    [
        tlv(lp.T_FRAGMENT, INTEREST) + tlv(lp.T_PIT_TOKEN, b"x"),  # Fragment not last
        tlv(lp.T_NACK, b"") + tlv(lp.T_PIT_TOKEN, b"x") + tlv(lp.T_FRAGMENT, INTEREST),  # order
        tlv(lp.T_FRAG_COUNT, b"\x02") + tlv(lp.T_FRAGMENT, INTEREST),  # fragmentation
        tlv(lp.T_PIT_TOKEN, b"") + tlv(lp.T_FRAGMENT, INTEREST),  # empty token
        tlv(0x0385, b"") + tlv(lp.T_FRAGMENT, INTEREST),  # unknown, not ignorable
        tlv(lp.T_FRAGMENT, b""),
    ],
)
def test_strict(value: bytes) -> None:
    with pytest.raises(NdnDecodeError):
        lp.decode_lp(tlv(100, value))


@given(st.binary(max_size=200))
def test_fuzz(raw: bytes) -> None:
    for wire in (raw, b"\x64" + bytes([len(raw) % 256]) + raw):
        with contextlib.suppress(NdnDecodeError):
            lp.decode_lp(wire)
