"""The wire codec: packets to msgpack bytes and back, strictly.

Every packet is one msgpack array whose first element is the format version
(:data:`FORMAT_VERSION`) and second the packet type. The exact layout is specified in
``docs/protocol.md``. :func:`decode` accepts only the canonical shapes and raises
:class:`~ccn.errors.DecodeError` for anything else — never another exception. No I/O here.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from ccn.errors import DecodeError, InvalidName, InvalidPacket
from ccn.name import ROOT, Name
from ccn.packet import (
    DIGEST_SIZE,
    MAX_FRESHNESS_MS,
    MAX_HOP_LIMIT,
    MAX_LIFETIME_MS,
    MAX_NONCE,
    Data,
    Interest,
    Nack,
    NackReason,
    Packet,
    _prechecked_data,
    _prechecked_interest,
)

FORMAT_VERSION: Final = 1
T_INTEREST: Final = 1
T_DATA: Final = 2
T_NACK: Final = 3

FLAG_CAN_BE_PREFIX: Final = 0x01
FLAG_MUST_BE_FRESH: Final = 0x02
_KNOWN_FLAGS: Final = FLAG_CAN_BE_PREFIX | FLAG_MUST_BE_FRESH

#: Largest encoded packet accepted by :func:`decode` (and produced by :func:`encode`).
MAX_PACKET_SIZE: Final = 1024 * 1024

#: Data up to this size keeps its encoding (small packets are where packing costs most; large
#: ones would double the content store's memory).
WIRE_CACHE_MAX: Final = 16 * 1024

_packer: Final = msgpack.Packer(use_bin_type=True, autoreset=True)
_unpackb: Final = msgpack.unpackb


def _packb(value: list[Any]) -> bytes:
    out: bytes = _packer.pack(value)
    return out


#: msgpack's encoding of each integer below 128 (a positive fixint: the byte itself).
_FIXINTS: Final = tuple(bytes((n,)) for n in range(128))
#: An Interest's first bytes: an array of 8, the format version, the packet type; a Nack's: an
#: array of 9, the version, the type (then its reason, then the Interest's fields).
_INTEREST_HEAD: Final = bytes((0x98, FORMAT_VERSION, T_INTEREST))
_NACK_HEAD: Final = bytes((0x99, FORMAT_VERSION, T_NACK))
#: What precedes a digest: bin 8 of DIGEST_SIZE bytes. ``_NIL``: no digest.
_DIGEST_HEAD: Final = bytes((0xC4, DIGEST_SIZE))
_NIL: Final = b"\xc0"
#: The packed components of the names of Interests encoded lately: a client or a node sends
#: many Interests under a few names (locators). Bounded; cleared when full.
_NAME_WIRES: Final[dict[Name, bytes]] = {}
_NAME_WIRES_MAX: Final = 4096


def _packed_uint(n: int) -> bytes:
    """msgpack's encoding of ``0 <= n < 2**32``: the shortest, as msgpack itself packs it."""
    if n < 0x80:
        return _FIXINTS[n]
    if n < 0x100:
        return b"\xcc" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xcd" + n.to_bytes(2, "big")
    return b"\xce" + n.to_bytes(4, "big")


def _encode_interest(head: bytes, i: Interest) -> bytes:
    """``head``, then the Interest's fields as ``_packer.pack`` packs ``[components, nonce,
    lifetime, hop limit, flags, digest]`` inside an array, byte for byte (a test holds an
    Interest to that; the golden vectors a Nack), put together from pieces: the name's packed
    once per name, the rest by hand. Once per Interest sent or forwarded, at half the cost of
    packing the list."""
    name = i.name
    packed = _NAME_WIRES.get(name)
    if packed is None:
        packed = _packb(list(name.components))
        if len(_NAME_WIRES) >= _NAME_WIRES_MAX:
            _NAME_WIRES.clear()
        _NAME_WIRES[name] = packed
    flags = (FLAG_CAN_BE_PREFIX if i.can_be_prefix else 0) | (
        FLAG_MUST_BE_FRESH if i.must_be_fresh else 0
    )
    digest = i.digest
    return b"".join(
        (
            head,
            packed,
            _packed_uint(i.nonce),
            _packed_uint(i.lifetime_ms),
            _packed_uint(i.hop_limit),
            _FIXINTS[flags],
            _NIL if digest is None else _DIGEST_HEAD + digest,
        )
    )


def encode(packet: Packet) -> bytes:
    """Encode one packet. Raises :class:`InvalidPacket` if the result would exceed the limit."""
    out: bytes
    if type(packet) is Interest:
        out = _encode_interest(_INTEREST_HEAD, packet)
    elif type(packet) is Data:
        if packet._wire is not None:
            return packet._wire
        out = _packb(
            [
                FORMAT_VERSION,
                T_DATA,
                list(packet.name.components),
                packet.content,
                packet.freshness_ms,
            ]
        )
    elif type(packet) is Nack:
        out = _encode_interest(_NACK_HEAD + _packed_uint(int(packet.reason)), packet.interest)
    else:
        raise InvalidPacket(f"cannot encode {type(packet).__name__}")
    if len(out) > MAX_PACKET_SIZE:
        raise InvalidPacket(f"packet of {len(out)} bytes exceeds {MAX_PACKET_SIZE}")
    if type(packet) is Data and len(out) <= WIRE_CACHE_MAX:
        object.__setattr__(packet, "_wire", out)
    return out


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def encode_parts(packet: Packet) -> list[bytes]:
    """The encoding of ``packet`` as pieces to send with one vectored write.

    For a large Data the content is its own piece, so it reaches the socket without being
    copied into a packet buffer; ``b"".join(encode_parts(p)) == encode(p)`` always.
    """
    if type(packet) is not Data:
        return [encode(packet)]
    wire = packet._wire
    if wire is not None:  # a cached Data answered again: no packing at all
        return [wire]
    content = packet.content
    if len(content) <= WIRE_CACHE_MAX:
        return [encode(packet)]
    prefix = (
        b"\x95"
        + _packb([FORMAT_VERSION, T_DATA, list(packet.name.components)])[1:]
        + _bin_header(len(content))
    )
    suffix = _packb([packet.freshness_ms])[1:]
    if len(prefix) + len(content) + len(suffix) > MAX_PACKET_SIZE:
        raise InvalidPacket(f"Data of {len(content)} bytes exceeds {MAX_PACKET_SIZE}")
    return [prefix, content, suffix]


