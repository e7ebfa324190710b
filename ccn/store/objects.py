"""Objects: the four immutable object kinds, their one canonical encoding, and their ids.

This module owns the object format (``docs/store.md`` writes it down byte for byte):

* every object is a msgpack array whose first element is its :class:`Kind`, so bytes of one kind
  can never be taken for another;
* there is exactly one encoding per object: :func:`decode` re-checks that the bytes are the ones
  :func:`encode` would produce, so an id (``blake3`` of the encoding, raw 32 bytes) names exactly
  one object;
* an object that breaks an invariant cannot be built: constructors raise
  :class:`~ccn.errors.InvalidObject`, and :func:`decode` raises nothing else.

It does no I/O and keeps no state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import msgpack
from blake3 import blake3

from ccn.errors import InvalidName, InvalidObject
from ccn.name import Name

ID_SIZE: Final = 32
"""Ids are the raw 32-byte blake3 digest of an object's canonical encoding."""

MAX_OBJECT_SIZE: Final = 512 * 1024
"""Largest encoded object, header included: one object always fits one network packet."""

BLOB_HEADER_MAX: Final = 7
MAX_BLOB_SIZE: Final = MAX_OBJECT_SIZE - BLOB_HEADER_MAX
"""Largest blob payload, so that the encoded blob stays within :data:`MAX_OBJECT_SIZE`."""

MAX_MANIFEST_ENTRIES: Final = 1024
"""Fan-out bound: a pointer encodes to at most 45 bytes, so a manifest stays under 46 KiB,
within the 64 KiB a manifest may take."""

MAX_MANIFEST_SIZE: Final = 64 * 1024

MAX_TREE_ENTRIES: Final = 1600
"""A tree entry encodes to at most 305 bytes; 1600 of them fit in :data:`MAX_OBJECT_SIZE`."""

MAX_ENTRY_NAME: Final = 255
MAX_SIZE: Final = 2**63 - 1
MAX_PUBLISHER: Final = 64
MAX_SIGNATURE: Final = 1024

MODE_FILE: Final = 0o100644
MODE_EXECUTABLE: Final = 0o100755
MODE_DIRECTORY: Final = 0o040000
FILE_MODES: Final = frozenset({MODE_FILE, MODE_EXECUTABLE})
_MODES: Final = FILE_MODES | {MODE_DIRECTORY}

_BLOB_PREFIX: Final = b"\x92\x01"
_TREE_HASH_DOMAIN: Final = b"ccn tree content v1"


class Kind(enum.IntEnum):
    """The first element of every encoded object. Values are part of the format."""

    BLOB = 1
    MANIFEST = 2
    TREE = 3
    VERSION = 4


_KIND_VALUES: Final = frozenset(int(k) for k in Kind)

CONTENT_KINDS: Final = frozenset({Kind.BLOB, Kind.MANIFEST})
"""Kinds that hold the bytes of one file."""
ROOT_KINDS: Final = frozenset({Kind.BLOB, Kind.MANIFEST, Kind.TREE})
"""Kinds a version may point at."""


def _fail(message: str) -> InvalidObject:
    return InvalidObject(message)


def _check_id(label: str, value: object) -> None:
    if type(value) is not bytes or len(value) != ID_SIZE:
        raise _fail(f"{label} must be {ID_SIZE} bytes")


def _check_uint(label: str, value: object, maximum: int = MAX_SIZE) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise _fail(f"{label} must be an integer in [0, {maximum}], got {value!r}")


