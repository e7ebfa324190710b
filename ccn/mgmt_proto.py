"""The management wire convention, shared by the node and its clients (pure, no I/O).

A command is an Interest for ``/localhost/ccn/<verb>[/<p1>/<p2>...]`` where the parameter
components, joined, are one msgpack map (split into components of at most
:data:`PARAM_COMPONENT_BYTES` bytes). It is sent with must-be-fresh, and replies carry freshness 0,
so a content store never answers a command. The reply is Data named as the Interest whose content is
a msgpack map: ``{"ok": true, ...result}`` or ``{"ok": false, "error": "one line"}``.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ccn.codec import MAX_PACKET_SIZE
from ccn.errors import DecodeError, InvalidName
from ccn.name import MAX_NAME_BYTES, Name

PREFIX = Name.parse("/localhost/ccn")
PARAM_COMPONENT_BYTES = 200
#: The largest reply a command gives: one Data packet, with room for its name (the command).
MAX_REPLY_BYTES = MAX_PACKET_SIZE - (64 << 10)


def command_name(verb: str, params: dict[str, Any] | None = None) -> Name:
    name = PREFIX / verb
    if params:
        blob: bytes = msgpack.packb(params, use_bin_type=True)
        try:
            name = name.append(
                *(
                    blob[i : i + PARAM_COMPONENT_BYTES]
                    for i in range(0, len(blob), PARAM_COMPONENT_BYTES)
                )
            )
        except InvalidName:
            # A command carries its arguments (a file's path, a name) in its name: a long
            # path was refused as "name too long" about a short name (helper-54).
            raise InvalidName(
                f"the arguments of '{verb}' take {len(blob)} bytes, more than a command to "
                f"the node carries (its name holds at most {MAX_NAME_BYTES} bytes): give a "
                "shorter path or name"
            ) from None
    return name


def parse_command(name: Name) -> tuple[str, dict[str, Any]]:
    """Split a command name into verb and parameters; :class:`DecodeError` if malformed."""
    if not PREFIX.is_prefix_of(name) or len(name) <= len(PREFIX):
        raise DecodeError("not a management command")
    verb = name[len(PREFIX)].decode("ascii", "replace")
    rest = b"".join(name.components[len(PREFIX) + 1 :])
    if not rest:
        return verb, {}
    try:
        params = msgpack.unpackb(rest, raw=False, strict_map_key=True)
    except Exception:
        raise DecodeError("command parameters are not msgpack") from None
    if not isinstance(params, dict):
        raise DecodeError("command parameters must be a map")
    return verb, params


def encode_reply(result: dict[str, Any]) -> bytes:
    out: bytes = msgpack.packb(result, use_bin_type=True)
    return out


def decode_reply(content: bytes) -> dict[str, Any]:
    try:
        reply = msgpack.unpackb(content, raw=False, strict_map_key=False)
    except Exception:
        raise DecodeError("management reply is not msgpack") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise DecodeError("management reply is not a map with 'ok'")
    return reply
