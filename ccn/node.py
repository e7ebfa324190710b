"""The node: faces, the forwarder core, the store and its producer, management — one nursery.

Packets arriving on any face are turned into forwarder events and handled at once (the core is
synchronous and never awaits, so it is effectively one task); the resulting actions are handed
to faces, whose ``send`` never blocks. One timer task ticks the core at ``next_deadline()``.
Answers from internal faces (producer, management) are queued behind the event being handled,
so the forwarder is never re-entered.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio

from ccn.config import NodeConfig
from ccn.errors import ConnectError
from ccn.faces.base import Face
from ccn.faces.transport import dial, open_listener, serve
from ccn.faces.uri import FaceUri
from ccn.fw.actions import (
    DataIn,
    Event,
    FaceDown,
    FaceUp,
    InterestIn,
    NackIn,
    SendData,
    SendInterest,
    SendNack,
    Tick,
)
from ccn.fw.forwarder import Forwarder, ForwarderConfig
from ccn.mgmt import CommandFailed, Management
from ccn.mgmt_proto import PREFIX as MGMT_PREFIX
from ccn.name import Name
from ccn.packet import Data, Interest, Packet
from ccn.producer import Producer
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import DiskRefStore

MAX_TICK_INTERVAL = 0.5
INITIAL_DIAL_WAIT = 2.0
REDIAL_DELAY = 0.5
MAX_REDIAL_DELAY = 5.0


@dataclass
class _Neighbour:
    """A configured next hop: dialled, and re-dialled whenever the connection drops."""

    uri: FaceUri
    prefixes: dict[Name, int] = field(default_factory=dict)
    face: Face | None = None
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)
    connected: trio.Event = field(default_factory=trio.Event)


class Node:
    def __init__(self, config: NodeConfig) -> None:
        config.validate()
        self.config = config
        config.store.mkdir(parents=True, exist_ok=True)
        self.store = DiskObjectStore(config.store, fsync=config.fsync)
        self.refs = DiskRefStore(config.store)
        self.forwarder = Forwarder(
            ForwarderConfig(
                cs_max_bytes=config.cs_bytes,
                cs_max_entries=config.cs_max_entries,
                pit_max_entries=config.pit_max_entries,
                pit_max_per_face=config.pit_max_per_face,
            )
        )
        self.faces: dict[int, Face] = {}
        self.neighbours: dict[str, _Neighbour] = {}
        self.bound: list[FaceUri] = []
        self.producer = Producer(self.store, self.refs, self.inject)
        self.management = Management(self)
        self._queue: deque[Event] = deque()
        self._busy = False
        self._timer_wake = trio.Event()
        self._sleeping_until = 0.0
        self._nursery: trio.Nursery | None = None

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None, "the node is not running"
        return self._nursery

    # -- running ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[list[FaceUri]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen, dial configured routes, serve until cancelled. Reports the bound addresses."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._attach(self.producer.face)
                self._attach(self.management.face)
                self.forwarder.add_route(MGMT_PREFIX, self.management.face.id, 0)
                for name in self.refs.names(None):
                    self.forwarder.add_route(name, self.producer.face.id, 0)
                for text in self.config.listen:
                    listener, bound = await open_listener(FaceUri.parse(text))
                    self.bound.append(bound)
                    nursery.start_soon(serve, listener, bound, self._serve_face)
                for prefix, uri in self.config.routes:
                    self._neighbour(FaceUri.parse(uri)).prefixes[prefix] = 0
                for nb in self.neighbours.values():
                    nursery.start_soon(self._maintain, nb)
                nursery.start_soon(self._timer_loop)
                # Give configured neighbours a moment so the first request after start has its
                # routes; one that is not up yet keeps being re-dialled in the background.
                with trio.move_on_after(INITIAL_DIAL_WAIT):
                    for nb in list(self.neighbours.values()):
                        await nb.connected.wait()
                task_status.started(list(self.bound))
        finally:
            self.store.close()

    async def _serve_face(self, face: Face) -> None:
        self._attach(face)
        try:
            await face.run(self.receive)
        finally:
            self._detach(face)

    def _attach(self, face: Face) -> None:
        self.faces[face.id] = face
        self.process(FaceUp(face.id, face.local))

    def _detach(self, face: Face) -> None:
        face.close()
        if self.faces.pop(face.id, None) is not None:
            self.process(FaceDown(face.id))

    # -- the core --------------------------------------------------------------------------

    def receive(self, face: Face, packet: Packet) -> None:
        """A face delivered a packet (the face has counted it)."""
        self._dispatch_in(face.id, packet)

    def inject(self, face_id: int, packet: Packet) -> None:
        """An internal face (producer, management) answers."""
        face = self.faces.get(face_id)
        if face is not None:
            face.counters.count_in(packet)
        self._dispatch_in(face_id, packet)

    def _dispatch_in(self, face_id: int, packet: Packet) -> None:
        if type(packet) is Interest:
            self.process(InterestIn(face_id, packet))
        elif type(packet) is Data:
            self.process(DataIn(face_id, packet))
        else:
            self.process(NackIn(face_id, packet))  # type: ignore[arg-type]

    def process(self, event: Event) -> None:
        queue = self._queue
        queue.append(event)
        if self._busy:
            return
        self._busy = True
        try:
            handle = self.forwarder.handle
            faces = self.faces
            while queue:
                now = trio.current_time()
                for action in handle(queue.popleft(), now):
                    face = faces.get(action.face_id)
                    if face is None:
                        continue
                    if type(action) is SendData:
                        face.send(action.data)
                    elif type(action) is SendInterest:
                        face.send(action.interest)
                    elif type(action) is SendNack:
                        face.send(action.nack)
        finally:
            self._busy = False
        deadline = self.forwarder.next_deadline()
        if deadline is not None and deadline < self._sleeping_until:
            self._timer_wake.set()

    async def _timer_loop(self) -> None:
        """Tick the core at its next deadline; woken early only if that deadline moves up."""
        while True:
            now = trio.current_time()
            deadline = self.forwarder.next_deadline()
            until = now + MAX_TICK_INTERVAL
            if deadline is not None:
                until = min(until, deadline)
            self._sleeping_until = until
            with trio.move_on_at(until):
                await self._timer_wake.wait()
            self._timer_wake = trio.Event()
            if trio.current_time() >= until:
                self.process(Tick())

    # -- routes and neighbours -------------------------------------------------------------

    def _neighbour(self, uri: FaceUri) -> _Neighbour:
        nb = self.neighbours.get(str(uri))
        if nb is None:
            nb = self.neighbours[str(uri)] = _Neighbour(uri)
        return nb

    async def _maintain(self, nb: _Neighbour) -> None:
        delay = REDIAL_DELAY
        with nb.cancel:
            while nb.prefixes:
                try:
                    face = await dial(nb.uri)
                except ConnectError:
                    await trio.sleep(delay)
                    delay = min(MAX_REDIAL_DELAY, delay * 2)
                    continue
                delay = REDIAL_DELAY
                nb.face = face
                self._attach(face)
                for prefix, cost in nb.prefixes.items():
                    self.forwarder.add_route(prefix, face.id, cost)
                nb.connected.set()
                try:
                    await face.run(self.receive)
                finally:
                    nb.face = None
                    nb.connected = trio.Event()
                    self._detach(face)
                await trio.sleep(REDIAL_DELAY)

    async def add_route(self, prefix: Name, uri: str, cost: int = 0) -> None:
        """Route ``prefix`` to the neighbour at ``uri``, dialling it if needed."""
        target = FaceUri.parse(uri)
        nb = self.neighbours.get(str(target))
        fresh = nb is None
        nb = self._neighbour(target)
        nb.prefixes[prefix] = cost
        if nb.face is not None:
            self.forwarder.add_route(prefix, nb.face.id, cost)
            return
        if fresh:
            self.nursery.start_soon(self._maintain, nb)
        with trio.move_on_after(3):
            await nb.connected.wait()
        if nb.face is None:
            if fresh:
                nb.cancel.cancel()
                del self.neighbours[str(target)]
            raise CommandFailed(f"cannot reach a ccn node at {target}")

    def remove_route(self, prefix: Name, face_spec: str) -> int:
        """Remove routes for ``prefix`` via a face id or neighbour uri; return how many."""
        removed = 0
        for nb in list(self.neighbours.values()):
            matches = face_spec == str(nb.uri) or (
                nb.face is not None and face_spec == str(nb.face.id)
            )
            if matches and nb.prefixes.pop(prefix, None) is not None:
                removed += 1
                if nb.face is not None:
                    self.forwarder.remove_route(prefix, nb.face.id)
                if not nb.prefixes:
                    nb.cancel.cancel()
                    del self.neighbours[str(nb.uri)]
        if not removed and face_spec.isdigit() and int(face_spec) in self.faces:
            with contextlib.suppress(KeyError, ValueError):
                if self.forwarder.remove_route(prefix, int(face_spec)):
                    removed = 1
        return removed

    def on_published(self, name: Name) -> None:
        self.forwarder.add_route(name, self.producer.face.id, 0)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        fw = self.forwarder.status()
        stats = self.store.stats()
        p = self.producer.counters
        return {
            "listen": [str(b) for b in self.bound],
            "faces": [f.info() for f in self.faces.values()],
            "fib": fw["fib"],
            "pit": fw["pit"],
            "cs": fw["cs"],
            "forwarder": fw.get("counters", {}),
            "producer": {
                "interests": p.interests,
                "data": p.data,
                "nacks": p.nacks,
                "bytes": p.bytes,
            },
            "store": {"objects": stats.objects, "bytes": stats.bytes},
        }
