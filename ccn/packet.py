"""Packets: Interest, Data and Nack as frozen values that validate themselves when built.

An invalid packet cannot exist: every constructor checks its fields and raises
:class:`~ccn.errors.InvalidPacket`. Encoding lives in :mod:`ccn.codec`; this module does no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from blake3 import blake3

from ccn.errors import InvalidPacket
from ccn.name import ROOT, Name

DIGEST_SIZE = 32
DEFAULT_LIFETIME_MS = 4000
MAX_LIFETIME_MS = 600_000
DEFAULT_HOP_LIMIT = 32
MAX_HOP_LIMIT = 255
MAX_FRESHNESS_MS = 2**32 - 1
MAX_NONCE = 2**32 - 1


class NackReason(enum.IntEnum):
    """Why an Interest came back. Values are on the wire (see docs/protocol.md)."""

    NO_ROUTE = 1
    DUPLICATE = 2
    CONGESTION = 3
    HOP_LIMIT = 4
    TOO_LARGE = 5
    MALFORMED = 6
    NOT_FOUND = 7


def _check_uint(label: str, value: object, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidPacket(f"{label} must be an integer in [0, {maximum}], got {value!r}")


@dataclass(frozen=True, slots=True)
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

    def __post_init__(self) -> None:
        # One boolean expression on the hot path; the slow path says what is wrong.
        d = self.digest
        if not (
            type(self.name) is Name
            and type(self.nonce) is int
            and 0 <= self.nonce <= MAX_NONCE
            and type(self.lifetime_ms) is int
            and 0 <= self.lifetime_ms <= MAX_LIFETIME_MS
            and type(self.hop_limit) is int
            and 0 <= self.hop_limit <= MAX_HOP_LIMIT
            and type(self.can_be_prefix) is bool
            and type(self.must_be_fresh) is bool
            and (d is None or (type(d) is bytes and len(d) == DIGEST_SIZE))
        ):
            self._explain()

    def _explain(self) -> None:
        if type(self.name) is not Name:
            raise InvalidPacket("Interest name must be a Name")
        _check_uint("nonce", self.nonce, MAX_NONCE)
        _check_uint("lifetime_ms", self.lifetime_ms, MAX_LIFETIME_MS)
        _check_uint("hop_limit", self.hop_limit, MAX_HOP_LIMIT)
        if type(self.can_be_prefix) is not bool or type(self.must_be_fresh) is not bool:
            raise InvalidPacket("can_be_prefix and must_be_fresh must be bools")
        raise InvalidPacket(f"digest must be {DIGEST_SIZE} bytes")

    def matches(self, data: Data) -> bool:
        """Whether ``data`` satisfies this Interest (ignoring freshness; see docs/protocol.md)."""
        if self.digest is not None:
            return data.digest == self.digest
        if self.can_be_prefix:
            return self.name.is_prefix_of(data.name)
        return self.name == data.name


@dataclass(frozen=True, slots=True)
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

    def __post_init__(self) -> None:
        f = self.freshness_ms
        if not (
            type(self.name) is Name
            and type(self.content) is bytes
            and type(f) is int
            and 0 <= f <= MAX_FRESHNESS_MS
        ):
            if type(self.name) is not Name:
                raise InvalidPacket("Data name must be a Name")
            if type(self.content) is not bytes:
                raise InvalidPacket("Data content must be bytes")
            _check_uint("freshness_ms", f, MAX_FRESHNESS_MS)

    @property
    def digest(self) -> bytes:
        """blake3 of the content: the id of the object it carries. Computed once."""
        d = self._digest
        if d is None:
            d = blake3(self.content).digest()
            object.__setattr__(self, "_digest", d)
        return d

    @property
    def is_nameless(self) -> bool:
        return self.name is ROOT or not self.name.components


@dataclass(frozen=True, slots=True)
class Nack:
    """An Interest returned one hop with a reason."""

    interest: Interest
    reason: NackReason

    def __post_init__(self) -> None:
        if type(self.interest) is not Interest:
            raise InvalidPacket("Nack must carry an Interest")
        if not isinstance(self.reason, NackReason):
            raise InvalidPacket("Nack reason must be a NackReason")


Packet = Interest | Data | Nack
