"""Configured neighbours: the next hops of ``--route`` and ``route add``, kept connected.

Each neighbour is dialled by its own task and dialled again whenever the connection drops or a
dial fails (after :data:`REDIAL_DELAY`, doubling to :data:`MAX_REDIAL_DELAY`); while it is
connected its routes are in the FIB, and while it is down they are kept here (``route list``
shows them as down, with the last dial error). Discovery's neighbours are ccn/discovery.py's.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from ccn.errors import ConnectError
from ccn.faces.base import Face
from ccn.faces.transport import dial
from ccn.faces.uri import FaceUri
from ccn.mgmt import CommandFailed
from ccn.name import Name

if TYPE_CHECKING:
    from ccn.node import Node

#: How long a node's start waits for its neighbours' first dials (each: until it succeeds or
#: fails); one that is not up by then keeps being dialled in the background.
INITIAL_DIAL_WAIT = 2.0
REDIAL_DELAY = 0.5
MAX_REDIAL_DELAY = 5.0
#: How long ``route add`` waits for the dial it starts.
ROUTE_ADD_WAIT = 3.0


@dataclass
class Neighbour:
    """A configured next hop: dialled, and re-dialled whenever the connection drops."""

    uri: FaceUri
    prefixes: dict[Name, int] = field(default_factory=dict)
    face: Face | None = None
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: Why the last dial failed ("" once connected).
    error: str = ""
    #: Set when the dial in progress (or, between dials, the next one) has succeeded or failed,
    #: then replaced by a fresh event for the dial after it.
    attempt: trio.Event = field(default_factory=trio.Event)
    _pause: trio.CancelScope | None = None

    def up(self, face: Face) -> None:
        self.face = face
        self.error = ""
        self._attempted()

    def dial_failed(self, error: ConnectError) -> None:
        self.error = str(error)
        self._attempted()

    def _attempted(self) -> None:
        self.attempt.set()
        self.attempt = trio.Event()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before the next dial, unless :meth:`dial_now` cuts it short."""
        with trio.CancelScope() as self._pause:
            await trio.sleep(seconds)
        self._pause = None

    def dial_now(self) -> trio.Event:
        """End the wait before the next dial; return the event set when that dial (or the one in
        progress) has succeeded or failed."""
        if self._pause is not None:
            self._pause.cancel()
        return self.attempt


