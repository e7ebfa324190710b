"""What goes into and comes out of the forwarder core: events in, actions out.

The core (:class:`ccn.fw.forwarder.Forwarder`) consumes events and returns actions; the node
turns socket reads into events and actions into socket writes. Face ids are small integers the
node assigns. These are plain frozen values: the packets they carry validated themselves when
they were built, and face ids are the node's own, so building one checks nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccn.packet import Data, Interest, Nack

# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaceUp:
    """A face can carry packets. ``local``: an app, management or producer face on this host,
    allowed to use ``/localhost`` and exempt from the hop limit."""

    face_id: int
    local: bool = False


@dataclass(frozen=True, slots=True)
class FaceDown:
    """A face is gone: its routes and pending records are dropped."""

    face_id: int


@dataclass(frozen=True, slots=True)
class InterestIn:
    face_id: int
    interest: Interest


@dataclass(frozen=True, slots=True)
class DataIn:
    face_id: int
    data: Data


@dataclass(frozen=True, slots=True)
class NackIn:
    face_id: int
    nack: Nack


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed: handle timers due at ``now`` (the node sends one at ``next_deadline()``)."""


Event = FaceUp | FaceDown | InterestIn | DataIn | NackIn | Tick

# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendInterest:
    face_id: int
    interest: Interest


@dataclass(frozen=True, slots=True)
class SendData:
    face_id: int
    data: Data


@dataclass(frozen=True, slots=True)
class SendNack:
    face_id: int
    nack: Nack


Action = SendInterest | SendData | SendNack