#: Recently decoded names by components: most packets repeat a few names (locators), and
#: building and checking a Name is a good part of decoding one. Bounded; cleared when full.
_NAME_CACHE: Final[dict[tuple[bytes, ...], Name]] = {}
_NAME_CACHE_MAX: Final = 4096


def _name(value: object) -> Name:
    if type(value) is not list:
        raise DecodeError("name must be an array of byte strings")
    if not value:
        return ROOT
    key = tuple(value)
    try:
        name = _NAME_CACHE.get(key)
    except TypeError:  # an unhashable component (a nested array): not a name
        raise DecodeError("name components must be byte strings") from None
    if name is not None:
        return name
    try:
        name = Name(key)
    except InvalidName as e:
        raise DecodeError(f"invalid name: {e}") from None
    if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
        _NAME_CACHE.clear()
    _NAME_CACHE[key] = name
    return name


def _uint(value: object, label: str) -> int:
    if type(value) is not int or value < 0:
        raise DecodeError(f"{label} must be a non-negative integer")
    return value


def _interest(f: list[Any]) -> Interest:
    name, nonce, lifetime, hop, flags, digest = f
    # The fields a valid Interest may have, checked here once; the slow path says what is wrong.
    if (
        type(nonce) is int
        and 0 <= nonce <= MAX_NONCE
        and type(lifetime) is int
        and 0 <= lifetime <= MAX_LIFETIME_MS
        and type(hop) is int
        and 0 <= hop <= MAX_HOP_LIMIT
        and type(flags) is int
        and 0 <= flags <= _KNOWN_FLAGS
        and (digest is None or (type(digest) is bytes and len(digest) == DIGEST_SIZE))
    ):
        return _prechecked_interest(
            _name(name),
            nonce,
            lifetime,
            hop,
            flags & FLAG_CAN_BE_PREFIX != 0,
            flags & FLAG_MUST_BE_FRESH != 0,
            digest,
        )
    flags = _uint(flags, "flags")
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError(f"unknown Interest flags {flags:#x}")
    if digest is not None and type(digest) is not bytes:
        raise DecodeError("digest must be bytes or nil")
    return Interest(
        _name(name),
        _uint(nonce, "nonce"),
        _uint(lifetime, "lifetime"),
        _uint(hop, "hop limit"),
        bool(flags & FLAG_CAN_BE_PREFIX),
        bool(flags & FLAG_MUST_BE_FRESH),
        digest,
    )


def decode(raw: bytes | bytearray | memoryview) -> Packet:
    """Decode exactly one packet from ``raw`` (no trailing bytes)."""
    if len(raw) > MAX_PACKET_SIZE:
        raise DecodeError(f"packet of {len(raw)} bytes exceeds {MAX_PACKET_SIZE}")
    try:
        obj = _unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except Exception as e:  # msgpack raises a zoo of types: one DecodeError out
        raise DecodeError(f"not a msgpack value: {type(e).__name__}") from None
    if type(obj) is not list or len(obj) < 2:
        raise DecodeError("packet must be an array [version, type, ...]")
    if obj[0] != FORMAT_VERSION or type(obj[0]) is not int:
        raise DecodeError(
            f"unsupported format version {obj[0]!r} (this node speaks {FORMAT_VERSION})"
        )
    kind = obj[1]
    if type(kind) is not int:  # True == 1 and 1.0 == 1: not packet types
        raise DecodeError(f"packet type must be an integer, got {kind!r}")
    try:
        if kind == T_INTEREST and len(obj) == 8:
            return _interest(obj[2:])
        if kind == T_DATA and len(obj) == 5:
            _, _, name, content, fresh = obj
            if type(content) is not bytes:
                raise DecodeError("Data content must be bytes")
            if type(fresh) is int and 0 <= fresh <= MAX_FRESHNESS_MS:
                return _prechecked_data(_name(name), content, fresh)
            return Data(_name(name), content, _uint(fresh, "freshness"))
        if kind == T_NACK and len(obj) == 9:
            reason = obj[2]
            if type(reason) is not int or reason not in _REASONS:
                raise DecodeError(f"unknown Nack reason {reason!r}")
            return Nack(_interest(obj[3:]), _REASONS[reason])
    except InvalidPacket as e:
        raise DecodeError(str(e)) from None
    raise DecodeError(f"unknown packet type {kind!r} or wrong field count {len(obj)}")


_REASONS: Final = {int(r): r for r in NackReason}
