"""Packets: Interest, Data and Nack as frozen values that validate themselves when built.

An invalid packet cannot exist: every constructor checks its fields and raises
:class:`~ccn.errors.InvalidPacket`. Encoding lives in :mod:`ccn.codec`; this module does no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from blake3 import blake3

from ccn.errors import InvalidPacket
from ccn.name import ROOT, Name

DIGEST_SIZE: Final = 32
DEFAULT_LIFETIME_MS: Final = 4000
MAX_LIFETIME_MS: Final = 600_000
DEFAULT_HOP_LIMIT: Final = 32
MAX_HOP_LIMIT: Final = 255
MAX_FRESHNESS_MS: Final = 2**32 - 1
MAX_NONCE: Final = 2**32 - 1


class NackReason(enum.IntEnum):
    """Why an Interest came back. Values are on the wire (see docs/protocol.md)."""

    NO_ROUTE = 1
    DUPLICATE = 2
    CONGESTION = 3
    HOP_LIMIT = 4
    TOO_LARGE = 5
    MALFORMED = 6
    NOT_FOUND = 7
    #: An answer came, but a node on the way refused it: a version record its trust anchors
    #: reject (ccn/trust.py). Added after the first release: an older node drops it as malformed.
    REFUSED = 8


def _check_uint(label: str, value: object, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidPacket(f"{label} must be an integer in [0, {maximum}], got {value!r}")


@dataclass(frozen=True, slots=True, init=False)
class Interest:
    """A request for Data by name.

    ``digest`` restricts the answer to the object whose blake3 id it is; the name is then only a
    locator used for forwarding.
    """

    name: Name
    nonce: int
    lifetime_ms: int = DEFAULT_LIFETIME_MS
    hop_limit: int = DEFAULT_HOP_LIMIT
    can_be_prefix: bool = False
    must_be_fresh: bool = False
    digest: bytes | None = None

    # Written by hand rather than generated: the generated __init__ of a frozen dataclass sets
    # every field through object.__setattr__, which costs as much again as the checks. Clients
    # build one Interest per request.
    def __init__(
        self,
        name: Name,
        nonce: int,
        lifetime_ms: int = DEFAULT_LIFETIME_MS,
        hop_limit: int = DEFAULT_HOP_LIMIT,
        can_be_prefix: bool = False,
        must_be_fresh: bool = False,
        digest: bytes | None = None,
    ) -> None:
        # One boolean expression on the hot path; the slow path says what is wrong.
        if not (
            type(name) is Name
            and type(nonce) is int
            and 0 <= nonce <= MAX_NONCE
            and type(lifetime_ms) is int
            and 0 <= lifetime_ms <= MAX_LIFETIME_MS
            and type(hop_limit) is int
            and 0 <= hop_limit <= MAX_HOP_LIMIT
            and type(can_be_prefix) is bool
            and type(must_be_fresh) is bool
            and (digest is None or (type(digest) is bytes and len(digest) == DIGEST_SIZE))
        ):
            _explain_interest(name, nonce, lifetime_ms, hop_limit, can_be_prefix, must_be_fresh)
        if _NATIVE:  # compiled: native stores, which the frozen check does not see
            self.name = name  # type: ignore[misc]
            self.nonce = nonce  # type: ignore[misc]
            self.lifetime_ms = lifetime_ms  # type: ignore[misc]
            self.hop_limit = hop_limit  # type: ignore[misc]
            self.can_be_prefix = can_be_prefix  # type: ignore[misc]
            self.must_be_fresh = must_be_fresh  # type: ignore[misc]
            self.digest = digest  # type: ignore[misc]
            return
        _i_name(self, name)
        _i_nonce(self, nonce)
        _i_lifetime(self, lifetime_ms)
        _i_hop(self, hop_limit)
        _i_cbp(self, can_be_prefix)
        _i_mbf(self, must_be_fresh)
        _i_digest(self, digest)

    def matches(self, data: Data) -> bool:
        """Whether ``data`` satisfies this Interest (ignoring freshness; see docs/protocol.md)."""
        if self.digest is not None:
            return data.digest == self.digest
        if self.can_be_prefix:
            return self.name.is_prefix_of(data.name)
        return self.name == data.name


def _explain_interest(
    name: object,
    nonce: object,
    lifetime_ms: object,
    hop_limit: object,
    can_be_prefix: object,
    must_be_fresh: object,
) -> None:
    if type(name) is not Name:
        raise InvalidPacket("Interest name must be a Name")
    _check_uint("nonce", nonce, MAX_NONCE)
    _check_uint("lifetime_ms", lifetime_ms, MAX_LIFETIME_MS)
    _check_uint("hop_limit", hop_limit, MAX_HOP_LIMIT)
    if type(can_be_prefix) is not bool or type(must_be_fresh) is not bool:
        raise InvalidPacket("can_be_prefix and must_be_fresh must be bools")
    raise InvalidPacket(f"digest must be {DIGEST_SIZE} bytes")


@dataclass(frozen=True, slots=True, init=False)
class Data:
    """Content, named or nameless.

    Nameless Data (``name == ROOT``) carries an object found by its id only. ``freshness_ms`` is
    how long a cache may treat it as fresh for must-be-fresh Interests (0: never).
    """

    name: Name
    content: bytes
    freshness_ms: int = 0
    _digest: bytes | None = field(default=None, compare=False, repr=False)
    #: The encoding of a small Data, kept by :mod:`ccn.codec` so a cached packet answered many
    #: times is packed once.
    _wire: bytes | None = field(default=None, compare=False, repr=False)

    # Written by hand, as Interest's is; the node builds one Data per packet it decodes.
    def __init__(
        self,
        name: Name,
        content: bytes,
        freshness_ms: int = 0,
        _digest: bytes | None = None,
        _wire: bytes | None = None,
    ) -> None:
        if not (
            type(name) is Name
            and type(content) is bytes
            and type(freshness_ms) is int
            and 0 <= freshness_ms <= MAX_FRESHNESS_MS
        ):
            if type(name) is not Name:
                raise InvalidPacket("Data name must be a Name")
            if type(content) is not bytes:
                raise InvalidPacket("Data content must be bytes")
            _check_uint("freshness_ms", freshness_ms, MAX_FRESHNESS_MS)
        if _NATIVE:  # compiled: native stores, which the frozen check does not see
            self.name = name  # type: ignore[misc]
            self.content = content  # type: ignore[misc]
            self.freshness_ms = freshness_ms  # type: ignore[misc]
            self._digest = _digest  # type: ignore[misc]
            self._wire = _wire  # type: ignore[misc]
            return
        _d_name(self, name)
        _d_content(self, content)
        _d_fresh(self, freshness_ms)
        _d_digest(self, _digest)
        _d_wire(self, _wire)

    @property
    def digest(self) -> bytes:
        """blake3 of the content: the id of the object it carries. Computed once."""
        d = self._digest
        if d is None:
            d = blake3(self.content).digest()
            if _NATIVE:
                self._digest = d  # type: ignore[misc]
            else:
                _d_digest(self, d)
        return d

    @property
    def is_nameless(self) -> bool:
        return self.name is ROOT or not self.name.components


@dataclass(frozen=True, slots=True, init=False)
class Nack:
    """An Interest returned one hop with a reason."""

    interest: Interest
    reason: NackReason

    # Written by hand, as Interest's is (compiled, a generated __init__ would run as Python).
    def __init__(self, interest: Interest, reason: NackReason) -> None:
        if type(interest) is not Interest:
            raise InvalidPacket("Nack must carry an Interest")
        if not isinstance(reason, NackReason):
            raise InvalidPacket("Nack reason must be a NackReason")
        if _NATIVE:  # compiled: native stores, which the frozen check does not see
            self.interest = interest  # type: ignore[misc]
            self.reason = reason  # type: ignore[misc]
            return
        _n_interest(self, interest)
        _n_reason(self, reason)


Packet = Interest | Data | Nack

# -- slot setters, and construction without checks for fields already checked ---------------
#
# The codec checks every field of a packet it decodes as it reads it; building the packet through
# the public constructor would check them all again (and a frozen dataclass's generated
# ``__init__`` sets each field through ``object.__setattr__``). The ``_prechecked_*`` functions
# set the slots directly. Only callers that have checked every field may use them; a test holds
# them to the field lists and to the public constructors.

_new: Final = object.__new__
#: Whether this module runs compiled (mypyc, docs/compiled.md): then the constructors store
#: natively, a constructor call is as cheap as the slot setters below, and ``object.__new__``
#: refuses the compiled classes.
_NATIVE: Final = not __file__.endswith(".py")


def _slot_setter(cls: type, field_name: str) -> Callable[[Any, Any], None]:
    """The setter of a slot, which sets it even on a frozen dataclass."""
    setter: Callable[[Any, Any], None] = getattr(cls, field_name).__set__
    return setter


_i_name: Final = _slot_setter(Interest, "name")
_i_nonce: Final = _slot_setter(Interest, "nonce")
_i_lifetime: Final = _slot_setter(Interest, "lifetime_ms")
_i_hop: Final = _slot_setter(Interest, "hop_limit")
_i_cbp: Final = _slot_setter(Interest, "can_be_prefix")
_i_mbf: Final = _slot_setter(Interest, "must_be_fresh")
_i_digest: Final = _slot_setter(Interest, "digest")
_d_name: Final = _slot_setter(Data, "name")
_d_content: Final = _slot_setter(Data, "content")
_d_fresh: Final = _slot_setter(Data, "freshness_ms")
_d_digest: Final = _slot_setter(Data, "_digest")
_d_wire: Final = _slot_setter(Data, "_wire")
_n_interest: Final = _slot_setter(Nack, "interest")
_n_reason: Final = _slot_setter(Nack, "reason")


def _prechecked_interest(
    name: Name,
    nonce: int,
    lifetime_ms: int,
    hop_limit: int,
    can_be_prefix: bool,
    must_be_fresh: bool,
    digest: bytes | None,
) -> Interest:
    """``Interest(...)`` for fields the caller has already checked: no validation."""
    if _NATIVE:
        return Interest(name, nonce, lifetime_ms, hop_limit, can_be_prefix, must_be_fresh, digest)
    i: Interest = _new(Interest)
    _i_name(i, name)
    _i_nonce(i, nonce)
    _i_lifetime(i, lifetime_ms)
    _i_hop(i, hop_limit)
    _i_cbp(i, can_be_prefix)
    _i_mbf(i, must_be_fresh)
    _i_digest(i, digest)
    return i


def _prechecked_data(name: Name, content: bytes, freshness_ms: int) -> Data:
    """``Data(name, content, freshness_ms)`` for fields the caller has already checked."""
    if _NATIVE:
        return Data(name, content, freshness_ms)
    d: Data = _new(Data)
    _d_name(d, name)
    _d_content(d, content)
    _d_fresh(d, freshness_ms)
    _d_digest(d, None)
    _d_wire(d, None)
    return d
