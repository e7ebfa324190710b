"""The store-backed producer: answers Interests for names published on this node.

* ``/name/vN`` — the version record, freshness 0: it never changes, so exact Interests (which
  do not ask for fresh Data) may take it from any cache, but a must-be-fresh "latest" Interest
  for ``/name`` must not (a CS would answer it with whatever version it holds);
* ``/name`` with can-be-prefix — the latest version record, short freshness, so that
  must-be-fresh Interests see a new version within :data:`LATEST_FRESHNESS_MS`;
* any Interest with a digest restriction under a published name — the object with that id,
  as nameless Data.

Anything else gets a ``not-found`` Nack, so a consumer fails at once instead of timing out.
Reads are synchronous: objects are small (one packet) and usually in the page cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ccn.errors import InvalidName, StoreError
from ccn.faces.internal import InternalFace
from ccn.name import ROOT
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.store.objstore import ObjectStore
from ccn.store.refs import RefStore

LATEST_FRESHNESS_MS: Final = 1000
VERSION_FRESHNESS_MS: Final = 0


@dataclass
class ProducerCounters:
    interests: int = 0
    data: int = 0
    nacks: int = 0
    bytes: int = 0


class Producer:
    def __init__(
        self, store: ObjectStore, refs: RefStore, answer: Callable[[int, Packet], None]
    ) -> None:
        self.store = store
        self.refs = refs
        self.counters = ProducerCounters()
        self._answer = answer
        self.face = InternalFace("internal://producer", self._on_packet)

    def _on_packet(self, packet: Packet) -> None:
        if type(packet) is Interest:
            reply = self.answer(packet)
            if type(reply) is Data:
                self.counters.data += 1
                self.counters.bytes += len(reply.content)
            else:
                self.counters.nacks += 1
            self._answer(self.face.id, reply)

    def answer(self, interest: Interest) -> Data | Nack:
        self.counters.interests += 1
        name = interest.name
        try:
            if interest.digest is not None:
                if self.store.has(interest.digest):
                    return Data(ROOT, self.store.get(interest.digest))
            elif (number := name.version) is not None:
                vid = self.refs.get(name.unversioned(), number)
                if vid is not None:
                    return Data(name, self.store.get(vid), VERSION_FRESHNESS_MS)
            elif interest.can_be_prefix:
                latest = self.refs.latest(name)
                if latest is not None:
                    number, vid = latest
                    return Data(name.with_version(number), self.store.get(vid), LATEST_FRESHNESS_MS)
        except (StoreError, InvalidName):  # missing, corrupt, or no ref name (/x/v0, /v1, /)
            pass
        return Nack(interest, NackReason.NOT_FOUND)
