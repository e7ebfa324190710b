"""The byte layout of the cache tier's segment files (docs/store.md §6), and nothing else.

A segment starts with :data:`SEGMENT_MAGIC`, then records back to back. A record is a header —
magic, kind, payload length, tick, object id, crc32 of those — and a payload: the object's bytes
for an :data:`OBJECT` record, nothing for :data:`TOUCH` and :data:`FORGET`. :func:`scan` finds
the whole records of a file, skipping damaged headers and stopping at a torn tail. What the
records mean (the index, the LRU order, the budget) is :mod:`ccn.store.cache`'s business.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Sequence
from typing import Final

from ccn.store.objects import ID_SIZE, MAX_OBJECT_SIZE
from ccn.store.pack import pwrite_all

SEGMENT_MAGIC: Final = b"CCNSEG\x00\x01"
"""The first 8 bytes of every segment file."""

RECORD_MAGIC: Final = b"CCNr"

# A record header: magic, kind, 3 zero bytes, payload length, tick, id, then crc32 of those 52
# bytes. Object records carry the object's bytes as payload; touch and forget records none.
_BODY: Final = struct.Struct(f">4sB3xIQ{ID_SIZE}s")
_CRC: Final = struct.Struct(">I")
HEADER_SIZE: Final = _BODY.size + _CRC.size

OBJECT: Final = 1
TOUCH: Final = 2
FORGET: Final = 3

SEGMENT_NAME: Final = re.compile(r"seg-(\d{1,18})\.log")
_RESYNC_CHUNK: Final = 1 << 20
_IOV_MAX: Final = 1024


#: A record to append: (kind, id, payload, tick).
Record = tuple[int, bytes, bytes, int]
#: A record found by a scan: (kind, payload offset, payload length, tick, id).
Found = tuple[int, int, int, int, bytes]


def header(kind: int, length: int, tick: int, oid: bytes) -> bytes:
    body = _BODY.pack(RECORD_MAGIC, kind, length, tick, oid)
    return body + _CRC.pack(zlib.crc32(body))


def parse(head: bytes) -> tuple[int, int, int, bytes] | None:
    """(kind, length, tick, id) of a well-formed record header, else None."""
    if len(head) != HEADER_SIZE or head[:4] != RECORD_MAGIC:
        return None
    if _CRC.unpack_from(head, _BODY.size)[0] != zlib.crc32(head[: _BODY.size]):
        return None
    _magic, kind, length, tick, oid = _BODY.unpack_from(head)
    if kind == OBJECT:
        ok = 0 < length <= MAX_OBJECT_SIZE
    else:
        ok = kind in (TOUCH, FORGET) and length == 0
    return (kind, length, tick, oid) if ok else None


def resync(fd: int, start: int, size: int) -> int | None:
    """Offset of the next well-formed record header at or after ``start``, if any."""
    pos = start
    while pos + HEADER_SIZE <= size:
        chunk = os.pread(fd, min(_RESYNC_CHUNK, size - pos), pos)
        i = chunk.find(RECORD_MAGIC)
        while i >= 0:
            if parse(os.pread(fd, HEADER_SIZE, pos + i)) is not None:
                return pos + i
            i = chunk.find(RECORD_MAGIC, i + 1)
        pos += max(len(chunk) - len(RECORD_MAGIC) + 1, 1)
    return None


def scan(fd: int, size: int) -> tuple[list[Found], int]:
    """The records of a segment, and where its last whole record ends.

    A damaged header is skipped by searching for the next well-formed one; a record that runs
    past the end of the file (a crash mid-append) ends the scan.
    """
    found: list[Found] = []
    off = end = len(SEGMENT_MAGIC)
    while off + HEADER_SIZE <= size:
        rec = parse(os.pread(fd, HEADER_SIZE, off))
        if rec is None:
            nxt = resync(fd, off + 1, size)
            if nxt is None:
                break
            off = nxt
            continue
        kind, length, tick, oid = rec
        stop = off + HEADER_SIZE + length
        if stop > size:
            break
        found.append((kind, off + HEADER_SIZE, length, tick, oid))
        off = end = stop
    return found, end


def write_parts(fd: int, parts: Sequence[bytes], offset: int) -> None:
    """Write ``parts`` back to back at ``offset``: one ``pwritev`` per 1024 parts."""
    for i in range(0, len(parts), _IOV_MAX):
        chunk = parts[i : i + _IOV_MAX]
        size = sum(len(p) for p in chunk)
        pwrite_all(fd, chunk, size, offset)
        offset += size
