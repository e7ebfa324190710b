"""What goes into and comes out of the forwarder core: events in, actions out.

The core (:class:`ccn.fw.forwarder.Forwarder`) consumes events and returns actions; the node
turns socket reads into events and actions into socket writes. Face ids are small integers the
node assigns. These are plain frozen values: the packets they carry validated themselves when
they were built, and face ids are the node's own, so building one checks nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ccn.packet import Data, Interest, Nack, _slot_setter

# The events and actions that carry a packet are built once per packet; they have hand-written
# ``__init__`` methods that set their slots directly, since the generated ``__init__`` of a
# frozen dataclass goes through ``object.__setattr__`` for every field (twice the cost).
# The slot setters they use are defined below the classes.

#: Whether this module runs compiled (mypyc; docs/compiled.md).
_NATIVE: Final = not __file__.endswith(".py")

# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaceUp:
    """A face can carry packets. ``local``: an app, management or producer face on this host,
    allowed to use ``/localhost`` and exempt from the hop limit."""

    face_id: int
    local: bool = False


@dataclass(frozen=True, slots=True)
class FaceDown:
    """A face is gone: its routes and in-records are dropped, and Interests sent to it that it
    has not answered are taken as Nacked by it ``no route`` (another next hop, or a Nack
    downstream, at once)."""

    face_id: int


@dataclass(frozen=True, slots=True)
class FaceUnreachable:
    """The face stays up, but its peer is taken to be gone (a ``udp://`` neighbour whose
    liveness probe went unanswered, ccn/neighbours.py): Interests sent to it and not answered
    are settled as on :class:`FaceDown`. Its routes are the node's to remove first."""

    face_id: int


@dataclass(frozen=True, slots=True, init=False)
class InterestIn:
    face_id: int
    interest: Interest

    def __init__(self, face_id: int, interest: Interest) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.interest = interest  # type: ignore[misc]
        else:
            _ii_face(self, face_id)
            _ii_packet(self, interest)


@dataclass(frozen=True, slots=True, init=False)
class DataIn:
    face_id: int
    data: Data

    def __init__(self, face_id: int, data: Data) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.data = data  # type: ignore[misc]
        else:
            _di_face(self, face_id)
            _di_packet(self, data)


@dataclass(frozen=True, slots=True, init=False)
class NackIn:
    face_id: int
    nack: Nack

    def __init__(self, face_id: int, nack: Nack) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.nack = nack  # type: ignore[misc]
        else:
            _ni_face(self, face_id)
            _ni_packet(self, nack)


@dataclass(frozen=True, slots=True)
class DataRefused:
    """``data`` came from upstream ``face_id`` and the node refused it (a version record its
    trust anchors reject): the entries it would satisfy that were sent to ``face_id`` take it
    as a ``refused`` Nack from that face. Nothing is cached or forwarded."""

    face_id: int
    data: Data


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed: handle timers due at ``now`` (the node sends one at ``next_deadline()``)."""


Event = FaceUp | FaceDown | FaceUnreachable | InterestIn | DataIn | NackIn | DataRefused | Tick

# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class SendInterest:
    face_id: int
    interest: Interest

    def __init__(self, face_id: int, interest: Interest) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.interest = interest  # type: ignore[misc]
        else:
            _si_face(self, face_id)
            _si_packet(self, interest)


@dataclass(frozen=True, slots=True, init=False)
class SendData:
    face_id: int
    data: Data

    def __init__(self, face_id: int, data: Data) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.data = data  # type: ignore[misc]
        else:
            _sd_face(self, face_id)
            _sd_packet(self, data)


@dataclass(frozen=True, slots=True, init=False)
class SendNack:
    face_id: int
    nack: Nack

    def __init__(self, face_id: int, nack: Nack) -> None:
        if _NATIVE:  # compiled: native stores (docs/compiled.md)
            self.face_id = face_id  # type: ignore[misc]
            self.nack = nack  # type: ignore[misc]
        else:
            _sn_face(self, face_id)
            _sn_packet(self, nack)


Action = SendInterest | SendData | SendNack

_ii_face: Final = _slot_setter(InterestIn, "face_id")
_ii_packet: Final = _slot_setter(InterestIn, "interest")
_di_face: Final = _slot_setter(DataIn, "face_id")
_di_packet: Final = _slot_setter(DataIn, "data")
_si_face: Final = _slot_setter(SendInterest, "face_id")
_si_packet: Final = _slot_setter(SendInterest, "interest")
_sd_face: Final = _slot_setter(SendData, "face_id")
_sd_packet: Final = _slot_setter(SendData, "data")
_ni_face: Final = _slot_setter(NackIn, "face_id")
_ni_packet: Final = _slot_setter(NackIn, "nack")
_sn_face: Final = _slot_setter(SendNack, "face_id")
_sn_packet: Final = _slot_setter(SendNack, "nack")