class Neighbours:
    """The node's configured neighbours, by URI, each kept connected by a task of its own."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.table: dict[str, Neighbour] = {}

    def configure(self, prefix: Name, uri: str) -> None:
        """A route from the configuration; its neighbour is dialled by :meth:`start`."""
        self._get(FaceUri.parse(uri)).prefixes[prefix] = 0

    async def start(self) -> None:
        """Dial every configured neighbour; return when each first dial has succeeded or failed
        (at most :data:`INITIAL_DIAL_WAIT`), so the first request after start has its routes."""
        first_dials = [nb.attempt for nb in self.table.values()]
        for nb in self.table.values():
            self.node.nursery.start_soon(self._maintain, nb)
        with trio.move_on_after(INITIAL_DIAL_WAIT):
            for dialled in first_dials:
                await dialled.wait()

    def _get(self, uri: FaceUri) -> Neighbour:
        nb = self.table.get(str(uri))
        if nb is None:
            nb = self.table[str(uri)] = Neighbour(uri)
        return nb

    # -- keeping them connected ------------------------------------------------------------

    async def _maintain(self, nb: Neighbour) -> None:
        if nb.uri.scheme == "udp":
            await self._maintain_udp(nb)
            return
        node = self.node
        delay = REDIAL_DELAY
        with nb.cancel:
            while nb.prefixes:
                try:
                    face = await dial(nb.uri)
                except ConnectError as e:
                    nb.dial_failed(e)
                    await nb.pause(delay)
                    delay = min(MAX_REDIAL_DELAY, delay * 2)
                    continue
                delay = REDIAL_DELAY
                node._attach(face)
                self._up(nb, face)
                try:
                    await face.run(node.receive)
                finally:
                    nb.face = None
                    node._detach(face)
                await nb.pause(REDIAL_DELAY)

    async def _maintain_udp(self, nb: Neighbour) -> None:
        """A ``udp://`` neighbour: a persistent face, remade if it ever closes."""
        with nb.cancel:
            while nb.prefixes:
                try:
                    family = socket.AF_INET6 if ":" in nb.uri.host else socket.AF_INET
                    channel = await self.node.udp_channel(family)
                    face = channel.face_for(await channel.resolve(nb.uri), persistent=True)
                except ConnectError as e:
                    nb.dial_failed(e)
                    await nb.pause(MAX_REDIAL_DELAY)
                    continue
                self._up(nb, face)
                try:
                    await face.wait_closed()
                finally:
                    nb.face = None
                    face.close()
                await nb.pause(REDIAL_DELAY)

    def _up(self, nb: Neighbour, face: Face) -> None:
        """``nb`` is connected through ``face``: its routes go into the FIB."""
        for prefix, cost in nb.prefixes.items():
            self.node.forwarder.add_route(prefix, face.id, cost)
        nb.up(face)

    # -- routes ----------------------------------------------------------------------------

    async def add_route(self, prefix: Name, uri: str, cost: int = 0) -> None:
        """Route ``prefix`` to the neighbour at ``uri``, dialling it if needed; a route whose
        dial fails is not kept (:class:`CommandFailed` says why)."""
        target = FaceUri.parse(uri)
        fresh = str(target) not in self.table
        nb = self._get(target)
        before = nb.prefixes.get(prefix)
        nb.prefixes[prefix] = cost
        if nb.face is not None:
            self.node.forwarder.add_route(prefix, nb.face.id, cost)
            return
        # a new neighbour's first dial, or a known one's next dial now, not after its back-off
        outcome = nb.dial_now()
        if fresh:
            self.node.nursery.start_soon(self._maintain, nb)
        with trio.move_on_after(ROUTE_ADD_WAIT):  # a dial into the void waits for nothing
            await outcome.wait()
        if nb.face is None:
            if fresh:
                nb.cancel.cancel()
                del self.table[str(target)]
            elif before is None:  # a known neighbour, down: the failed command leaves no route
                del nb.prefixes[prefix]
            else:
                nb.prefixes[prefix] = before
            raise CommandFailed(nb.error or f"cannot reach a ccn node at {target}")

    def remove_route(self, prefix: Name, face_spec: str) -> int:
        """Remove the routes for ``prefix`` via the neighbour whose URI or face id is
        ``face_spec``; return how many. A neighbour left without routes is hung up."""
        removed = 0
        for nb in list(self.table.values()):
            matches = face_spec == str(nb.uri) or (
                nb.face is not None and face_spec == str(nb.face.id)
            )
            if matches and nb.prefixes.pop(prefix, None) is not None:
                removed += 1
                if nb.face is not None:
                    self.node.forwarder.remove_route(prefix, nb.face.id)
                if not nb.prefixes:
                    nb.cancel.cancel()
                    del self.table[str(nb.uri)]
        return removed

    # -- what they are doing ---------------------------------------------------------------

    def unreachable(self) -> list[str]:
        """Why each neighbour that is not connected is not (its last dial error)."""
        return [nb.error for nb in self.table.values() if nb.face is None and nb.error]

    def down_routes(self, under: Name | None = None) -> list[dict[str, Any]]:
        """Routes (under ``under``) whose neighbour is not connected, so not in the FIB:
        ``{"prefix", "uri", "error"}`` each (the last dial error, "" before the first)."""
        return [
            {"prefix": str(prefix), "uri": str(nb.uri), "error": nb.error}
            for nb in self.table.values()
            if nb.face is None
            for prefix in nb.prefixes
            if under is None or under.is_prefix_of(prefix)
        ]

    def origins(self) -> dict[tuple[str, int], str]:
        """``(prefix, face id) -> "static <uri>"`` for the routes in the FIB through them."""
        return {
            (str(p), nb.face.id): f"static {nb.uri}"
            for nb in self.table.values()
            if nb.face is not None
            for p in nb.prefixes
        }
