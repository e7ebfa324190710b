"""What every face is: an id, a remote address, counters, ``send`` and ``run``.

A face moves packets between the node and one peer. ``send`` never blocks: it queues or, when the
queue is full, drops and counts (a slow peer must not stall the node). ``run`` reads until the
peer goes away and hands each packet to the ``deliver`` callback. Faces never decide anything
about forwarding; that is the forwarder's job.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from mypy_extensions import mypyc_attr

from ccn.errors import LocalError
from ccn.faces.uri import FaceUri
from ccn.packet import Data, Interest, Packet

Deliver = Callable[["Face", Packet], None]

#: Seconds of the node's time a face may spend delivering packets in one scheduling turn before
#: it yields to the other tasks (faces): fairness by time, so a face whose packets are costly (a
#: flood that each open a PIT entry and come back as Nacks) gets no more than one whose packets
#: are cheap (cache hits), and cheap packets are handed over in larger batches.
READ_QUANTUM = 0.0005

_ids: Final = itertools.count(1)


def next_face_id() -> int:
    """Face ids are unique in a process and never reused."""
    return next(_ids)


@dataclass(slots=True)
class FaceCounters:
    in_interests: int = 0
    out_interests: int = 0
    in_data: int = 0
    out_data: int = 0
    in_nacks: int = 0
    out_nacks: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    dropped: int = 0
    malformed: int = 0
    #: Data or Nacks for an Interest the face no longer waits for (an NDN face: it expired)
    late: int = 0

    def count_in(self, packet: Packet) -> None:
        t = type(packet)
        if t is Interest:
            self.in_interests += 1
        elif t is Data:
            self.in_data += 1
        else:
            self.in_nacks += 1

    def count_out(self, packet: Packet) -> None:
        t = type(packet)
        if t is Interest:
            self.out_interests += 1
        elif t is Data:
            self.out_data += 1
        else:
            self.out_nacks += 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@mypyc_attr(allow_interpreted_subclasses=True)  # subclassed by uncompiled code (docs/compiled.md)
class Face(ABC):
    """One link to one peer. Subclasses provide the transport."""

    def __init__(self, remote: str, *, local: bool) -> None:
        self.id = next_face_id()
        self.remote = remote
        self.local = local
        self.counters = FaceCounters()
        self.closed = False
        #: Opened by the peer (accepted on a listener, or a UDP face made on demand), as
        #: opposed to dialled by this node: the node then expects a valid packet soon.
        self.opened_by_peer = False
        self._peer_host: str | None = None

    @property
    def peer_host(self) -> str | None:
        """The network address of a peer on the network that opened this face (a TCP or NDN
        connection, a UDP peer); None for faces to this host and faces this node dialled."""
        if self.local or not self.opened_by_peer:
            return None
        if self._peer_host is None:
            text = self.remote.removeprefix("ndn+")
            try:
                uri = FaceUri.parse(text)
            except LocalError:
                uri = None
            self._peer_host = uri.host if uri is not None and uri.host else text
        return self._peer_host

    @abstractmethod
    def send(self, packet: Packet) -> None:
        """Queue ``packet`` for the peer; drop and count if the queue is full. Never blocks."""

    @abstractmethod
    async def run(self, deliver: Deliver) -> None:
        """Receive until the peer is gone or :meth:`close` is called; then return."""

    @abstractmethod
    def close(self) -> None:
        """Stop the face; ``run`` returns soon after. Idempotent."""

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "remote": self.remote,
            "local": self.local,
            **self.counters.as_dict(),
        }
