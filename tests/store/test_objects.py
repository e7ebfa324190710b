"""Object kinds, their canonical encoding and ids: round trips, golden vectors, strictness."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccn.errors import InvalidObject
from ccn.name import Name
from ccn.store.objects import (
    MAX_BLOB_SIZE,
    MAX_MANIFEST_ENTRIES,
    MAX_MANIFEST_SIZE,
    MAX_OBJECT_SIZE,
    MAX_TREE_ENTRIES,
    MODE_DIRECTORY,
    MODE_EXECUTABLE,
    MODE_FILE,
    Blob,
    Kind,
    Manifest,
    Object,
    Pointer,
    Tree,
    TreeEntry,
    Version,
    blob_header,
    children,
    decode,
    encode,
    id_of,
    object_id,
    peek_kind,
    tree_content_hash,
    validate,
)

A = b"\x11" * 32
B = b"\x22" * 32
C = b"\x33" * 32

FIXED: dict[str, Object] = {
    "empty_blob": Blob(b""),
    "blob": Blob(b"hello"),
    "manifest": Manifest((Pointer(A, 65536, Kind.BLOB), Pointer(B, 1_000_000, Kind.MANIFEST))),
    "tree": Tree(
        (
            TreeEntry(b"README", MODE_FILE, A, 5, Kind.BLOB),
            TreeEntry(b"bin", MODE_DIRECTORY, B, 70000, Kind.TREE),
            TreeEntry(b"run", MODE_EXECUTABLE, C, 300000, Kind.MANIFEST),
        )
    ),
    "version": Version(
        Name.parse("/videos/talk"),
        3,
        A,
        Kind.TREE,
        370005,
        B,
        1_700_000_000_000_000_000,
        C,
        b"key-1",
        b"\x00" * 64,
    ),
    "version_min": Version(Name.parse("/a"), 1, A, Kind.BLOB, 5, B, 0),
}

# Hard-coded on purpose: if one of these changes, the object format (and every id) changed.
GOLDEN: dict[str, tuple[str, str]] = {
    "empty_blob": (
        "9201c400",
        "c46860ce48bd7337af0f45ebae81738bc0548ed902edc4e114347523f84c62aa",
    ),
    "blob": (
        "9201c40568656c6c6f",
        "cf6071420d36160cd6c12ae41c809c567c9711e2a3fd8457320ca478b9f05f75",
    ),
    "manifest": (
        "92029293c420" + "11" * 32 + "ce000100000193c420" + "22" * 32 + "ce000f424002",
        "55d220d4c4ae94d265b598cf3b208baff1e78816b92a36d2ed2ec65c5fa52cd4",
    ),
    "tree": (
        "92039395c406524541444d45cd81a4c420"
        + "11" * 32
        + "050195c40362696ecd4000c420"
        + "22" * 32
        + "ce000111700395c40372756ecd81edc420"
        + "33" * 32
        + "ce000493e002",
        "83a904576012f468173d53cb09ab4170a78845c3fe92a34ab982e850d74af243",
    ),
    "version": (
        "9b0492c406766964656f73c40474616c6b03c420"
        + "11" * 32
        + "03ce0005a555c420"
        + "22" * 32
        + "cf17979cfe362a0000c420"
        + "33" * 32
        + "c4056b65792d31c440"
        + "00" * 64,
        "b6e65c5d5423b7be9c9626f3b91ecee38652c84f236c98b4ff267613657ab61e",
    ),
    "version_min": (
        "9b0491c4016101c420" + "11" * 32 + "0105c420" + "22" * 32 + "00c0c0c0",
        "b8d1768ef08ce9f6430ced94494b88532ae5b1dcaa373d335875508da80673a6",
    ),
}


@pytest.mark.parametrize("key", sorted(FIXED))
def test_golden_encoding_and_id(key: str) -> None:
    raw_hex, id_hex = GOLDEN[key]
    raw = encode(FIXED[key])
    assert raw.hex() == raw_hex
    assert object_id(raw).hex() == id_hex
    assert id_of(FIXED[key]).hex() == id_hex
    assert decode(bytes.fromhex(raw_hex)) == FIXED[key]


def test_signing_bytes_are_the_encoding_without_the_signature() -> None:
    v = FIXED["version"]
    assert isinstance(v, Version)
    signing = v.signing_bytes()
    assert signing[0] == 0x9A  # a 10-element array: no object has that shape
    assert encode(v) == b"\x9b" + signing[1:] + b"\xc4\x40" + b"\x00" * 64
    assert v.with_signature(None).signing_bytes() == signing
    with pytest.raises(InvalidObject):
        decode(signing)


def test_version_full_name() -> None:
    v = FIXED["version"]
    assert isinstance(v, Version)
    assert v.full_name == Name.parse("/videos/talk/v3")


def test_children_walks_content_not_history() -> None:
    assert children(FIXED["blob"]) == []
    assert children(FIXED["manifest"]) == [(A, Kind.BLOB), (B, Kind.MANIFEST)]
    assert children(FIXED["tree"]) == [(A, Kind.BLOB), (B, Kind.TREE), (C, Kind.MANIFEST)]
    assert children(FIXED["version"]) == [(A, Kind.TREE)]


def test_kind_is_first_so_kinds_cannot_be_confused() -> None:
    for obj in FIXED.values():
        raw = encode(obj)
        assert peek_kind(raw) is obj.kind
        assert decode(raw).kind is obj.kind
    # The same payload under another kind tag is not an object of that kind.
    manifest = encode(FIXED["manifest"])
    for other in (Kind.TREE, Kind.BLOB, Kind.VERSION):
        with pytest.raises(InvalidObject):
            decode(manifest[:1] + bytes([other]) + manifest[2:])


def test_blob_header_sizes() -> None:
    for size in (0, 255, 256, 65535, 65536, MAX_BLOB_SIZE):
        data = b"x" * size
        raw = blob_header(size) + data
        assert raw == msgpack.packb([1, data], use_bin_type=True)
        assert validate(raw) is Kind.BLOB
    assert len(blob_header(MAX_BLOB_SIZE)) + MAX_BLOB_SIZE == MAX_OBJECT_SIZE
    with pytest.raises(InvalidObject):
        blob_header(MAX_BLOB_SIZE + 1)


def test_limits_keep_objects_within_their_bounds() -> None:
    worst = Manifest((Pointer(A, 2**52, Kind.MANIFEST),) * MAX_MANIFEST_ENTRIES)
    assert len(encode(worst)) <= MAX_MANIFEST_SIZE
    entries = tuple(
        TreeEntry(b"%05d" % i + b"n" * 250, MODE_EXECUTABLE, A, 2**50, Kind.MANIFEST)
        for i in range(1, MAX_TREE_ENTRIES + 1)
    )
    assert len(encode(Tree(entries))) <= MAX_OBJECT_SIZE
    with pytest.raises(InvalidObject):
        Tree((*entries, TreeEntry(b"\xff" * 255, MODE_FILE, A, 0, Kind.BLOB)))
    with pytest.raises(InvalidObject):
        Manifest((Pointer(A, 1, Kind.BLOB),) * (MAX_MANIFEST_ENTRIES + 1))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Blob(bytearray(b"x")),  # type: ignore[arg-type]
        lambda: Pointer(A[:31], 1, Kind.BLOB),
        lambda: Pointer(A, -1, Kind.BLOB),
        lambda: Pointer(A, 1, Kind.TREE),
        lambda: Pointer(A, True, Kind.BLOB),
        lambda: Manifest(()),
        lambda: Manifest([Pointer(A, 1, Kind.BLOB)]),  # type: ignore[arg-type]
        lambda: TreeEntry(b"a/b", MODE_FILE, A, 1, Kind.BLOB),
        lambda: TreeEntry(b"a\0", MODE_FILE, A, 1, Kind.BLOB),
        lambda: TreeEntry(b"..", MODE_DIRECTORY, A, 1, Kind.TREE),
        lambda: TreeEntry(b"", MODE_FILE, A, 1, Kind.BLOB),
        lambda: TreeEntry(b"a", 0o100600, A, 1, Kind.BLOB),
        lambda: TreeEntry(b"a", MODE_DIRECTORY, A, 1, Kind.BLOB),
        lambda: TreeEntry(b"a", MODE_FILE, A, 1, Kind.TREE),
        lambda: Tree(
            (
                TreeEntry(b"b", MODE_FILE, A, 1, Kind.BLOB),
                TreeEntry(b"a", MODE_FILE, A, 1, Kind.BLOB),
            )
        ),
        lambda: Tree(
            (
                TreeEntry(b"a", MODE_FILE, A, 1, Kind.BLOB),
                TreeEntry(b"a", MODE_DIRECTORY, B, 1, Kind.TREE),
            )
        ),
        lambda: Version(Name.parse("/a/v2"), 1, A, Kind.BLOB, 1, B, 0),
        lambda: Version(Name(), 1, A, Kind.BLOB, 1, B, 0),
        lambda: Version(Name.parse("/a"), 0, A, Kind.BLOB, 1, B, 0),
        lambda: Version(Name.parse("/a"), 1, A, Kind.VERSION, 1, B, 0),
        lambda: Version(Name.parse("/a"), 1, A, Kind.BLOB, 1, B, 0, previous=b"short"),
        lambda: Version(Name.parse("/a"), 1, A, Kind.BLOB, 1, B, 0, signature=b"s" * 2000),
    ],
)
def test_invalid_objects_cannot_be_built(build: object) -> None:
    assert callable(build)
    with pytest.raises(InvalidObject):
        build()


def _pack(value: object) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x92",
        b"\x92\x01",
        b"\x92\x01\xc4\x05abc",  # truncated blob
        b"\x92\x01\xc4\x01ab",  # trailing byte
        b"\x92\x01\xc5\x00\x01a",  # non-minimal length
        b"\x92\x01\xa1a",  # str, not bin
        _pack([5, b"x"]),  # unknown kind
        _pack([0, b"x"]),
        _pack([2, []]),  # empty manifest
        _pack([2, [[A, 1, 1]], "extra"]),
        _pack([2, [[A, 1]]]),
        _pack([2, [[A, 1, 1, 0]]]),
        _pack([2, [[A, 1.0, 1]]]),
        _pack([2, [[A, True, 1]]]),
        _pack([2, [[A.hex(), 1, 1]]]),
        _pack([2, {b"a": 1}]),
        _pack([3, [[b"b", MODE_FILE, A, 1, 1], [b"a", MODE_FILE, A, 1, 1]]]),
        _pack([3, [[b"a", MODE_FILE, A, 1, 1], [b"a", MODE_FILE, A, 1, 1]]]),
        _pack([4, [b"a"], 1, A, 1, 1, B, 0, None, None]),  # missing signature
        _pack([4, [b"a"], 1, A, 1, 1, B, 0, None, None, None, None]),
        _pack([4, [], 1, A, 1, 1, B, 0, None, None, None]),
        _pack([4, ["a"], 1, A, 1, 1, B, 0, None, None, None]),
        _pack([4, [b"a"], 1, A, 1, 1, B, -1, None, None, None]),
        # Non-canonical: a small int written as uint32.
        b"\x92\x02\x91\x93\xc4\x20" + A + b"\xce\x00\x00\x00\x01\x01",
        b"\x92\x01\xc4\x00\x00",  # extra data after a valid object
        b"\xc1",
        b"\x92\x02\x91\x93\xc4\x20" + A + b"\x01\xd4\x00\x00",  # ext type as kind
    ],
)
def test_decode_rejects(raw: bytes) -> None:
    with pytest.raises(InvalidObject):
        decode(raw)


def test_decode_rejects_oversized() -> None:
    with pytest.raises(InvalidObject):
        decode(blob_header(MAX_BLOB_SIZE) + b"x" * MAX_BLOB_SIZE + b"x")


def _only_invalid_object(raw: bytes) -> None:
    try:
        obj = decode(raw)
    except InvalidObject:
        return
    assert encode(obj) == raw  # whatever decodes is canonical


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_invalid_object(raw: bytes) -> None:
    _only_invalid_object(raw)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(FIXED)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 300),
)
def test_mutated_objects_raise_only_invalid_object(
    key: str, edits: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(encode(FIXED[key]))
    for pos, value in edits:
        raw[pos % len(raw)] = value
    _only_invalid_object(bytes(raw))
    _only_invalid_object(bytes(raw[: len(raw) - cut % len(raw)]))


_names = st.lists(
    st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\0" not in b),
    max_size=8,
    unique=True,
).map(lambda ns: sorted(n for n in ns if n not in (b".", b"..")))
_ids = st.binary(min_size=32, max_size=32)


@st.composite
def _objects(draw: st.DrawFn) -> Object:
    which = draw(st.sampled_from(list(Kind)))
    if which is Kind.BLOB:
        return Blob(draw(st.binary(max_size=300)))
    if which is Kind.MANIFEST:
        entries = draw(
            st.lists(
                st.builds(
                    Pointer, _ids, st.integers(0, MAX_BLOB_SIZE), st.sampled_from([*Kind][:2])
                ),
                min_size=1,
                max_size=5,
            )
        )
        return Manifest(tuple(entries))
    if which is Kind.TREE:
        rows = []
        for n in draw(_names):
            mode = draw(st.sampled_from([MODE_FILE, MODE_EXECUTABLE, MODE_DIRECTORY]))
            kind = Kind.TREE if mode == MODE_DIRECTORY else Kind.BLOB
            rows.append(TreeEntry(n, mode, draw(_ids), draw(st.integers(0, 2**50)), kind))
        return Tree(tuple(rows))
    comps = draw(st.lists(st.binary(min_size=1, max_size=5), min_size=1, max_size=4))
    name = Name(comps)
    if name.version is not None:
        name = name.append(b"x")
    return Version(
        name,
        draw(st.integers(1, 2**63 - 1)),
        draw(_ids),
        draw(st.sampled_from([Kind.BLOB, Kind.MANIFEST, Kind.TREE])),
        draw(st.integers(0, 2**63 - 1)),
        draw(_ids),
        draw(st.integers(0, 2**63 - 1)),
        draw(st.none() | _ids),
        draw(st.none() | st.binary(max_size=64)),
        draw(st.none() | st.binary(max_size=100)),
    )


@settings(max_examples=300, deadline=None)
@given(_objects())
def test_round_trip_every_kind(obj: Object) -> None:
    raw = encode(obj)
    assert decode(raw) == obj
    assert decode(memoryview(raw)) == obj
    assert validate(raw) is obj.kind
    assert id_of(obj) == object_id(raw)
    assert len(raw) <= MAX_OBJECT_SIZE


def test_tree_content_hash_depends_on_every_field() -> None:
    base = [(b"a", MODE_FILE, 1, A), (b"b", MODE_DIRECTORY, 2, B)]
    h = tree_content_hash(base)
    assert len(h) == 32
    assert tree_content_hash(list(base)) == h
    for i in range(4):
        changed = list(base[0])
        changed[i] = {0: b"c", 1: MODE_EXECUTABLE, 2: 7, 3: C}[i]
        assert tree_content_hash([tuple(changed), base[1]]) != h  # type: ignore[list-item]
