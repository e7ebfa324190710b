"""Content-defined chunking: deterministic, streaming, and local under edits."""

from __future__ import annotations

import io
import random

import pytest

from ccn.errors import StoreUsageError
from ccn.store.chunker import (
    AVG_CHUNK_SIZE,
    DEFAULT_CHUNKER,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    Chunker,
)


def _data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _cuts(data: bytes, chunker: Chunker = DEFAULT_CHUNKER) -> list[bytes]:
    return [bytes(c) for c in chunker.cut_stream(io.BytesIO(data))]


def test_chunks_cover_the_input_within_bounds() -> None:
    data = _data(8 << 20)
    chunks = _cuts(data)
    assert b"".join(chunks) == data
    assert all(MIN_CHUNK_SIZE <= len(c) <= MAX_CHUNK_SIZE for c in chunks[:-1])
    mean = len(data) / len(chunks)
    assert AVG_CHUNK_SIZE * 0.8 < mean < (AVG_CHUNK_SIZE + MIN_CHUNK_SIZE) * 1.3


def test_cuts_are_deterministic_and_independent_of_reads() -> None:
    data = _data(3 << 20, seed=2)
    first = _cuts(data)
    assert _cuts(data) == first
    assert [bytes(c) for c in DEFAULT_CHUNKER.cut_buffer(data)] == first

    class Trickle(io.RawIOBase):
        """Returns short reads, as pipes and sockets do."""

        def __init__(self, payload: bytes) -> None:
            self._src = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview) -> int:  # type: ignore[override]
            return self._src.readinto(b[:12345])

    assert [bytes(c) for c in DEFAULT_CHUNKER.cut_stream(Trickle(data))] == first
    for block in (2 * MAX_CHUNK_SIZE, 1 << 20):
        batches = list(DEFAULT_CHUNKER.cut_blocks(io.BytesIO(data), block))
        assert [bytes(c) for _, cs in batches for c in cs] == first
        assert all(bytes(span) == b"".join(cs) for span, cs in batches)


def test_small_and_empty_inputs() -> None:
    assert _cuts(b"") == []
    assert _cuts(b"x") == [b"x"]
    assert _cuts(b"y" * 1000) == [b"y" * 1000]


def test_insertion_changes_only_nearby_chunks() -> None:
    data = _data(16 << 20, seed=3)
    middle = len(data) // 2
    edited = data[:middle] + b"inserted bytes" + data[middle:]
    before, after = _cuts(data), _cuts(edited)
    changed = set(after) - set(before)
    assert len(before) > 150
    assert 1 <= len(changed) <= 3
    assert sum(len(c) for c in changed) < 4 * MAX_CHUNK_SIZE


def test_parameters_are_checked() -> None:
    Chunker(avg_size=16 * 1024, min_size=4 * 1024, max_size=64 * 1024)
    with pytest.raises(StoreUsageError):
        Chunker(avg_size=1024, min_size=4096, max_size=8192)
    with pytest.raises(StoreUsageError):
        Chunker(max_size=1 << 20)
    with pytest.raises(StoreUsageError):
        list(DEFAULT_CHUNKER.cut_blocks(io.BytesIO(b"x"), MAX_CHUNK_SIZE))
