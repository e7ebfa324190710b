"""A face over any byte stream (TCP, Unix socket, in-memory): framing + codec, nothing more.

Reads take everything available per wake-up and deframe it in one go; writes take every queued
frame and send them in one write — coalescing is what makes a Python face fast. On a socket the
face calls ``os.read``/``os.write``/``os.writev`` on the non-blocking descriptor and waits for it
only when it would block (trio's stream wrappers cost two trips through the scheduler per call);
other streams go through ``receive_some``/``send_all``. The send queue is bounded in packets and
bytes, the reassembly buffer by the largest frame (``max_frame``). Fairness: a face delivers
packets for at most :data:`READ_QUANTUM` seconds per scheduling turn and then yields, so a face
flooding the node gets no more of its time than any other. A malformed
frame is dropped and counted; a stream whose very first frame is not ccn, or that breaks framing,
is closed. The face owns and closes its stream.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Final

import trio
from mypy_extensions import mypyc_attr

from ccn.codec import decode, encode_parts
from ccn.errors import DecodeError, FrameError, InvalidPacket
from ccn.faces.base import READ_QUANTUM, Deliver, Face
from ccn.framing import DEFAULT_MAX_FRAME, HEADER_SIZE, Deframer
from ccn.packet import Packet

RECEIVE_SIZE: Final = 1 << 20
DEFAULT_QUEUE_PACKETS: Final = 8192
DEFAULT_QUEUE_BYTES: Final = 64 << 20

#: What ends a face as a transport error rather than a fault of ours.
_TRANSPORT_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class _Burst:
    """Packets queued while a face hands a burst of received packets to the node are written
    when the burst ends, straight from the reading task: one write per face per burst, and no
    trip through the scheduler to wake each face's write loop (that is a hop's latency)."""

    def __init__(self) -> None:
        self.depth = 0
        self.faces: list[ByteStreamFace] = []

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *_exc: object) -> None:
        self.depth -= 1
        if not self.depth:
            faces, self.faces = self.faces, []
            for face in faces:
                face._write_now()


_burst: Final = _Burst()
#: (A module constant, not ``from time import``: compiled, that is a dictionary lookup per use.)
_clock: Final = time.perf_counter


@mypyc_attr(allow_interpreted_subclasses=True)  # subclassed by uncompiled code (docs/compiled.md)
class ByteStreamFace(Face):
    """What every face over a byte stream shares: the bounded send queue, writing it (at the end
    of a burst; at once when sent outside a burst on a socket; otherwise, or what the socket did
    not take, by the write loop: one coalesced write, or one ``writev`` of the pieces when they
    are large), closing, and ``run``. Subclasses frame packets into :meth:`_enqueue` and
    implement :meth:`_read_loop`."""

    #: The most one read takes from the stream.
    receive_size = RECEIVE_SIZE

    def __init__(
        self,
        stream: trio.abc.Stream,
        remote: str,
        *,
        local: bool,
        max_queue_packets: int,
        max_queue_bytes: int,
    ) -> None:
        super().__init__(remote, local=local)
        self._stream = stream
        self._queue: deque[bytes | memoryview] = deque()
        self._queued_bytes = 0
        self._queued_packets = 0
        self._max_packets = max_queue_packets
        self._max_bytes = max_queue_bytes
        self._wake = trio.Event()
        self._writing = False  # the write loop is inside a write
        self._in_burst = False  # queued during a burst, written when it ends
        self._cancel = trio.CancelScope()
        self.close_reason: str | None = None
        # A socket stream is read and written straight through its (non-blocking) descriptor:
        # a read or write that can proceed costs one system call, with no trip through the
        # scheduler; only one that would block waits for the descriptor.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        # The last read took less than it asked for: the socket is most likely empty, so the
        # next read waits for it first rather than trying (and failing: a system call and an
        # exception per packet when packets come one at a time).
        self._drained = False

    def _enqueue(self, parts: list[bytes], size: int) -> bool:
        """Queue the pieces of one packet (``size`` bytes in all); drop and count if full."""
        if self._queued_packets >= self._max_packets or self._queued_bytes + size > self._max_bytes:
            self.counters.dropped += 1
            return False
        self._queue.extend(parts)
        self._queued_bytes += size
        self._queued_packets += 1
        if _burst.depth:
            if not self._in_burst:
                self._in_burst = True
                _burst.faces.append(self)
        else:
            # Sent outside a burst (a client's request, a timer's retransmission): write now;
            # waking the write loop would cost a trip through the scheduler first.
            self._write_now()
        return True

    def _take_queue(self) -> tuple[list[bytes | memoryview], int]:
        """Everything queued, and its size in bytes; the queue is left empty."""
        parts, total = list(self._queue), self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        self._queued_packets = 0
        return parts, total

    def _write_now(self) -> None:
        """Write what is queued straight away (at the end of a burst, or for a packet sent
        outside one), as far as the socket takes it; the rest (or all, if the stream is not a
        socket or a write is already under way) is left to the write loop."""
        self._in_burst = False
        if not self._queue or self.closed:
            return
        if self._fd < 0 or self._writing:
            self._wake.set()
            return
        parts, total = self._take_queue()
        views = _views(parts, total)
        try:
            left = _write_some(self._fd, views)
        except OSError:  # broken: the write loop finds out and closes the face
            left = views
        unwritten = sum(map(len, left))
        self.counters.out_bytes += total - unwritten
        if left:
            self._queue.extend(left)
            self._queued_bytes = unwritten
            self._queued_packets = 1
            self._wake.set()

    def close(self, reason: str = "closed") -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._cancel.cancel()

    async def run(self, deliver: Deliver) -> None:
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    await self._read_loop(deliver)
                    nursery.cancel_scope.cancel()
        # (``except*`` written out: mypyc, setup.py, does not compile it yet)
        except BaseExceptionGroup as group:
            lost, rest = group.split(_TRANSPORT_ERRORS)
            if lost is not None:
                self.close_reason = f"transport error: {lost.exceptions[0]}"
            if rest is not None:
                raise rest from None
        except _TRANSPORT_ERRORS as exc:
            self.close_reason = f"transport error: {exc}"
        finally:
            self.closed = True
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    async def _read_loop(self, deliver: Deliver) -> None:
        """Read, split into units, and hand them over for at most :data:`READ_QUANTUM` per
        turn; what the node sends meanwhile is written when each burst ends."""
        counters = self.counters
        while not self.closed:
            chunk = await self._receive()
            if not chunk:
                if self._held():  # a packet cut short: malformed, as a broken one is
                    counters.malformed += 1
                    self.close_reason = f"peer closed {self._held()} bytes into a packet"
                else:
                    self.close_reason = "peer closed"
                return
            counters.in_bytes += len(chunk)
            turn_ends = _clock() + READ_QUANTUM  # _receive yielded
            units = self._split(chunk)
            i, n = 0, len(units)
            while i < n:
                with _burst:
                    while i < n:
                        self._take(units[i], deliver)
                        i += 1
                        if self.closed:
                            return
                        if _clock() >= turn_ends:
                            break
                if i < n:
                    await trio.lowlevel.checkpoint()
                    if self.closed:
                        return
                    turn_ends = _clock() + READ_QUANTUM

    def _split(self, chunk: bytes | bytearray) -> Sequence[bytes | memoryview]:
        """The whole units (frames) completed by ``chunk``; on broken framing, count it, close
        the face and return none."""
        raise NotImplementedError

    def _take(self, unit: bytes | memoryview, deliver: Deliver) -> None:
        """Decode one unit and deliver what it carries (counting what is malformed)."""
        raise NotImplementedError

    def _held(self) -> int:
        """Bytes received of a unit not complete yet."""
        raise NotImplementedError

    async def _receive(self) -> bytes | bytearray:
        """What the peer sent (at least one byte), or ``b""`` when it closed. Always yields to
        the scheduler once, so a face with data always waiting does not starve the others."""
        fd = self._fd
        size = self.receive_size
        if fd < 0:
            return await self._stream.receive_some(size)
        chunk: bytes | None = None
        if not self._drained:
            try:
                chunk = os.read(fd, size)
            except BlockingIOError:
                pass
            else:
                await trio.lowlevel.checkpoint()
        while chunk is None:
            await trio.lowlevel.wait_readable(fd)
            try:
                chunk = os.read(fd, size)
            except BlockingIOError:  # woken with nothing to read: wait again
                continue
        self._drained = len(chunk) < size
        return chunk

    async def _send(self, parts: list[bytes | memoryview], total: int) -> None:
        fd = self._fd
        if fd < 0:
            await self._stream.send_all(b"".join(parts))
            return
        views = _views(parts, total)
        while views:
            try:
                views = _write_some(fd, views)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(fd)

    async def _write_loop(self) -> None:
        queue = self._queue
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while queue:
                parts, total = self._take_queue()
                self.counters.out_bytes += total
                self._writing = True
                try:
                    await self._send(parts, total)
                finally:
                    self._writing = False


class StreamFace(ByteStreamFace):
    """A ccn face: length-prefixed msgpack packets."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        remote: str,
        *,
        local: bool,
        max_queue_packets: int = DEFAULT_QUEUE_PACKETS,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        super().__init__(
            stream,
            remote,
            local=local,
            max_queue_packets=max_queue_packets,
            max_queue_bytes=max_queue_bytes,
        )
        self._deframer = Deframer(max_frame)
        self._seen_valid = False

    def send(self, packet: Packet) -> None:
        if self.closed:
            return
        try:
            parts = encode_parts(packet)
        except InvalidPacket:
            self.counters.dropped += 1
            return
        length = sum(map(len, parts)) if len(parts) > 1 else len(parts[0])
        if self._enqueue([length.to_bytes(HEADER_SIZE, "big"), *parts], length + HEADER_SIZE):
            self.counters.count_out(packet)

    def _split(self, chunk: bytes | bytearray) -> Sequence[bytes | memoryview]:
        try:
            return self._deframer.feed(chunk)
        except FrameError as e:
            self.counters.malformed += 1
            self.close(f"not a ccn stream: {e}")
            return ()

    def _held(self) -> int:
        return self._deframer.buffered

    def _take(self, unit: bytes | memoryview, deliver: Deliver) -> None:
        try:
            packet = decode(unit)
        except DecodeError as e:
            self.counters.malformed += 1
            if not self._seen_valid:
                self.close(f"not a ccn stream: {e}")
            return
        self._seen_valid = True
        self.counters.count_in(packet)
        deliver(self, packet)


