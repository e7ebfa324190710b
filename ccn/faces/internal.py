"""An in-process face: packets the forwarder sends to it go straight to a handler.

The node's producer and management are applications like any other, attached to the forwarder
through internal faces (as NFD's internal face carries its management). ``send`` calls the
handler synchronously; the handler answers through the node, which queues the answer behind the
event being processed, so nothing re-enters the forwarder.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ccn.faces.base import Deliver, Face
from ccn.packet import Packet


class InternalFace(Face):
    def __init__(self, remote: str, handler: Callable[[Packet], None]) -> None:
        super().__init__(remote, local=True)
        self._handler = handler

    def send(self, packet: Packet) -> None:
        if self.closed:
            return
        self.counters.count_out(packet)
        self._handler(packet)

    async def run(self, deliver: Deliver) -> None:
        await trio.sleep_forever()

    def close(self) -> None:
        self.closed = True
