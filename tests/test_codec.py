from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.codec import MAX_PACKET_SIZE, decode, encode
from ccn.errors import DecodeError, InvalidPacket
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason, Packet

VECTORS = json.loads((Path(__file__).parent / "vectors" / "packets.json").read_text())


def _interest(f: dict[str, Any]) -> Interest:
    return Interest(
        Name.parse(f["name"]),
        f["nonce"],
        f["lifetime_ms"],
        f["hop_limit"],
        f["can_be_prefix"],
        f["must_be_fresh"],
        bytes.fromhex(f["digest"]) if f["digest"] else None,
    )


def _packet(key: str) -> Packet:
    f = VECTORS[key]["fields"]
    if key.startswith("interest"):
        return _interest(f)
    if key.startswith("data"):
        return Data(Name.parse(f["name"]), bytes.fromhex(f["content"]), f["freshness_ms"])
    return Nack(_interest(f["interest"]), NackReason(f["reason"]))


@pytest.mark.parametrize("key", [k for k in VECTORS if not k.startswith("_")])
def test_golden_vectors(key: str) -> None:
    wire = bytes.fromhex(VECTORS[key]["hex"].replace(" ", ""))
    packet = _packet(key)
    assert encode(packet) == wire
    assert decode(wire) == packet


names = st.lists(st.binary(min_size=1, max_size=20), max_size=6).map(Name)
interests = st.builds(
    Interest,
    names,
    st.integers(0, 2**32 - 1),
    st.integers(0, 600_000),
    st.integers(0, 255),
    st.booleans(),
    st.booleans(),
    st.none() | st.binary(min_size=32, max_size=32),
)
datas = st.builds(Data, names, st.binary(max_size=200), st.integers(0, 2**32 - 1))
nacks = st.builds(Nack, interests, st.sampled_from(NackReason))


@given(interests)
def test_interest_encoding_is_msgpacks_own(i: Interest) -> None:
    """The Interest encoder assembles its bytes by hand: they are exactly msgpack's, for every
    field width (a name's packed components are kept per name, so encode twice)."""
    flags = (1 if i.can_be_prefix else 0) | (2 if i.must_be_fresh else 0)
    fields = [1, 1, list(i.name.components), i.nonce, i.lifetime_ms, i.hop_limit, flags, i.digest]
    want = msgpack.packb(fields, use_bin_type=True)
    assert encode(i) == want
    assert encode(i) == want


@given(interests | datas | nacks)
def test_round_trip(packet: Packet) -> None:
    assert decode(encode(packet)) == packet


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(raw)


@given(interests | datas | nacks, st.data())
def test_mutated_packets_raise_only_decode_error(packet: Packet, data: st.DataObject) -> None:
    wire = bytearray(encode(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode(bytes(wire))


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.binary()
    | st.text(),
    lambda children: st.lists(children, max_size=9) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(msgpack_values)
def test_wrong_shapes_raise_only_decode_error(value: object) -> None:
    with contextlib.suppress(DecodeError):
        decode(msgpack.packb(value, use_bin_type=True))


@pytest.mark.parametrize(
    "value",
    [
        [2, 1, [b"a"], 1, 1, 1, 0, None],  # unknown format version
        [1, 9, [b"a"]],  # unknown type
        [1, 1, [b"a"], 1, 1, 1, 0],  # missing field
        [1, 1, [b"a"], 1, 1, 1, 0, None, 5],  # extra field
        [1, 1, [b"a"], True, 1, 1, 0, None],  # bool where an int belongs
        [1, 1, ["a"], 1, 1, 1, 0, None],  # text component
        [1, 1, [b""], 1, 1, 1, 0, None],  # empty component
        [1, 1, [b"a"], 1, 1, 1, 4, None],  # unknown flag
        [1, 1, [b"a"], 1, 1, 1, 0, b"short"],  # digest size
        [1, 1, [b"a"], 1, 10**9, 1, 0, None],  # lifetime range
        [1, 2, [b"a"], "text", 0],  # text content
        [1, 3, 99, [b"a"], 1, 1, 1, 0, None],  # unknown nack reason
        [True, 1, [b"a"], 1, 1, 1, 0, None],  # bool version
        [1, True, [b"a"], 1, 1, 1, 0, None],  # bool packet type (True == 1)
        [1, 1.0, [b"a"], 1, 1, 1, 0, None],  # float packet type
        [1, 2.0, [b"a"], b"x", 0],  # float packet type (Data)
        [1, 3.0, 1, [b"a"], 1, 1, 1, 0, None],  # float packet type (Nack)
    ],
)
def test_strict_decoding(value: object) -> None:
    with pytest.raises(DecodeError):
        decode(msgpack.packb(value, use_bin_type=True))


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(DecodeError):
        decode(encode(Interest(Name.parse("/a"), 1)) + b"\x00")


def test_size_limits() -> None:
    with pytest.raises(InvalidPacket):
        encode(Data(Name.parse("/a"), b"x" * MAX_PACKET_SIZE))
    with pytest.raises(DecodeError):
        decode(b"\x00" * (MAX_PACKET_SIZE + 1))


@given(
    st.lists(st.binary(min_size=1, max_size=20), max_size=4).map(Name),
    st.sampled_from([0, 1, 255, 256, 16383, 16384, 16385, 65535, 65536, 70000]),
    st.integers(0, 2**32 - 1),
)
def test_encode_parts_joins_to_encode(name: Name, size: int, fresh: int) -> None:
    from ccn.codec import encode_parts

    data = Data(name, b"x" * size, fresh)
    parts = encode_parts(data)
    assert b"".join(parts) == encode(Data(name, b"x" * size, fresh))
    assert len(parts) == (3 if size > 16384 else 1)
