"""The mapping between NDN names (typed components) and ccn names (byte components).

One rule per component (docs/ndn.md writes it down):

* NDN version ``v=N`` (type 54, shortest NonNegativeInteger, N < 10^18) ⇄ ccn ``vN``;
* NDN generic component ``X`` (type 8) ⇄ ccn ``X``, unless ``X`` is empty, starts with ``~``
  or looks like a ccn version, in which case it is written like any other typed component;
* any other component (segment, keyword, digests, ...) and the exceptions above ⇄ ccn
  ``~T~V``: a tilde, the TLV-TYPE in decimal, a tilde, then the raw value bytes.

So every NDN name that fits ccn's limits (64 components, 255 bytes each, 2048 in all) maps to a
ccn name and back unchanged; ccn components that begin with ``~`` followed by a decimal and a
``~`` are reserved for this mapping. :meth:`ccn.name.Name.parse` reads the NDN URI spellings
(``v=3``, ``seg=5``, ``32=metadata``) into these components; :func:`ndn_uri` and :func:`shown`
write them back for people. Pure; no I/O.
"""

from __future__ import annotations

import re

from ccn.errors import InvalidName
from ccn.name import Name, typed_component
from ccn.ndn.packets import (
    C_GENERIC,
    C_IMPLICIT_DIGEST,
    C_PARAMS_DIGEST,
    C_VERSION,
    NdnName,
    name_to_str,
)
from ccn.ndn.tlv import NdnDecodeError, encode_nonneg

_CCN_VERSION = re.compile(rb"v(0|[1-9][0-9]{0,17})")
_TYPED = re.compile(rb"~([1-9][0-9]{0,4})~", re.DOTALL)

#: The ccn component of an NDN component ``(type, value)``.
component_to_ccn = typed_component


class UnmappableName(NdnDecodeError):
    """An NDN name that has no ccn form (too long, too many or too large components)."""


def component_to_ndn(c: bytes) -> tuple[int, bytes]:
    m = _CCN_VERSION.fullmatch(c)
    if m:
        return (C_VERSION, encode_nonneg(int(m.group(1))))
    m = _TYPED.match(c)
    if m:
        t = int(m.group(1))
        value = c[m.end() :]
        digest = t in (C_IMPLICIT_DIGEST, C_PARAMS_DIGEST)
        if t <= 0xFFFF and (not digest or len(value) == 32):
            return (t, value)
    return (C_GENERIC, c)


def to_ccn(name: NdnName) -> Name:
    """The ccn name of an NDN name; :class:`UnmappableName` if it has none."""
    try:
        return Name(tuple(component_to_ccn(t, v) for t, v in name))
    except InvalidName as e:
        raise UnmappableName(f"NDN name has no ccn form: {e}") from None


def to_ndn(name: Name) -> NdnName:
    return tuple(component_to_ndn(c) for c in name.components)


def ndn_uri(name: Name) -> str:
    """The NDN URI of the NDN name ``name`` maps to (``/a/v=3/seg=0`` for ``/a/v3/~50~%00``):
    how names of NDN content are shown to people. ``Name.parse`` reads it back to ``name``."""
    return name_to_str(to_ndn(name))


def is_typed(c: bytes) -> bool:
    """Is ``c`` one of the reserved ``~T~V`` components that stand for NDN typed components?"""
    return _TYPED.match(c) is not None and component_to_ndn(c) != (C_GENERIC, c)


def shown(name: Name) -> str:
    """A name for a person: ccn's own form (``/a/v3``), unless it holds an NDN typed component
    (``~50~%00``, which only NDN content has), then the NDN URI (``/a/v=3/seg=0``)."""
    if any(is_typed(c) for c in name.components):
        return ndn_uri(name)
    return str(name)
