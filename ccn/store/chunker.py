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
from typing import BinaryIO, Final

from pyfastcdc import FastCDC

from ccn.errors import StoreUsageError
from ccn.store.objects import MAX_BLOB_SIZE

AVG_CHUNK_SIZE: Final = 64 * 1024
"""FastCDC's ``avg_size``. Cuts skip the first ``min_size`` bytes of a chunk, so the mean chunk
is close to ``AVG_CHUNK_SIZE + MIN_CHUNK_SIZE`` (about 80 KiB)."""
MIN_CHUNK_SIZE: Final = 16 * 1024
MAX_CHUNK_SIZE: Final = 256 * 1024


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

    def cut_stream(self, stream: BinaryIO) -> Iterator[memoryview]:
        """Chunks of ``stream`` in order. Each view is valid only until the next one is
        yielded: copy it (``bytes(view)``) to keep it. An empty stream yields nothing."""
        for chunk in self._fastcdc().cut_stream(stream):
            yield chunk.data

    def cut_buffer(self, buf: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """Chunks of an in-memory buffer, as views into it."""
        for chunk in self._fastcdc().cut_buf(buf):
            yield chunk.data


DEFAULT_CHUNKER: Final = Chunker()
