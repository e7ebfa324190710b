"""The NDNLPv2 bits that applications use: LpPacket with Fragment, PitToken and Nack.

An LpPacket (type 100) carries header fields in increasing TLV-TYPE order and, last, one Fragment
(80) holding a whole Interest or Data. We understand PitToken (98, echoed back to the sender of an
Interest with the reply) and Nack (800) with its NackReason (801). Fragmentation is not supported
(FragIndex/FragCount > 1 is an error). Other known header fields are skipped; an unknown one is
skipped only when NDNLPv2 allows it (TLV-TYPE in [800, 959] with both low bits 0), otherwise the
packet is invalid. Pure; raises :class:`~ccn.ndn.tlv.NdnDecodeError` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccn.ndn.tlv import (
    T_LP_PACKET,
    Buffer,
    NdnDecodeError,
    decode_nonneg,
    iter_elements,
    tlv,
    tlv_nonneg,
    unwrap,
)

T_FRAGMENT = 0x50
T_SEQUENCE = 0x51
T_FRAG_INDEX = 0x52
T_FRAG_COUNT = 0x53
T_HOP_COUNT = 0x54
T_PIT_TOKEN = 0x62
T_NACK = 0x0320
T_NACK_REASON = 0x0321
_SKIPPED = frozenset(
    (T_SEQUENCE, T_HOP_COUNT, 0x032C, 0x0330, 0x0334, 0x0340, 0x0344, 0x0348, 0x034C, 0x0350)
)

NACK_NONE = 0
NACK_CONGESTION = 50
NACK_DUPLICATE = 100
NACK_NO_ROUTE = 150

MAX_PIT_TOKEN = 32


@dataclass(frozen=True, slots=True)
class LpPacket:
    """``fragment`` is the carried packet's wire (TL included), ``None`` for an IDLE packet.

    ``nack`` is set when a Nack header is present; ``nack_reason`` is its reason (0 if absent).
    """

    fragment: bytes | None
    pit_token: bytes | None = None
    nack: bool = False
    nack_reason: int = NACK_NONE


def decode_lp(wire: Buffer) -> LpPacket:
    start, end = unwrap(wire, T_LP_PACKET)
    last = 0
    fragment: bytes | None = None
    token: bytes | None = None
    nack = False
    reason = NACK_NONE
    for t, s, e in iter_elements(wire, start, end):
        if fragment is not None:
            raise NdnDecodeError("Fragment must be the last LpPacket field")
        if t == T_FRAGMENT:
            if s == e:
                raise NdnDecodeError("empty Fragment")
            fragment = bytes(wire[s:e])
            continue
        if t < last or (t == last and t != T_SEQUENCE):
            raise NdnDecodeError(f"LpPacket header field {t} out of order or repeated")
        last = t
        value = wire[s:e]
        if t == T_PIT_TOKEN:
            if not 1 <= len(value) <= MAX_PIT_TOKEN:
                raise NdnDecodeError("PitToken must be 1-32 bytes")
            token = bytes(value)
        elif t == T_NACK:
            nack = True
            for nt, ns, ne in iter_elements(wire, s, e):
                if nt == T_NACK_REASON:
                    reason = decode_nonneg(wire[ns:ne])
                elif nt <= 31 or nt & 1:
                    raise NdnDecodeError(f"unknown critical element {nt} in Nack")
        elif t in (T_FRAG_INDEX, T_FRAG_COUNT):
            n = decode_nonneg(value)
            if (t == T_FRAG_INDEX and n != 0) or (t == T_FRAG_COUNT and n != 1):
                raise NdnDecodeError("NDNLP fragmentation is not supported")
        elif t in _SKIPPED or (800 <= t <= 959 and t & 0x3 == 0):
            continue
        else:
            raise NdnDecodeError(f"unknown LpPacket header field {t}")
    return LpPacket(fragment, token, nack, reason)


def encode_lp(
    fragment: bytes, *, pit_token: bytes | None = None, nack_reason: int | None = None
) -> bytes:
    """Wrap one packet; with ``nack_reason`` it is a Nack (the fragment is then an Interest)."""
    parts = []
    if pit_token is not None:
        parts.append(tlv(T_PIT_TOKEN, pit_token))
    if nack_reason is not None:
        parts.append(tlv(T_NACK, tlv_nonneg(T_NACK_REASON, nack_reason)))
    parts.append(tlv(T_FRAGMENT, fragment))
    return tlv(T_LP_PACKET, b"".join(parts))