def _check_kind(label: str, value: object, allowed: frozenset[Kind]) -> None:
    if not isinstance(value, Kind) or value not in allowed:
        raise _fail(f"{label} must be one of {sorted(k.name for k in allowed)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Blob:
    """One chunk of content bytes."""

    data: bytes

    def __post_init__(self) -> None:
        if type(self.data) is not bytes:
            raise _fail("blob data must be bytes")
        if len(self.data) > MAX_BLOB_SIZE:
            raise _fail(f"blob of {len(self.data)} bytes exceeds {MAX_BLOB_SIZE}")

    @property
    def kind(self) -> Kind:
        return Kind.BLOB


@dataclass(frozen=True, slots=True)
class Pointer:
    """A manifest entry: the id of a blob or manifest and the content bytes under it."""

    id: bytes
    size: int
    kind: Kind

    def __post_init__(self) -> None:
        _check_id("pointer id", self.id)
        _check_uint("pointer size", self.size)
        _check_kind("pointer kind", self.kind, CONTENT_KINDS)
        if self.kind is Kind.BLOB and self.size > MAX_BLOB_SIZE:
            raise _fail("blob pointer larger than a blob can be")


@dataclass(frozen=True, slots=True)
class Manifest:
    """Ordered pointers whose content, concatenated, is the content of this manifest."""

    entries: tuple[Pointer, ...]

    def __post_init__(self) -> None:
        if type(self.entries) is not tuple:
            raise _fail("manifest entries must be a tuple")
        if not 1 <= len(self.entries) <= MAX_MANIFEST_ENTRIES:
            raise _fail(f"manifest must have 1..{MAX_MANIFEST_ENTRIES} entries")
        for e in self.entries:
            if type(e) is not Pointer:
                raise _fail("manifest entries must be Pointer values")
        if self.size > MAX_SIZE:
            raise _fail("manifest content too large")

    @property
    def kind(self) -> Kind:
        return Kind.MANIFEST

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One directory entry. ``size`` is the file's length, or for a directory the total length of
    every file below it."""

    name: bytes
    mode: int
    id: bytes
    size: int
    kind: Kind

    def __post_init__(self) -> None:
        n = self.name
        if type(n) is not bytes or not 1 <= len(n) <= MAX_ENTRY_NAME:
            raise _fail(f"tree entry name must be 1..{MAX_ENTRY_NAME} bytes")
        if b"/" in n or b"\0" in n or n in (b".", b".."):
            raise _fail(f"tree entry name {n!r} is not a plain file name")
        _check_id("tree entry id", self.id)
        _check_uint("tree entry size", self.size)
        if type(self.mode) is not int or self.mode not in _MODES:
            raise _fail(f"tree entry mode {self.mode!r} is not a known mode")
        if self.mode == MODE_DIRECTORY:
            _check_kind("directory entry kind", self.kind, frozenset({Kind.TREE}))
        else:
            _check_kind("file entry kind", self.kind, CONTENT_KINDS)


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory: entries sorted by name (bytewise), names unique."""

    entries: tuple[TreeEntry, ...]

    def __post_init__(self) -> None:
        if type(self.entries) is not tuple:
            raise _fail("tree entries must be a tuple")
        if len(self.entries) > MAX_TREE_ENTRIES:
            raise _fail(f"tree has more than {MAX_TREE_ENTRIES} entries")
        previous: bytes | None = None
        for e in self.entries:
            if type(e) is not TreeEntry:
                raise _fail("tree entries must be TreeEntry values")
            if previous is not None and e.name <= previous:
                raise _fail("tree entries must be sorted by name and unique")
            previous = e.name
        if self.size > MAX_SIZE:
            raise _fail("tree content too large")

    @property
    def kind(self) -> Kind:
        return Kind.TREE

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True, slots=True)
class Version:
    """The named root ``/name/v<number>``: what was published, when, by whom, after what.

    ``content_hash`` is blake3 of the file content for a blob or manifest root, and
    :func:`tree_content_hash` for a tree root; either way it does not depend on chunking.
    ``signature`` covers :meth:`signing_bytes`, and through the ids the whole content.
    """

    name: Name
    number: int
    root: bytes
    root_kind: Kind
    size: int
    content_hash: bytes
    created_ns: int
    previous: bytes | None = None
    publisher: bytes | None = None
    signature: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, Name):
            raise _fail("version name must be a Name")
        if len(self.name) == 0 or self.name.version is not None:
            raise _fail(f"version name {self.name} must be non-empty and carry no version")
        _check_uint("version number", self.number)
        if self.number < 1:
            raise _fail("version numbers start at 1")
        _check_id("version root", self.root)
        _check_kind("version root kind", self.root_kind, ROOT_KINDS)
        _check_uint("version size", self.size)
        _check_id("version content hash", self.content_hash)
        _check_uint("version creation time", self.created_ns)
        if self.previous is not None:
            _check_id("previous version id", self.previous)
        for label, value, limit in (
            ("publisher", self.publisher, MAX_PUBLISHER),
            ("signature", self.signature, MAX_SIGNATURE),
        ):
            if value is not None and (type(value) is not bytes or len(value) > limit):
                raise _fail(f"{label} must be at most {limit} bytes")

    @property
    def kind(self) -> Kind:
        return Kind.VERSION

    @property
    def full_name(self) -> Name:
        """``/name/v<number>``."""
        return self.name.with_version(self.number)

    def _fields(self) -> list[Any]:
        return [
            int(Kind.VERSION),
            list(self.name.components),
            self.number,
            self.root,
            int(self.root_kind),
            self.size,
            self.content_hash,
            self.created_ns,
            self.previous,
            self.publisher,
        ]

    def signing_bytes(self) -> bytes:
        """The canonical encoding without its last element (the signature): a 10-element array,
        which no object encoding is, so signed bytes cannot be replayed as an object."""
        return _pack(self._fields())

    def with_signature(self, signature: bytes | None) -> Version:
        return replace(self, signature=signature)


