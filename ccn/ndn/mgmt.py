"""NFD's RIB management commands, as NDN apps send them: ``/localhost/nfd/rib/register``.

Both forms python-ndn uses are accepted: the legacy command Interest (9 components: prefix, verb,
ControlParameters, timestamp, nonce, SignatureInfo, SignatureValue) and the v0.3 signed Interest
(6 components, the last a parameters digest). Component 4 is always the complete
ControlParameters (0x68) element. Replies are a ControlResponse (0x65) that always carries a
ControlParameters block, errors included. Pure: parsing and encoding only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccn.ndn.packets import (
    C_GENERIC,
    T_NAME,
    NdnName,
    decode_name_value,
    encode_name,
)
from ccn.ndn.tlv import NdnDecodeError, decode_nonneg, iter_elements, tlv, tlv_nonneg, unwrap

T_CONTROL_PARAMETERS = 0x68
T_CONTROL_RESPONSE = 0x65
T_STATUS_CODE = 0x66
T_STATUS_TEXT = 0x67
T_FACE_ID = 0x69
T_COST = 0x6A
T_FLAGS = 0x6C
T_EXPIRATION_PERIOD = 0x6D
T_ORIGIN = 0x6F

ORIGIN_APP = 0
ROUTE_FLAG_CHILD_INHERIT = 1

_SCOPES = (b"localhost", b"localhop")


@dataclass(frozen=True, slots=True)
class ControlParameters:
    name: NdnName | None = None
    face_id: int | None = None
    origin: int | None = None
    cost: int | None = None
    flags: int | None = None
    expiration_ms: int | None = None

    def encode(self) -> bytes:
        parts = []
        if self.name is not None:
            parts.append(encode_name(self.name))
        for t, v in (
            (T_FACE_ID, self.face_id),
            (T_ORIGIN, self.origin),
            (T_COST, self.cost),
            (T_FLAGS, self.flags),
            (T_EXPIRATION_PERIOD, self.expiration_ms),
        ):
            if v is not None:
                parts.append(tlv_nonneg(t, v))
        return tlv(T_CONTROL_PARAMETERS, b"".join(parts))


def decode_control_parameters(wire: bytes) -> ControlParameters:
    start, end = unwrap(wire, T_CONTROL_PARAMETERS)
    fields: dict[str, object] = {}
    for t, s, e in iter_elements(wire, start, end):
        if t == T_NAME:
            fields["name"] = decode_name_value(wire, s, e)
        elif t == T_FACE_ID:
            fields["face_id"] = decode_nonneg(wire[s:e])
        elif t == T_ORIGIN:
            fields["origin"] = decode_nonneg(wire[s:e])
        elif t == T_COST:
            fields["cost"] = decode_nonneg(wire[s:e])
        elif t == T_FLAGS:
            fields["flags"] = decode_nonneg(wire[s:e])
        elif t == T_EXPIRATION_PERIOD:
            fields["expiration_ms"] = decode_nonneg(wire[s:e])
    return ControlParameters(**fields)  # type: ignore[arg-type]


def is_command(name: NdnName) -> bool:
    """``/localhost/nfd/...`` or ``/localhop/nfd/...``: answered by the node itself."""
    return (
        len(name) >= 2
        and name[0][0] == C_GENERIC
        and name[0][1] in _SCOPES
        and name[1] == (C_GENERIC, b"nfd")
    )


@dataclass(frozen=True, slots=True)
class Command:
    module: bytes
    verb: bytes
    params: ControlParameters


class CommandRejected(Exception):
    """A command that gets an error ControlResponse (``code``, ``text``)."""

    def __init__(self, code: int, text: str, params: ControlParameters | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.params = params or ControlParameters()


def parse_command(name: NdnName) -> Command:
    """Module, verb and ControlParameters of a command name; :class:`CommandRejected` if bad."""
    if len(name) < 5 or any(c[0] != C_GENERIC for c in name[:5]):
        raise CommandRejected(400, "malformed command")
    try:
        params = decode_control_parameters(name[4][1])
    except NdnDecodeError as e:
        raise CommandRejected(400, f"malformed ControlParameters: {e}") from None
    return Command(name[2][1], name[3][1], params)


def control_response(code: int, text: str, params: ControlParameters) -> bytes:
    return tlv(
        T_CONTROL_RESPONSE,
        tlv_nonneg(T_STATUS_CODE, code) + tlv(T_STATUS_TEXT, text.encode()) + params.encode(),
    )
