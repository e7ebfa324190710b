"""Stream framing, sans-IO: a 4-byte big-endian length before each packet.

:class:`Deframer` takes bytes as they arrive (``feed``) and hands back complete frames, whatever
the splits and coalescing of the stream. A length above the maximum raises
:class:`~ccn.errors.FrameError`: the stream is not ccn (or is hostile) and must be closed. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ccn.errors import FrameError

HEADER_SIZE: Final = 4
#: Default largest frame payload; a packet is at most this big (see ccn.codec.MAX_PACKET_SIZE).
DEFAULT_MAX_FRAME: Final = 1024 * 1024 + 64


def frame(payload: bytes) -> bytes:
    """One frame: length header then payload."""
    return len(payload).to_bytes(HEADER_SIZE, "big") + payload


def frame_many(payloads: Iterable[bytes]) -> bytes:
    """Several frames joined, for one coalesced write."""
    parts: list[bytes] = []
    for p in payloads:
        parts.append(len(p).to_bytes(HEADER_SIZE, "big"))
        parts.append(p)
    return b"".join(parts)


class Deframer:
    """Reassembles frames from a byte stream.

    After a :class:`FrameError` the deframer is poisoned: further calls raise it again.
    """

    __slots__ = ("_buf", "_error", "_max", "_pos")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max = max_frame
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
        """Add bytes; return every frame now complete, in order.

        Frames lying wholly inside an immutable ``bytes`` chunk come back as memoryviews of it
        (no copy); a frame assembled across chunks comes back as a view of a buffer of its own
        (one copy); from other buffer types, frames come back as ``bytes``.
        """
        if self._error is not None:
            raise self._error
        if type(data) is bytes:
            if len(self._buf) == self._pos:
                return self._feed_direct(data)
            return self._finish_partial(data)
        buf = self._buf
        buf += data
        pos = self._pos
        end = len(buf)
        out: list[bytes | memoryview] = []
        mx = self._max
        while end - pos >= HEADER_SIZE:
            n = int.from_bytes(buf[pos : pos + HEADER_SIZE], "big")
            if n > mx:
                raise self._fail(n)
            stop = pos + HEADER_SIZE + n
            if stop > end:
                break
            out.append(bytes(buf[pos + HEADER_SIZE : stop]))
            pos = stop
        if pos == end:
            buf.clear()
            pos = 0
        elif pos > 65536 and pos > end // 2:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return out

    def _finish_partial(self, chunk: bytes) -> list[bytes | memoryview]:
        """Complete the frame held in the buffer from the head of ``chunk``, then go direct."""
        data = memoryview(chunk)  # slices of an immutable chunk: no copies
        buf = self._buf
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        if len(buf) < HEADER_SIZE:
            take = HEADER_SIZE - len(buf)
            buf += data[:take]
            data = data[take:]
            if len(buf) < HEADER_SIZE:
                return []
        n = int.from_bytes(buf[:HEADER_SIZE], "big")
        if n > self._max:
            raise self._fail(n)
        need = HEADER_SIZE + n - len(buf)
        if need > len(data):
            buf += data
            return []
        buf += data[:need]
        # The assembled frame keeps this buffer (a view of it, no copy); the next partial frame
        # gets a new one.
        out: list[bytes | memoryview] = [memoryview(buf)[HEADER_SIZE:]]
        self._buf = bytearray()
        out.extend(self._feed_direct(data[need:]))
        return out

    def _feed_direct(self, data: bytes | memoryview) -> list[bytes | memoryview]:
        """Frames straight out of an immutable chunk (or a view of one)."""
        self._buf.clear()
        self._pos = 0
        view = memoryview(data)
        out: list[bytes | memoryview] = []
        pos = 0
        end = len(data)
        mx = self._max
        while end - pos >= HEADER_SIZE:
            n = int.from_bytes(data[pos : pos + HEADER_SIZE], "big")
            if n > mx:
                raise self._fail(n)
            stop = pos + HEADER_SIZE + n
            if stop > end:
                break
            out.append(view[pos + HEADER_SIZE : stop])
            pos = stop
        if pos < end:
            self._buf += view[pos:]
        return out

    def _fail(self, n: int) -> FrameError:
        self._error = FrameError(f"frame of {n} bytes exceeds the maximum {self._max}")
        return self._error