Object = Blob | Manifest | Tree | Version


# -- encoding --------------------------------------------------------------------------------


def _pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def blob_header(size: int) -> bytes:
    """The bytes that precede ``size`` bytes of blob data in a blob's encoding."""
    if size < 0 or size > MAX_BLOB_SIZE:
        raise InvalidObject(f"blob of {size} bytes exceeds {MAX_BLOB_SIZE}")
    if size < 0x100:
        return _BLOB_PREFIX + b"\xc4" + size.to_bytes(1, "big")
    if size < 0x10000:
        return _BLOB_PREFIX + b"\xc5" + size.to_bytes(2, "big")
    return _BLOB_PREFIX + b"\xc6" + size.to_bytes(4, "big")


def encode(obj: Object) -> bytes:
    """The canonical bytes of ``obj``. (Use :func:`blob_header` to avoid copying large blobs.)"""
    if type(obj) is Blob:
        return blob_header(len(obj.data)) + obj.data
    if type(obj) is Manifest:
        body: Any = [[p.id, p.size, int(p.kind)] for p in obj.entries]
        return _pack([int(Kind.MANIFEST), body])
    if type(obj) is Tree:
        body = [[e.name, e.mode, e.id, e.size, int(e.kind)] for e in obj.entries]
        return _pack([int(Kind.TREE), body])
    if type(obj) is Version:
        return _pack([*obj._fields(), obj.signature])
    raise TypeError(f"not an object: {type(obj).__name__}")


def object_id(raw: bytes | memoryview) -> bytes:
    """The id of an encoded object: its blake3 digest, raw 32 bytes."""
    digest: bytes = blake3(raw).digest()
    return digest


def id_of(obj: Object) -> bytes:
    """The id of ``obj`` (encodes it)."""
    if type(obj) is Blob:
        h = blake3(blob_header(len(obj.data)))
        h.update(obj.data)
        digest: bytes = h.digest()
        return digest
    return object_id(encode(obj))


# -- decoding --------------------------------------------------------------------------------


def _blob_data_offset(raw: bytes | memoryview) -> int:
    """Check a blob's header; return where its data starts."""
    n = len(raw)
    if n < 4:
        raise _fail("truncated blob")
    marker = raw[2]
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}.get(marker)
    if width is None or n < 3 + width:
        raise _fail("blob data is not a msgpack bin")
    size = int.from_bytes(raw[3 : 3 + width], "big")
    if n != 3 + width + size:
        raise _fail("blob length does not match its header")
    if size > MAX_BLOB_SIZE or blob_header(size) != bytes(raw[: 3 + width]):
        raise _fail("blob header is not canonical")
    return 3 + width


def peek_kind(raw: bytes | memoryview) -> Kind:
    """The kind an encoding claims, without validating the rest."""
    if len(raw) < 2 or raw[0] not in (0x92, 0x9B) or raw[1] not in _KIND_VALUES:
        raise _fail("bytes do not start with an object kind")
    return Kind(raw[1])


def _as_kind(value: object) -> Kind:
    if type(value) is not int:
        raise _fail("kind must be an integer")
    try:
        return Kind(value)
    except ValueError:
        raise _fail(f"unknown kind {value}") from None


def _fields_of(value: object, count: int, what: str) -> list[Any]:
    if type(value) is not list or len(value) != count:
        raise _fail(f"{what} must be an array of {count} elements")
    return value