#: Writes at least this large go out as one vectored write of the queued pieces (large Data
#: content is its own piece), sparing a copy of every byte into one buffer.
VECTORED_MIN: Final = 32 * 1024
_IOV_MAX: Final = 512


def _views(parts: list[bytes | memoryview], total: int) -> list[memoryview]:
    """What to hand to the socket: the pieces themselves when there are large ones (no copy),
    else one joined buffer (one small copy beats many iovecs)."""
    if total >= VECTORED_MIN and len(parts) > 1:
        return [memoryview(p) for p in parts if p]
    return [memoryview(b"".join(parts))]


def _write_some(fd: int, views: list[memoryview]) -> list[memoryview]:
    """Write as much of ``views`` as the non-blocking ``fd`` takes now; return what is left.
    Raises ``BlockingIOError`` only if nothing at all could be written."""
    progress = False
    while views:
        batch = views[:_IOV_MAX]
        try:
            sent = os.write(fd, batch[0]) if len(batch) == 1 else os.writev(fd, batch)
        except BlockingIOError:
            if progress:
                break
            raise
        progress = True
        short = sent < sum(map(len, batch))
        i = 0
        while sent and sent >= len(views[i]):
            sent -= len(views[i])
            i += 1
        views = views[i:]
        if sent:
            views[0] = views[0][sent:]
        if short:
            break  # the socket is full for now
    return views
