"""Content-defined chunking: where a byte stream is cut into blobs.

This module owns the chunking parameters. Cuts depend only on the content (FastCDC 2020 with the
reference gear table), so inserting bytes into a file moves only the cuts near the edit and a
new version shares every other chunk with the old one. Why 64 KiB: see ``docs/store.md``
(measured in ``benchmarks/bench_store.py``).

It streams: memory use is bounded by a few times :data:`MAX_CHUNK_SIZE`, whatever the input
size. It reads but never writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from pyfastcdc import FastCDC

from ccn.errors import StoreUsageError
from ccn.store.objects import MAX_BLOB_SIZE

AVG_CHUNK_SIZE: Final = 64 * 1024
"""FastCDC's ``avg_size``. Cuts skip the first ``min_size`` bytes of a chunk, so the mean chunk
is close to ``AVG_CHUNK_SIZE + MIN_CHUNK_SIZE`` (about 80 KiB)."""
MIN_CHUNK_SIZE: Final = 16 * 1024
MAX_CHUNK_SIZE: Final = 256 * 1024
BLOCK_SIZE: Final = 4 * 1024 * 1024
"""How much :meth:`Chunker.cut_blocks` reads at a time."""


class Readable(Protocol):
    """What the chunker reads from: any binary file object with ``readinto``."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Chunker:
    """Chunking parameters; the defaults are the ones every ccn node uses, so that equal content
    published anywhere yields equal blobs."""

    avg_size: int = AVG_CHUNK_SIZE
    min_size: int = MIN_CHUNK_SIZE
    max_size: int = MAX_CHUNK_SIZE

    def __post_init__(self) -> None:
        if not 64 <= self.min_size <= self.avg_size <= self.max_size <= MAX_BLOB_SIZE:
            raise StoreUsageError("chunk sizes need 64 <= min <= avg <= max <= MAX_BLOB_SIZE")

    def _fastcdc(self) -> FastCDC:
        return FastCDC(self.avg_size, min_size=self.min_size, max_size=self.max_size)

    def cut_stream(self, stream: Readable) -> Iterator[memoryview]:
        """Chunks of ``stream`` in order, as views that stay valid (each keeps its read block
        alive). An empty stream yields nothing."""
        for _, chunks in self.cut_blocks(stream):
            yield from chunks

    def cut_blocks(
        self, stream: Readable, block_size: int = BLOCK_SIZE
    ) -> Iterator[tuple[memoryview, list[memoryview]]]:
        """Chunks of ``stream`` in batches: ``(span, chunks)`` where ``chunks`` are consecutive
        views into one fresh buffer and ``span`` covers exactly them, so a caller can hash or
        hand off a whole batch at once. Cuts are the same as over the whole content at once.

        ``stream`` needs ``readinto`` (an unbuffered ``open(path, "rb", buffering=0)`` reads
        straight into the block). Memory: one block, plus the batches the caller keeps.
        """
        if block_size < 2 * self.max_size:
            raise StoreUsageError("block size must be at least twice the largest chunk")
        cdc = self._fastcdc()
        carry = b""
        eof = False
        while not eof:
            buf = bytearray(block_size)
            buf[: len(carry)] = carry
            filled = len(carry)
            view = memoryview(buf)
            while filled < block_size:
                n = stream.readinto(view[filled:])
                if not n:
                    eof = True
                    break
                filled += n
            view = view[:filled]
            chunks = [c.data for c in cdc.cut_buf(view)]
            if not eof and chunks:
                # The last cut may only be where the buffer ended: redo it with more data.
                carry = bytes(chunks.pop())
            if chunks:
                end = sum(len(c) for c in chunks)
                yield view[:end], chunks

    def cut_buffer(self, buf: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """Chunks of an in-memory buffer, as views into it."""
        for chunk in self._fastcdc().cut_buf(buf):
            yield chunk.data


DEFAULT_CHUNKER: Final = Chunker()