def _build(value: object) -> Object:
    if type(value) is not list or not value:
        raise _fail("an object is a non-empty array")
    kind = _as_kind(value[0])
    if kind is Kind.MANIFEST:
        _, body = _fields_of(value, 2, "manifest")
        if type(body) is not list:
            raise _fail("manifest entries must be an array")
        pointers = []
        for item in body:
            pid, size, pkind = _fields_of(item, 3, "pointer")
            pointers.append(Pointer(pid, size, _as_kind(pkind)))
        return Manifest(tuple(pointers))
    if kind is Kind.TREE:
        _, body = _fields_of(value, 2, "tree")
        if type(body) is not list:
            raise _fail("tree entries must be an array")
        entries = []
        for item in body:
            name, mode, eid, size, ekind = _fields_of(item, 5, "tree entry")
            entries.append(TreeEntry(name, mode, eid, size, _as_kind(ekind)))
        return Tree(tuple(entries))
    if kind is Kind.VERSION:
        f = _fields_of(value, 11, "version")
        if type(f[1]) is not list or any(type(c) is not bytes for c in f[1]):
            raise _fail("version name must be an array of bin components")
        try:
            name = Name(f[1])
        except InvalidName as e:
            raise _fail(f"bad version name: {e}") from None
        return Version(name, f[2], f[3], _as_kind(f[4]), *f[5:])
    raise _fail("a blob must be encoded with a bin payload")


def decode(raw: bytes | memoryview) -> Object:
    """Parse and check canonical object bytes. Raises :class:`InvalidObject` and nothing else."""
    try:
        n = len(raw)
        if n > MAX_OBJECT_SIZE:
            raise _fail(f"object of {n} bytes exceeds {MAX_OBJECT_SIZE}")
        if n >= 2 and raw[:2] == _BLOB_PREFIX:
            return Blob(bytes(raw[_blob_data_offset(raw) :]))
        value = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
        obj = _build(value)
        if encode(obj) != raw:
            raise _fail("encoding is not canonical")
        return obj
    except InvalidObject:
        raise
    except Exception as e:  # any msgpack or type error means malformed bytes
        raise InvalidObject(f"malformed object: {type(e).__name__}: {e}") from None


def validate(raw: bytes | memoryview) -> Kind:
    """Check that ``raw`` is a canonical object, cheaply for blobs; return its kind."""
    if len(raw) >= 2 and raw[:2] == _BLOB_PREFIX and len(raw) <= MAX_OBJECT_SIZE:
        _blob_data_offset(raw)
        return Kind.BLOB
    return decode(raw).kind


# -- structure -------------------------------------------------------------------------------


def children(obj: Object) -> list[tuple[bytes, Kind]]:
    """Ids (and kinds) an object points at, in order: what a fetcher walks next.

    A version's ``previous`` is history, not content, and is not a child.
    """
    if type(obj) is Manifest:
        return [(p.id, p.kind) for p in obj.entries]
    if type(obj) is Tree:
        return [(e.id, e.kind) for e in obj.entries]
    if type(obj) is Version:
        return [(obj.root, obj.root_kind)]
    return []


def tree_content_hash(entries: Iterable[tuple[bytes, int, int, bytes]]) -> bytes:
    """Chunking-independent digest of a directory.

    ``entries`` are ``(name, mode, size, content_hash)`` sorted by name, where ``content_hash``
    is blake3 of a file's bytes or, for a subdirectory, this function applied to it. The digest
    is blake3 of ``msgpack(["ccn tree content v1" as bin, [[name, mode, size, hash], ...]])``.
    """
    rows: Sequence[list[Any]] = [[n, m, s, h] for n, m, s, h in entries]
    digest: bytes = blake3(_pack([_TREE_HASH_DOMAIN, rows])).digest()
    return digest


def blob_payload(raw: bytes | memoryview) -> memoryview:
    """The data of an encoded blob as a view (no copy), after checking its header.

    Raises :class:`InvalidObject` if ``raw`` is not a canonical blob encoding.
    """
    if len(raw) < 2 or raw[:2] != _BLOB_PREFIX or len(raw) > MAX_OBJECT_SIZE:
        raise _fail("not a blob")
    return memoryview(raw)[_blob_data_offset(raw) :]
