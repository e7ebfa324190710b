"""The NDN gateway of a node: NDN listeners, NFD-style prefix registration, and ccn content
served to NDN consumers as segments; plus reassembly of NDN segmented content for ccn consumers.

What NDN consumers see of a ccn file version ``/a/b/vN`` (docs/ndn.md):

* ``/a/b/v=N/seg=K`` — fixed slices of :data:`SEGMENT_SIZE` bytes of the file content (fewer
  under a name so long that a segment would pass NDN's packet limit), the last one carrying
  ``FinalBlockId``; an Interest for ``/a/b`` (CanBePrefix) gets segment 0 of the
  latest version;
* ``/a/b/32=metadata`` (CanBePrefix, MustBeFresh) — RDR metadata whose content is the Name
  ``/a/b/v=N``;

all signed with DigestSha256 and carrying a FreshnessPeriod. NDN Interests are first handed to
the forwarder like any other (an NDN producer registered here or behind a ccn neighbour may own
the name); the gateway answers when the answer is a ccn version record, or when a segment or
metadata Interest comes back not-found. The gateway reads ccn content through the forwarder from
an internal face, like any consumer, so it works for content published on other nodes too, and
caches each version's layout (leaf blob ids and offsets) and recently used blobs.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import trio

from ccn.client import Client, new_nonce
from ccn.errors import CcnError, FetchError, InvalidObject, VerificationError
from ccn.faces.base import Deliver, Face
from ccn.faces.internal import InternalFace
from ccn.faces.ndn import InterestWires, NdnFace, PendingInterest, unwrap_ndn_data
from ccn.faces.transport import (
    Say,
    accept_forever,
    accepted_peer,
    open_listener,
    remove_socket,
)
from ccn.faces.uri import FaceUri
from ccn.fetch import Pipeline, partial_path, remove_stale_partials, resolve, stream_errors
from ccn.name import Name
from ccn.ndn import lp, mgmt
from ccn.ndn.names import component_to_ccn, ndn_uri, to_ccn, to_ndn
from ccn.ndn.packets import (
    C_SEGMENT,
    C_VERSION,
    METADATA,
    NdnData,
    component_number,
    encode_data,
    encode_name,
    segment,
    version,
)
from ccn.ndn.tlv import MAX_PACKET_SIZE, NdnDecodeError
from ccn.packet import Data, Interest, Nack, NackReason, Packet
from ccn.store.objects import Kind, Manifest, Version, blob_payload, decode

if TYPE_CHECKING:
    from ccn.node import Node

#: Bytes of file content per NDN segment: a segment Data stays under NDN's 8800-byte limit
#: (:func:`segment_size`: fewer under a long name).
SEGMENT_SIZE = 8000
#: Under a name too long for segments of at least this many bytes, a version is not served.
MIN_SEGMENT_SIZE = 1024
SEGMENT_FRESHNESS_MS = 10_000
METADATA_FRESHNESS_MS = 1000
COMMAND_FRESHNESS_MS = 1000
MAX_LAYOUTS = 256
#: Leaf blobs one layout may list (≈ 80 GB of content at the mean chunk size), and all cached
#: layouts together: manifests may share sub-manifests, so a few small objects could otherwise
#: describe billions of leaves and stall the node while it expands them.
MAX_LAYOUT_LEAVES = 1 << 20
MAX_CACHED_LEAVES = 4 << 20
#: Prefixes one NDN app (face) may register.
MAX_REGISTERED = 1024
#: Segment and metadata requests one NDN face may have the gateway working on at once (each
#: is a task until answered or its lifetime ends); past it, an Interest is Nacked "congestion":
#: a flood must not grow the node's tasks and memory without bound.
MAX_SERVING_PER_FACE = 256
BLOB_CACHE_BYTES = 32 << 20
#: The NFD management commands the node answers; anything else gets 501.
_RIB_COMMANDS = {(b"rib", b"register"), (b"rib", b"unregister")}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the bytes of one file version are: leaf blobs in order and their start offsets."""

    versioned: Name
    size: int
    leaves: tuple[bytes, ...]
    offsets: tuple[int, ...]
    #: Bytes of content per segment (:func:`segment_size`)
    segment_size: int = SEGMENT_SIZE

    @property
    def segments(self) -> int:
        return max(1, -(-self.size // self.segment_size))

    def leaves_for(self, seg: int) -> tuple[int, int, range]:
        """Byte range of segment ``seg`` and the indexes of the leaves it overlaps."""
        start = seg * self.segment_size
        stop = min(start + self.segment_size, self.size)
        if stop <= start:
            return start, start, range(0)
        first = bisect.bisect_right(self.offsets, start) - 1
        last = bisect.bisect_left(self.offsets, stop) - 1
        return start, stop, range(first, last + 1)


class _AppSide(Face):
    """The gateway's consumer end of its internal face: what it sends goes into the node."""

    def __init__(self, inject: Callable[[Packet], None]) -> None:
        super().__init__("internal://ndn-gateway", local=True)
        self._inject = inject

    def send(self, packet: Packet) -> None:
        self._inject(packet)

    async def run(self, deliver: Deliver) -> None:
        await trio.sleep_forever()

    def close(self) -> None:
        self.closed = True


class NdnGateway:
    """The NDN side of one node. Start it with ``await nursery.start(gateway.run, uris)``."""

    def __init__(self, node: Node, say: Say | None = None) -> None:
        self.node = node
        #: Where a line for the node's operator goes (listeners that cannot accept).
        self.say = say
        self.wires = InterestWires()
        self.bound: list[FaceUri] = []
        self._layouts: OrderedDict[Name, Layout] = OrderedDict()
        self._cached_leaves = 0
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()
        self._blob_bytes = 0
        self._nursery: trio.Nursery | None = None
        node_side = InternalFace("internal://ndn-gateway", self._to_app)
        self._node_side = node_side
        self._app_side = _AppSide(lambda p: node.inject(node_side.id, p))
        self.client = Client(self._app_side)
        self.served_segments = 0
        #: Requests Nacked "congestion" because their face had MAX_SERVING_PER_FACE in hand.
        self.refused_busy = 0
        self._serving: dict[int, int] = {}

    def _to_app(self, packet: Packet) -> None:
        self.client._deliver(self._app_side, packet)

    async def run(
        self,
        uris: list[FaceUri],
        *,
        task_status: trio.TaskStatus[list[FaceUri]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``uris`` for NDN apps and serve until cancelled; report the bound addresses."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.node._attach(self._node_side)
            for uri in uris:
                listener, bound = await open_listener(uri)
                self.bound.append(bound)
                nursery.start_soon(self._serve, listener, bound)
            task_status.started(list(self.bound))

    async def _serve(self, listener: trio.SocketListener, bound: FaceUri) -> None:
        async def handle(stream: trio.SocketStream) -> None:
            if bound.scheme == "tcp":
                peer = await accepted_peer(stream)
                if peer is None:
                    return
                remote, local = f"ndn+{peer[0]}", peer[1]
            else:
                remote, local = f"ndn+unix://{bound.path}#peer", True
            face = NdnFace(stream, remote, local=local, host=self)
            face.opened_by_peer = True
            await self.node._serve_face(face)

        try:
            await accept_forever(listener, bound, handle, self.say)
        finally:
            remove_socket(bound)

    def _spawn(
        self,
        fn: Callable[..., Awaitable[None]],
        face: NdnFace,
        pending: PendingInterest,
        *args: object,
    ) -> None:
        """Serve ``pending`` in a task of its own (``fn(face, pending, *args)``), unless its face
        has MAX_SERVING_PER_FACE of them already: then Nack it "congestion"."""
        assert self._nursery is not None
        busy = self._serving.get(face.id, 0)
        if busy >= MAX_SERVING_PER_FACE:
            self.refused_busy += 1
            face.nack(pending, lp.NACK_CONGESTION)
            return
        self._serving[face.id] = busy + 1
        self._nursery.start_soon(self._serve_one, fn, face, pending, *args)

    async def _serve_one(
        self,
        fn: Callable[..., Awaitable[None]],
        face: NdnFace,
        pending: PendingInterest,
        *args: object,
    ) -> None:
        try:
            await fn(face, pending, *args)
        finally:
            left = self._serving[face.id] - 1
            if left:
                self._serving[face.id] = left
            else:
                del self._serving[face.id]

    # -- NdnHost ------------------------------------------------------------------------------

    def on_interest(self, face: NdnFace, pending: PendingInterest) -> bool:
        name = pending.ndn.name
        if mgmt.is_command(name):
            self._command(face, pending)
            return True
        shape = _segment_shape(pending)
        if shape is not None:
            layout = self._layouts.get(shape[0])
            if layout is not None:
                self._layouts.move_to_end(shape[0])
                self._spawn(self._serve_segment, face, pending, shape[0], shape[1], None)
                return True
        return False

    def on_ccn_data(self, face: NdnFace, pending: PendingInterest, data: Data) -> bool:
        got = data.name
        if got.version is None or not pending.ccn.can_be_prefix:
            return False
        try:
            record = decode(data.content)
        except InvalidObject:
            return False
        if type(record) is not Version or record.full_name != got:
            return False
        self._spawn(self._serve_segment, face, pending, got, 0, record)
        return True

    def on_ccn_nack(self, face: NdnFace, pending: PendingInterest, nack: Nack) -> bool:
        if nack.reason not in (NackReason.NOT_FOUND, NackReason.NO_ROUTE):
            return False
        name = pending.ndn.name
        if len(name) >= 2 and name[-1] == METADATA:
            if not pending.ndn.can_be_prefix:  # the answer, …/32=metadata/v=…, would not match
                return False
            self._spawn(self._serve_metadata, face, pending)
            return True
        shape = _segment_shape(pending)
        if shape is not None:
            self._spawn(self._serve_segment, face, pending, shape[0], shape[1], None)
            return True
        return False

    # -- management ---------------------------------------------------------------------------

    def _command(self, face: NdnFace, pending: PendingInterest) -> None:
        name = pending.ndn.name
        params = mgmt.ControlParameters()
        try:
            if not face.local:
                # Signatures are not checked, so, as NFD without localhop_security does, only
                # apps on this host may route: a peer on the network could fill the FIB.
                raise mgmt.CommandRejected(403, "prefix registration only from local faces")
            # What is not rib/register|unregister is unsupported, datasets (status/general,
            # faces/list: four components, no parameters) too, before it is malformed.
            if len(name) >= 4 and (name[2][1], name[3][1]) not in _RIB_COMMANDS:
                raise mgmt.CommandRejected(501, "unsupported command")
            command = mgmt.parse_command(name)
            params = command.params
            if params.name is None:
                raise mgmt.CommandRejected(400, "ControlParameters need a Name", params)
            if params.face_id not in (None, 0, face.id):
                raise mgmt.CommandRejected(410, "only the requesting face can be routed", params)
            try:
                prefix = to_ccn(params.name)
            except NdnDecodeError as e:
                raise mgmt.CommandRejected(400, str(e), params) from None
            cost = params.cost or 0
            if command.verb == b"register":
                if prefix not in face.registered and len(face.registered) >= MAX_REGISTERED:
                    raise mgmt.CommandRejected(
                        403, f"at most {MAX_REGISTERED} prefixes per face", params
                    )
                self.node.forwarder.add_route(prefix, face.id, cost)
                face.registered.add(prefix)
            else:
                self.node.forwarder.remove_route(prefix, face.id)
                face.registered.discard(prefix)
            params = mgmt.ControlParameters(
                params.name,
                face.id,
                params.origin if params.origin is not None else mgmt.ORIGIN_APP,
                cost,
                params.flags if params.flags is not None else mgmt.ROUTE_FLAG_CHILD_INHERIT,
                None,
            )
            content = mgmt.control_response(200, "OK", params)
        except mgmt.CommandRejected as e:
            content = mgmt.control_response(e.code, e.text, e.params)
        except CcnError as e:
            content = mgmt.control_response(500, str(e), params)
        face.reply(pending, encode_data(name, content, freshness_ms=COMMAND_FRESHNESS_MS))

    # -- serving ccn content as NDN segments --------------------------------------------------

    async def _serve_segment(
        self,
        face: NdnFace,
        pending: PendingInterest,
        versioned: Name,
        seg: int,
        record: Version | None,
    ) -> None:
        with trio.move_on_after(pending.ccn.lifetime_ms / 1000):  # capped
            try:
                layout = await self._layout(versioned, record)
                if layout is None or seg >= layout.segments:
                    face.nack(pending, lp.NACK_NO_ROUTE)
                    return
                content = await self._segment_bytes(layout, seg)
            except CcnError:
                face.nack(pending, lp.NACK_NO_ROUTE)
                return
            name = (*to_ndn(versioned), segment(seg))
            wire = encode_data(
                name,
                content,
                freshness_ms=SEGMENT_FRESHNESS_MS,
                final_block_id=segment(layout.segments - 1),
            )
            self.served_segments += 1
            face.reply(pending, wire)

    async def _layout(self, versioned: Name, record: Version | None) -> Layout | None:
        layout = self._layouts.get(versioned)
        if layout is not None:
            return layout
        if record is None:
            got, record = await resolve(self.client, versioned)
            if got != versioned:
                return None
        if record.root_kind == Kind.TREE:
            return None
        seg_size = segment_size(versioned, record.size)
        if seg_size < MIN_SEGMENT_SIZE:
            return None
        leaves: list[tuple[bytes, int]] = []
        if record.root_kind == Kind.BLOB:
            leaves.append((record.root, record.size))
        else:
            pipe = Pipeline(self.client, versioned)
            manifests = await _fetch_manifests(pipe, record.root)
            stack = [iter(manifests[record.root].entries)]
            while stack:
                p = next(stack[-1], None)
                if p is None:
                    stack.pop()
                elif p.kind == Kind.BLOB:
                    leaves.append((p.id, p.size))
                    if len(leaves) % 8192 == 0:
                        if len(leaves) > MAX_LAYOUT_LEAVES:
                            raise VerificationError(
                                f"{versioned}: more than {MAX_LAYOUT_LEAVES} pieces to serve"
                            )
                        await trio.lowlevel.checkpoint()  # let the node forward meanwhile
                else:
                    stack.append(iter(manifests[p.id].entries))
        offsets = []
        at = 0
        for _id, size in leaves:
            offsets.append(at)
            at += size
        if at != record.size:
            raise VerificationError(f"{versioned}: manifest sizes do not add up")
        layout = Layout(versioned, at, tuple(i for i, _ in leaves), tuple(offsets), seg_size)
        replaced = self._layouts.pop(versioned, None)  # expanded twice at once
        if replaced is not None:
            self._cached_leaves -= len(replaced.leaves)
        self._layouts[versioned] = layout
        self._cached_leaves += len(layout.leaves)
        while len(self._layouts) > MAX_LAYOUTS or self._cached_leaves > MAX_CACHED_LEAVES:
            _, old = self._layouts.popitem(last=False)
            self._cached_leaves -= len(old.leaves)
        return layout

    async def _segment_bytes(self, layout: Layout, seg: int) -> bytes:
        start, stop, indexes = layout.leaves_for(seg)
        missing = [layout.leaves[i] for i in indexes if layout.leaves[i] not in self._blobs]
        if missing:
            got: dict[bytes, bytes] = {}

            def keep(i: int, raw: bytes) -> None:
                try:
                    got[missing[i]] = bytes(blob_payload(raw))
                except InvalidObject as e:
                    raise VerificationError(f"expected a blob: {e}") from None

            await Pipeline(self.client, layout.versioned).fetch_ordered(missing, keep)
            for oid, payload in got.items():
                self._cache_blob(oid, payload)
        parts = []
        for i in indexes:
            cached = self._blobs.get(layout.leaves[i])
            if cached is None:  # evicted meanwhile: read it again
                return await self._segment_bytes(layout, seg)
            self._blobs.move_to_end(layout.leaves[i])
            base = layout.offsets[i]
            parts.append(cached[max(0, start - base) : stop - base])
        return b"".join(parts)

    def _cache_blob(self, oid: bytes, payload: bytes) -> None:
        if oid in self._blobs:
            return
        self._blobs[oid] = payload
        self._blob_bytes += len(payload)
        while self._blob_bytes > BLOB_CACHE_BYTES and len(self._blobs) > 1:
            _, old = self._blobs.popitem(last=False)
            self._blob_bytes -= len(old)

    async def _serve_metadata(self, face: NdnFace, pending: PendingInterest) -> None:
        prefix_ndn = pending.ndn.name[:-1]
        with trio.move_on_after(pending.ccn.lifetime_ms / 1000):  # capped
            try:
                # NDN's MustBeFresh: "latest" is what the producer says, never an older copy
                versioned, record = await resolve(
                    self.client, to_ccn(prefix_ndn), newest_seen=False
                )
                layout = await self._layout(versioned, record)
            except CcnError:
                layout = None
            if layout is None:  # not served as segments (a directory version): no metadata
                face.nack(pending, lp.NACK_NO_ROUTE)
                return
            name = (*pending.ndn.name, version(time.time_ns() // 1000), segment(0))
            wire = encode_data(
                name,
                encode_name(to_ndn(versioned)),
                freshness_ms=METADATA_FRESHNESS_MS,
                final_block_id=segment(0),
            )
            face.reply(pending, wire)


def segment_size(versioned: Name, size: int) -> int:
    """Bytes of content per segment of the file version ``versioned`` (``size`` bytes): at most
    :data:`SEGMENT_SIZE`, and few enough that its largest segment Data, name and all, stays
    within NDN's packet limit."""
    last = segment(max(size, 1))  # a number no segment of it exceeds
    empty = encode_data(
        (*to_ndn(versioned), last), b"", freshness_ms=SEGMENT_FRESHNESS_MS, final_block_id=last
    )
    # Content adds its bytes, and at most 2 more to its own length field and 2 to the Data's.
    return min(SEGMENT_SIZE, MAX_PACKET_SIZE - len(empty) - 4)


def _segment_shape(pending: PendingInterest) -> tuple[Name, int] | None:
    """``(ccn versioned name, segment)`` for ``P/v=N/seg=K``, or ``P/v=N`` with CanBePrefix."""
    name = pending.ndn.name
    try:
        if len(name) >= 3 and name[-1][0] == C_SEGMENT and name[-2][0] == C_VERSION:
            versioned = to_ccn(name[:-1])
            seg = component_number(name[-1])
        elif len(name) >= 2 and name[-1][0] == C_VERSION and pending.ndn.can_be_prefix:
            versioned, seg = to_ccn(name), 0
        else:
            return None
    except NdnDecodeError:
        return None
    if versioned.version is None:
        return None
    # The answer is named canonically (/v=N/seg=K, shortest numbers): an Interest that spells a
    # number otherwise would get Data whose name it does not match.
    if tuple(name) != (*to_ndn(versioned), segment(seg))[: len(name)]:
        return None
    return versioned, seg


async def _fetch_manifests(pipe: Pipeline, root: bytes) -> dict[bytes, Manifest]:
    found: dict[bytes, Manifest] = {}
    level = [root]
    while level:
        level = list(dict.fromkeys(i for i in level if i not in found))
        objs: list[Manifest] = []

        def keep(_i: int, raw: bytes, objs: list[Manifest] = objs) -> None:
            try:
                obj = decode(raw)
            except InvalidObject as e:
                raise VerificationError(f"malformed object: {e}") from None
            if type(obj) is not Manifest:
                raise VerificationError("expected a manifest")
            objs.append(obj)

        await pipe.fetch_ordered(level, keep)
        nxt: list[bytes] = []
        for oid, obj in zip(level, objs, strict=True):
            found[oid] = obj
            nxt.extend(p.id for p in obj.entries if p.kind == Kind.MANIFEST)
        level = nxt
    return found


# -- ccn consumers of NDN content --------------------------------------------------------------

FETCH_WINDOW = 32


def _ndn_answer(data: Data, what: Name) -> NdnData:
    ndn = unwrap_ndn_data(data)
    if ndn is None:
        raise VerificationError(f"{ndn_uri(what)}: answer is not NDN content")
    if ndn.signature_type == 0 and not ndn.digest_valid():
        raise VerificationError(f"{ndn_uri(data.name)}: bad DigestSha256 signature")
    return ndn


async def is_ndn_content(client: Client, name: Name) -> bool:
    """Is what answers ``name`` with can-be-prefix NDN content? One Interest, no retries; any
    failure is ``False`` (the caller then asks the ccn way, which says what went wrong). For
    ``ccn get /n/v=N``: a ccn node answers it with the version record (as the exact Interest a
    ccn fetch sends, which then comes from the CS), an NDN producer with ``/n/v=N/seg=0``."""
    try:
        data = await client.express(Interest(name, new_nonce(), can_be_prefix=True), retries=0)
    except FetchError:
        return False
    return unwrap_ndn_data(data) is not None


async def fetch_ndn(client: Client, name: Name, sink: Callable[[bytes], object]) -> Name | None:
    """Fetch NDN content under ``name`` (segmented or not), in order, into ``sink``.

    Returns the name of the (first) NDN Data in ccn form, or ``None`` if what answers ``name`` is
    not NDN content (then nothing was written).
    """
    first = await client.express(
        Interest(name, new_nonce(), can_be_prefix=True, must_be_fresh=True)
    )
    if unwrap_ndn_data(first) is None:
        return None
    ndn = _ndn_answer(first, name)
    if not ndn.name or ndn.name[-1][0] != C_SEGMENT or first.name == name:
        # unsegmented, or the very segment asked for (/n/v=7/seg=3, as ndnpeek): itself alone
        sink(ndn.content)
        return first.name
    prefix = first.name[:-1]
    k = component_number(ndn.name[-1])
    final = _final(ndn)
    nxt = 0
    if k == 0:
        sink(ndn.content)
        nxt = 1
    while final is None or nxt <= final:
        if final is None:
            # No FinalBlockId yet: one segment at a time until one says it is the last.
            seg = await _segment(client, prefix, nxt)
            sink(seg.content)
            final = _final(seg)
            nxt += 1
            continue
        batch = range(nxt, min(final, nxt + FETCH_WINDOW - 1) + 1)
        got: dict[int, NdnData] = {}

        async def one(i: int, got: dict[int, NdnData] = got) -> None:
            got[i] = await _segment(client, prefix, i)

        async with trio.open_nursery() as nursery:
            for i in batch:
                nursery.start_soon(one, i)
        for i in batch:
            sink(got[i].content)
        nxt = batch.stop
    return first.name


def _final(ndn: NdnData) -> int | None:
    fb = ndn.final_block_id
    if fb is None or fb[0] != C_SEGMENT:
        return None
    return component_number(fb)


async def _segment(client: Client, prefix: Name, i: int) -> NdnData:
    name = prefix.append(component_to_ccn(*segment(i)))
    return _ndn_answer(await client.express(Interest(name, new_nonce())), name)


async def get_ndn(client: Client, name: Name, out: str) -> bool:
    """``ccn get`` of NDN content: write it to ``out`` (a path, or ``-`` for stdout).

    Returns ``False`` (writing nothing) if ``name`` is not answered with NDN content.
    """
    if out == "-":
        stdout: BinaryIO = os.fdopen(os.dup(1), "wb")

        def write(chunk: bytes) -> None:
            with stream_errors("stdout"):  # a full disk under a redirect: one line naming it
                stdout.write(chunk)

        try:
            return await fetch_ndn(client, name, write) is not None
        finally:
            with stream_errors("stdout"):
                stdout.close()
    dest = Path(out)
    remove_stale_partials(dest)
    partial = partial_path(dest)
    try:
        with open(partial, "wb") as fh:
            got = await fetch_ndn(client, name, fh.write)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    if got is None:
        partial.unlink()
        return False
    os.replace(partial, dest)
    return True
