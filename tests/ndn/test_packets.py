"""NDN packets: golden vectors, strictness, fuzzing, and cross-checks against python-ndn."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.ndn import packets as p
from ccn.ndn.tlv import NdnDecodeError, tlv

NAME = ((8, b"a"), (8, b"b"), p.version(3), p.segment(5))
# /a/b/v=3/seg=5, CanBePrefix, MustBeFresh, Nonce 01020304, lifetime 4000, HopLimit 32
# (byte-identical to what python-ndn's make_interest produces for the same fields).
INTEREST = bytes.fromhex("051f070c080161080162360103320105210012000a04010203040c020fa0220120")
# /a/v=1/seg=0, FreshnessPeriod 10000, FinalBlockId seg=0, Content "hello", DigestSha256.
DATA = bytes.fromhex(
    "064407090801613601013201001409190227101a03320100150568656c6c6f16031b0100"
    "172011674b10be778fab9e1d4b4c8246dc94d8e8724a31e9104086e38d3ffb5f0032"
)
# The same Data as python-ndn's make_data encodes it (with an explicit ContentType 0).
PYNDN_DATA = bytes.fromhex(
    "06470709080161360101320100140c180100190227101a03320100150568656c6c6f16031b0100"
    "1720ec706a34d6e8910e08fd687596caa233e2145931fb6301ae2f17794d3affc3a4"
)
# /x/y/params-sha256 with ApplicationParameters "hi", signed with DigestSha256 (python-ndn).
SIGNED_INTEREST = bytes.fromhex(
    "05730728080178080179022023d3444881cd09b77cc45248b759af86f9d346608df9cad17154a52cb8892a6f"
    "0a04000000050c020fa0240268692c171b010026085fe7001825c6078b2808000001a21607d1952e20b8e0"
    "91e66e8587bfc295dae7fd12468e7fdc862173c56b0f98d60ec92ba474dc"
)


def test_interest_golden_vector() -> None:
    built = p.encode_interest(
        NAME,
        nonce=0x01020304,
        can_be_prefix=True,
        must_be_fresh=True,
        lifetime_ms=4000,
        hop_limit=32,
    )
    assert built.wire == INTEREST
    got = p.decode_interest(INTEREST)
    assert got == built
    assert p.name_to_str(got.name) == "/a/b/v=3/seg=5"


def test_data_golden_vector_and_signature() -> None:
    name = ((8, b"a"), p.version(1), p.segment(0))
    assert p.encode_data(name, b"hello", freshness_ms=10000, final_block_id=p.segment(0)) == DATA
    for wire in (DATA, PYNDN_DATA):
        d = p.decode_data(wire)
        assert (d.name, d.content, d.freshness_ms, d.final_block_id) == (
            name,
            b"hello",
            10000,
            p.segment(0),
        )
        assert d.digest_valid() and d.wire == wire
    assert p.decode_data(PYNDN_DATA).content_type == 0


def test_signed_interest_from_python_ndn() -> None:
    got = p.decode_interest(SIGNED_INTEREST)
    assert got.app_parameters == b"hi"
    assert got.name[-1][0] == p.C_PARAMS_DIGEST and got.wire == SIGNED_INTEREST


def test_python_ndn_parses_what_we_encode() -> None:
    from ndn.encoding import parse_data, parse_interest

    _, param, _, _ = parse_interest(INTEREST)
    assert param.can_be_prefix and param.must_be_fresh and param.hop_limit == 32
    _name, meta, content, sig = parse_data(DATA)
    assert bytes(content) == b"hello" and meta.freshness_period == 10000
    h = hashlib.sha256()
    for part in sig.signature_covered_part:
        h.update(part)
    assert h.digest() == bytes(sig.signature_value_buf)


@pytest.mark.parametrize(
    "value",
    [
        tlv(0x0A, b"\x01\x02\x03\x04") + p.encode_name(NAME),  # Name not first
        p.encode_name(NAME) + tlv(0x12) + tlv(0x21),  # MustBeFresh before CanBePrefix
        p.encode_name(NAME) + tlv(0x21) + tlv(0x21),  # repeated
        p.encode_name(NAME) + tlv(0x0A, b"\x01"),  # short nonce
        p.encode_name(NAME) + tlv(0x21, b"x"),  # non-empty CanBePrefix
        p.encode_name(()),  # empty name
        p.encode_name(NAME) + tlv(0x24, b"params"),  # params without digest component
        p.encode_name(NAME) + tlv(0x0F, b""),  # unknown critical element
        p.encode_name(((1, b"short"),)),  # implicit digest of the wrong size
    ],
)
def test_interest_decoder_is_strict(value: bytes) -> None:
    with pytest.raises(NdnDecodeError):
        p.decode_interest(tlv(5, value))


def test_interest_skips_unknown_non_critical_elements() -> None:
    wire = tlv(5, p.encode_name(NAME) + tlv(0x20, b"?") + tlv(0x0A, b"\x00\x00\x00\x01"))
    assert p.decode_interest(wire).nonce == 1


def test_data_decoder_is_strict() -> None:
    name = p.encode_name(((8, b"a"),))
    sig = tlv(0x16, tlv(0x1B, b"\x00")) + tlv(0x17, b"\x00" * 32)
    p.decode_data(tlv(6, name + sig))
    for bad in (
        name,  # no signature
        tlv(0x15, b"") + name + sig,  # Name not first
        name + tlv(0x15, b"") + tlv(0x14, b"") + sig,  # MetaInfo after Content
        name + tlv(0x16, tlv(0x1C, b"")) + tlv(0x17, b""),  # SignatureInfo without type
        name + tlv(0x14, tlv(0x1A, b"")) + sig,  # FinalBlockId without a component
    ):
        with pytest.raises(NdnDecodeError):
            p.decode_data(tlv(6, bad))


@given(st.binary(max_size=300))
def test_fuzz_decoders_raise_only_decode_errors(raw: bytes) -> None:
    for decoder in (p.decode_interest, p.decode_data, p.decode_name):
        with contextlib.suppress(NdnDecodeError):
            decoder(raw)


@given(st.binary(min_size=1, max_size=len(INTEREST) - 1))
def test_fuzz_mutated_interest(noise: bytes) -> None:
    wire = bytearray(INTEREST)
    for i, b in enumerate(noise):
        wire[(i * 7 + b) % len(wire)] ^= b
    for decoder in (p.decode_interest, p.decode_data):
        with contextlib.suppress(NdnDecodeError):
            decoder(bytes(wire))
