"""NDN packet format v0.3: Names with typed components, Interest and Data, strictly decoded.

Decoded packets keep their exact wire bytes (``wire``), because relayed NDN packets are forwarded
byte for byte: re-encoding would change implicit digests and field order. Encoders build the
packets this node originates; Data is signed with DigestSha256 (SHA-256 over Name through
SignatureInfo). Decoders raise :class:`~ccn.ndn.tlv.NdnDecodeError` and nothing else. No I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from ccn.name import NDN_KEYWORDS, typed_component
from ccn.ndn.tlv import (
    T_DATA,
    T_INTEREST,
    Buffer,
    NdnDecodeError,
    decode_nonneg,
    encode_nonneg,
    is_critical,
    iter_elements,
    read_tl,
    tlv,
    tlv_nonneg,
    unwrap,
)

# -- TLV-TYPE numbers ---------------------------------------------------------------------------

T_NAME = 0x07
T_CAN_BE_PREFIX = 0x21
T_MUST_BE_FRESH = 0x12
T_FORWARDING_HINT = 0x1E
T_NONCE = 0x0A
T_INTEREST_LIFETIME = 0x0C
T_HOP_LIMIT = 0x22
T_APP_PARAMETERS = 0x24
T_INTEREST_SIGNATURE_INFO = 0x2C
T_INTEREST_SIGNATURE_VALUE = 0x2E
T_META_INFO = 0x14
T_CONTENT = 0x15
T_SIGNATURE_INFO = 0x16
T_SIGNATURE_VALUE = 0x17
T_CONTENT_TYPE = 0x18
T_FRESHNESS_PERIOD = 0x19
T_FINAL_BLOCK_ID = 0x1A
T_SIGNATURE_TYPE = 0x1B

# Name component types
C_IMPLICIT_DIGEST = 1
C_PARAMS_DIGEST = 2
C_GENERIC = 8
C_KEYWORD = 32
C_SEGMENT = 50
C_BYTE_OFFSET = 52
C_VERSION = 54
C_TIMESTAMP = 56
C_SEQUENCE = 58

SIG_DIGEST_SHA256 = 0
DEFAULT_LIFETIME_MS = 4000

_INTEREST_ORDER = {
    T_NAME: 0,
    T_CAN_BE_PREFIX: 1,
    T_MUST_BE_FRESH: 2,
    T_FORWARDING_HINT: 3,
    T_NONCE: 4,
    T_INTEREST_LIFETIME: 5,
    T_HOP_LIMIT: 6,
    T_APP_PARAMETERS: 7,
    T_INTEREST_SIGNATURE_INFO: 8,
    T_INTEREST_SIGNATURE_VALUE: 9,
}
_DATA_ORDER = {T_NAME: 0, T_META_INFO: 1, T_CONTENT: 2, T_SIGNATURE_INFO: 3, T_SIGNATURE_VALUE: 4}
_META_ORDER = {T_CONTENT_TYPE: 0, T_FRESHNESS_PERIOD: 1, T_FINAL_BLOCK_ID: 2}

#: One name component: ``(TLV-TYPE, value)``.
Component = tuple[int, bytes]
#: An NDN name: a tuple of typed components.
NdnName = tuple[Component, ...]


# -- names --------------------------------------------------------------------------------------

_KEYWORDS = {t: keyword for keyword, t in NDN_KEYWORDS.items()}
_URI_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def segment(n: int) -> Component:
    return (C_SEGMENT, encode_nonneg(n))


def version(n: int) -> Component:
    return (C_VERSION, encode_nonneg(n))


def generic(value: bytes) -> Component:
    return (C_GENERIC, value)


METADATA: Component = (C_KEYWORD, b"metadata")


def component_number(c: Component) -> int:
    """The NonNegativeInteger of a segment/version/... component."""
    return decode_nonneg(c[1])


def encode_component(c: Component) -> bytes:
    return tlv(c[0], c[1])


def encode_name(name: NdnName) -> bytes:
    return tlv(T_NAME, b"".join(encode_component(c) for c in name))


def _component(buf: Buffer, t: int, start: int, stop: int) -> Component:
    if t > 0xFFFF:
        raise NdnDecodeError(f"name component TLV-TYPE {t} out of range")
    value = bytes(buf[start:stop])
    if t in (C_IMPLICIT_DIGEST, C_PARAMS_DIGEST) and len(value) != 32:
        raise NdnDecodeError("digest name component must be 32 bytes")
    return (t, value)


def decode_name_value(buf: Buffer, start: int, end: int) -> NdnName:
    return tuple(_component(buf, t, s, e) for t, s, e in iter_elements(buf, start, end))


def decode_name(wire: Buffer) -> NdnName:
    """A whole Name element (TL included)."""
    start, stop = unwrap(wire, T_NAME)
    return decode_name_value(wire, start, stop)


def name_to_str(name: NdnName) -> str:
    """NDN URI form, for people: ``/a/v=3/seg=0``, ``/a/32=metadata``, ``/a/sha256digest=<hex>``.

    Keyword spellings (``seg=``, ``v=``, ...) only for shortest NonNegativeIntegers and 32-byte
    digests, other values as ``T=%XX...``; a generic component that ccn would read as something
    else (empty, ``~...``, ``v3``) as ``8=...``: :meth:`ccn.name.Name.parse` of the text gives
    exactly the ccn name of ``name``.
    """
    return "/" + "/".join(_component_text(t, v) for t, v in name)


def _component_text(t: int, v: bytes) -> str:
    keyword = _KEYWORDS.get(t)
    if keyword is not None:
        if t in (C_IMPLICIT_DIGEST, C_PARAMS_DIGEST):
            if len(v) == 32:
                return f"{keyword}={v.hex()}"
        elif len(v) in (1, 2, 4, 8) and encode_nonneg(int.from_bytes(v, "big")) == v:
            return f"{keyword}={int.from_bytes(v, 'big')}"
    text = "".join(chr(b) if b in _URI_UNRESERVED else f"%{b:02X}" for b in v)
    if t == C_GENERIC and typed_component(t, v) == v:
        return text
    return f"{t}={text}"


# -- Interest -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NdnInterest:
    """An NDN Interest. ``wire`` is the exact encoding it was decoded from (or encoded to)."""

    name: NdnName
    can_be_prefix: bool = False
    must_be_fresh: bool = False
    nonce: int | None = None
    lifetime_ms: int | None = None
    hop_limit: int | None = None
    app_parameters: bytes | None = None
    wire: bytes = b""

    @property
    def lifetime(self) -> int:
        return DEFAULT_LIFETIME_MS if self.lifetime_ms is None else self.lifetime_ms


def encode_interest(
    name: NdnName,
    *,
    nonce: int,
    can_be_prefix: bool = False,
    must_be_fresh: bool = False,
    lifetime_ms: int | None = None,
    hop_limit: int | None = None,
) -> NdnInterest:
    """An Interest without ApplicationParameters (what a ccn Interest becomes on an NDN face)."""
    parts = [encode_name(name)]
    if can_be_prefix:
        parts.append(tlv(T_CAN_BE_PREFIX))
    if must_be_fresh:
        parts.append(tlv(T_MUST_BE_FRESH))
    parts.append(tlv(T_NONCE, nonce.to_bytes(4, "big")))
    if lifetime_ms is not None:
        parts.append(tlv_nonneg(T_INTEREST_LIFETIME, lifetime_ms))
    if hop_limit is not None:
        parts.append(tlv(T_HOP_LIMIT, bytes((hop_limit,))))
    wire = tlv(T_INTEREST, b"".join(parts))
    return NdnInterest(
        name, can_be_prefix, must_be_fresh, nonce, lifetime_ms, hop_limit, None, wire
    )


def decode_interest(wire: Buffer) -> NdnInterest:
    """Decode exactly one Interest element, strictly (field order, sizes, critical types)."""
    start, end = unwrap(wire, T_INTEREST)
    name: NdnName | None = None
    cbp = mbf = False
    nonce: int | None = None
    lifetime: int | None = None
    hop: int | None = None
    params: bytes | None = None
    has_sig_info = has_sig_value = False
    for t, s, e in _in_order(wire, start, end, _INTEREST_ORDER, "Interest"):
        n = e - s
        if t == T_NAME:
            name = decode_name_value(wire, s, e)
        elif t in (T_CAN_BE_PREFIX, T_MUST_BE_FRESH):
            if n:
                raise NdnDecodeError("CanBePrefix/MustBeFresh must be empty")
            if t == T_CAN_BE_PREFIX:
                cbp = True
            else:
                mbf = True
        elif t == T_NONCE:
            if n != 4:
                raise NdnDecodeError("Nonce must be 4 bytes")
            nonce = int.from_bytes(wire[s:e], "big")
        elif t == T_INTEREST_LIFETIME:
            lifetime = decode_nonneg(wire[s:e])
        elif t == T_HOP_LIMIT:
            if n != 1:
                raise NdnDecodeError("HopLimit must be 1 byte")
            hop = wire[s]
        elif t == T_APP_PARAMETERS:
            params = bytes(wire[s:e])
        elif t == T_INTEREST_SIGNATURE_INFO:
            has_sig_info = True
        elif t == T_INTEREST_SIGNATURE_VALUE:
            has_sig_value = True
    if not name:
        raise NdnDecodeError("Interest Name must have at least one component")
    digests = sum(1 for c in name if c[0] == C_PARAMS_DIGEST)
    if params is None:
        if digests or has_sig_info or has_sig_value:
            raise NdnDecodeError("signature or parameters digest without ApplicationParameters")
    elif digests != 1:
        raise NdnDecodeError("ApplicationParameters need exactly one parameters digest component")
    if has_sig_value and not has_sig_info:
        raise NdnDecodeError("InterestSignatureValue without InterestSignatureInfo")
    return NdnInterest(name, cbp, mbf, nonce, lifetime, hop, params, bytes(wire))


# -- Data ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NdnData:
    """An NDN Data packet; ``signed`` is the portion its signature covers."""

    name: NdnName
    content: bytes
    freshness_ms: int | None
    final_block_id: Component | None
    content_type: int | None
    signature_type: int
    signature_value: bytes
    signed: bytes
    wire: bytes

    def digest_valid(self) -> bool:
        """For DigestSha256 Data: does the signature match? Other types: ``False``."""
        return (
            self.signature_type == SIG_DIGEST_SHA256
            and hashlib.sha256(self.signed).digest() == self.signature_value
        )


def encode_data(
    name: NdnName,
    content: bytes,
    *,
    freshness_ms: int | None = None,
    final_block_id: Component | None = None,
) -> bytes:
    """Data signed with DigestSha256 (what this node originates)."""
    meta = b""
    if freshness_ms is not None:
        meta += tlv_nonneg(T_FRESHNESS_PERIOD, freshness_ms)
    if final_block_id is not None:
        meta += tlv(T_FINAL_BLOCK_ID, encode_component(final_block_id))
    signed = (
        encode_name(name)
        + (tlv(T_META_INFO, meta) if meta else b"")
        + tlv(T_CONTENT, content)
        + tlv(T_SIGNATURE_INFO, tlv_nonneg(T_SIGNATURE_TYPE, SIG_DIGEST_SHA256))
    )
    value = signed + tlv(T_SIGNATURE_VALUE, hashlib.sha256(signed).digest())
    return tlv(T_DATA, value)


def _in_order(
    wire: Buffer,
    start: int,
    end: int,
    order: dict[int, int],
    what: str,
    *,
    name_first: bool = True,
) -> Iterator[tuple[int, int, int]]:
    """The known elements ``(type, value start, value end)`` of a block, each at most once and
    in ``order``'s ranks; unknown non-critical ones are skipped, unknown critical ones rejected
    (NDN packet format v0.3 §1.3). ``name_first``: the first must be the Name."""
    last = -1
    for t, s, e in iter_elements(wire, start, end):
        rank = order.get(t)
        if rank is None:
            if is_critical(t):
                raise NdnDecodeError(f"unknown critical element {t} in {what}")
            continue
        if rank <= last:
            raise NdnDecodeError(f"{what} element {t} out of order or repeated")
        if name_first and last == -1 and t != T_NAME:
            raise NdnDecodeError(f"{what} must start with its Name")
        last = rank
        yield t, s, e


def _meta_info(wire: Buffer, s: int, e: int) -> tuple[int | None, int | None, Component | None]:
    ctype: int | None = None
    fresh: int | None = None
    final: Component | None = None
    for t, vs, ve in _in_order(wire, s, e, _META_ORDER, "MetaInfo", name_first=False):
        if t == T_CONTENT_TYPE:
            ctype = decode_nonneg(wire[vs:ve])
        elif t == T_FRESHNESS_PERIOD:
            fresh = decode_nonneg(wire[vs:ve])
        else:
            ct, cs, ce = read_tl(wire, vs, ve)
            if ce != ve:
                raise NdnDecodeError("FinalBlockId must hold exactly one name component")
            final = _component(wire, ct, cs, ce)
    return ctype, fresh, final


def decode_data(wire: Buffer) -> NdnData:
    """Decode exactly one Data element, strictly."""
    start, end = unwrap(wire, T_DATA)
    name: NdnName | None = None
    content = b""
    ctype: int | None = None
    fresh: int | None = None
    final: Component | None = None
    sig_type: int | None = None
    sig_value: bytes | None = None
    sig_info_end = 0
    for t, s, e in _in_order(wire, start, end, _DATA_ORDER, "Data"):
        if t == T_NAME:
            name = decode_name_value(wire, s, e)
        elif t == T_META_INFO:
            ctype, fresh, final = _meta_info(wire, s, e)
        elif t == T_CONTENT:
            content = bytes(wire[s:e])
        elif t == T_SIGNATURE_INFO:
            it = iter_elements(wire, s, e)
            first = next(it, None)
            if first is None or first[0] != T_SIGNATURE_TYPE:
                raise NdnDecodeError("SignatureInfo must start with SignatureType")
            sig_type = decode_nonneg(wire[first[1] : first[2]])
            for _ in it:
                pass  # KeyLocator and friends: checked for structure only
            sig_info_end = e
        else:
            sig_value = bytes(wire[s:e])
    if name is None or sig_type is None or sig_value is None:
        raise NdnDecodeError("Data needs Name, SignatureInfo and SignatureValue")
    return NdnData(
        name,
        content,
        fresh,
        final,
        ctype,
        sig_type,
        sig_value,
        bytes(wire[start:sig_info_end]),  # the Name comes first
        bytes(wire),
    )
