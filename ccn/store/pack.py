"""Pack files: many objects in one append-only file, found through an index written last.

This module owns the byte layout of ``<root>/packs/<name>.pack`` and ``<name>.idx`` (see
docs/store.md §4) and nothing else: it encodes and parses indexes and reads/writes raw spans.
Which objects go into a pack, and when a pack becomes visible, is
:class:`~ccn.store.objstore.DiskObjectStore`'s business.

Rules it keeps:

* a pack is only ever appended to while it is written, and never changed after its index exists;
* an index is complete or absent: it is written to a temp file, fsynced, then renamed into
  ``packs/``. A pack without an index is invisible (crash debris, removed when old);
* an index carries a blake3 trailer over its bytes, so a damaged index is detected, not trusted.
  Objects inside a pack are still verified against their id on every read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from typing import Final

from blake3 import blake3

from ccn.errors import NewerFormat, StoreError
from ccn.store.objects import ID_SIZE

Buffer = bytes | memoryview

PACK_MAGIC: Final = b"CCNPACK\x01"
IDX_MAGIC: Final = b"CCNIDX\x00\x01"
PACK_SUFFIX: Final = ".pack"
IDX_SUFFIX: Final = ".idx"

_HEAD: Final = struct.Struct(">8sI4x")
_ENTRY: Final = struct.Struct(f">{ID_SIZE}sQI")
_TRAILER: Final = 32

#: ``id → (offset, length)`` of the objects in one pack.
PackIndex = Mapping[bytes, tuple[int, int]]


def encode_index(entries: PackIndex) -> bytes:
    """An index file's bytes: magic, count, entries sorted by id, blake3 trailer."""
    out = bytearray(_HEAD.pack(IDX_MAGIC, len(entries)))
    for oid in sorted(entries):
        off, length = entries[oid]
        out += _ENTRY.pack(oid, off, length)
    out += blake3(out).digest()
    return bytes(out)


def check_not_newer(found: bytes, magic: bytes, where: str, what: str) -> None:
    """Raise :class:`~ccn.errors.NewerFormat` if ``found``, read where ``magic`` should be, is
    ``magic`` of another format version (its first 6 bytes say what, the last 2 which format)."""
    if len(found) == len(magic) and found[:6] == magic[:6]:
        raise NewerFormat(where, what, int.from_bytes(found[6:]), magic[-1])


def decode_index(raw: bytes, where: str) -> dict[bytes, tuple[int, int]]:
    """Parse an index; :class:`~ccn.errors.StoreError` naming ``where`` if it is damaged."""
    if len(raw) < _HEAD.size + _TRAILER:
        raise StoreError(f"pack index {where} is truncated")
    magic, count = _HEAD.unpack_from(raw)
    if magic != IDX_MAGIC:
        check_not_newer(magic, IDX_MAGIC, where, "pack index")
        raise StoreError(f"pack index {where} has no ccn index header")
    if len(raw) != _HEAD.size + count * _ENTRY.size + _TRAILER:
        raise StoreError(f"pack index {where} is truncated")
    if blake3(memoryview(raw)[:-_TRAILER]).digest() != raw[-_TRAILER:]:
        raise StoreError(f"pack index {where} fails its checksum")
    entries: dict[bytes, tuple[int, int]] = {}
    for oid, off, length in _ENTRY.iter_unpack(memoryview(raw)[_HEAD.size : -_TRAILER]):
        entries[oid] = (off, length)
    return entries


def pack_names(packdir: str) -> tuple[set[str], set[str]]:
    """Stems of the indexes and of the pack files in ``packdir``."""
    idx: set[str] = set()
    packs: set[str] = set()
    try:
        names = os.listdir(packdir)
    except FileNotFoundError:
        return idx, packs
    for n in names:
        if n.endswith(IDX_SUFFIX):
            idx.add(n[: -len(IDX_SUFFIX)])
        elif n.endswith(PACK_SUFFIX):
            packs.add(n[: -len(PACK_SUFFIX)])
    return idx, packs


def pwrite_all(fd: int, parts: Sequence[Buffer], size: int, offset: int) -> None:
    """Write the concatenation of ``parts`` at ``offset``, however the kernel splits it."""
    written = os.pwritev(fd, parts, offset)
    if written == size:
        return
    rest = memoryview(b"".join(parts))[written:]
    offset += written
    while rest:
        n = os.pwrite(fd, rest, offset)
        rest = rest[n:]
        offset += n
