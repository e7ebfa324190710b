"""Fuzz every decoder with hypothesis: random bytes and mutations of valid encodings.

The property is the same for each: only the decoder's own error type ever escapes (``DecodeError``
and its subclasses for packets, frames, objects and NDN TLV; nothing at all for the fragment
reassembler, which counts what it drops), and bounded state stays within its bounds.
``fuzz/atheris_decoders.py`` runs the same targets under coverage-guided atheris (not in CI).
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccn import codec
from ccn.errors import DecodeError, FrameError, InvalidObject
from ccn.frag import MAX_ASKS, Fragmenter, Reassembler, ask, fragment, parse_ask
from ccn.framing import Deframer, frame
from ccn.keys import SigningKey
from ccn.mgmt_proto import command_name, decode_reply, encode_reply, parse_command
from ccn.name import Name
from ccn.ndn import lp as ndn_lp
from ccn.ndn import packets as ndn
from ccn.ndn.mgmt import ControlParameters, decode_control_parameters
from ccn.ndn.tlv import NdnDecodeError, NdnFrameError, TlvFramer
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.store.objects import (
    Blob,
    Kind,
    Manifest,
    Pointer,
    Tree,
    TreeEntry,
    Version,
    blob_payload,
    encode,
)
from ccn.store.objects import decode as decode_object

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

_NAME = Name.parse("/fuzz/a/v3")
_ID = bytes(range(32))


def _ccn_packets() -> list[bytes]:
    i = Interest(_NAME, 12345, 4000, 32, True, True, _ID)
    return [
        codec.encode(i),
        codec.encode(Interest(Name.parse("/x"), 1)),
        codec.encode(Data(_NAME, b"content" * 10, 1000)),
        codec.encode(Nack(i, NackReason.CONGESTION)),
    ]


def _objects() -> list[bytes]:
    version = Version(Name.parse("/fuzz/a"), 3, _ID, Kind.MANIFEST, 10, _ID, 7, _ID)
    return [
        encode(Blob(b"hello")),
        encode(Manifest((Pointer(_ID, 5, Kind.BLOB), Pointer(_ID, 9, Kind.MANIFEST)))),
        encode(Tree((TreeEntry(b"f", 0o100644, _ID, 5, Kind.BLOB),))),
        encode(version),
        encode(SigningKey.generate().sign(version)),
    ]


def _ndn_packets() -> list[bytes]:
    name = ((8, b"fuzz"), ndn.version(3), ndn.segment(0))
    interest = ndn.encode_interest(name, nonce=7, can_be_prefix=True, lifetime_ms=1000).wire
    data = ndn.encode_data(name, b"payload", freshness_ms=10, final_block_id=ndn.segment(0))
    return [
        interest,
        data,
        ndn_lp.encode_lp(interest, pit_token=b"tok", nack_reason=150),
        ControlParameters(name=name, face_id=3, cost=1).encode(),
    ]


def _mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A valid encoding with a few bytes flipped, cut, inserted or deleted."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        raw = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
            at = draw(st.integers(0, max(len(raw) - 1, 0)))
            if op == "flip" and raw:
                raw[at] ^= 1 << draw(st.integers(0, 7))
            elif op == "set" and raw:
                raw[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xC0, 0xC1, 0xDC, 0xFF, 0xFD]))
            elif op == "cut":
                del raw[at:]
            elif op == "insert":
                raw[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete" and raw:
                del raw[at : at + draw(st.integers(1, 4))]
        return bytes(raw)

    return build()


def _inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), _mutated(seeds))


# -- ccn -------------------------------------------------------------------------------------


@FUZZ
@given(_inputs(_ccn_packets()))
def test_codec_decode(raw: bytes) -> None:
    try:
        packet = codec.decode(raw)
    except DecodeError:
        return
    assert codec.decode(codec.encode(packet)) == packet


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=64), _mutated([frame(p) for p in _ccn_packets()]))))
def test_deframer(chunks: list[bytes]) -> None:
    d = Deframer(max_frame=4096)
    try:
        for chunk in chunks:
            for f in d.feed(chunk):
                assert len(f) <= 4096
            assert d.buffered <= 4096 + 4 + 64
    except FrameError:
        return


@FUZZ
@given(_inputs(_objects()))
def test_object_decode(raw: bytes) -> None:
    try:
        obj = decode_object(raw)
    except InvalidObject:
        pass
    else:
        assert encode(obj) == raw  # canonical: one encoding per object
    with contextlib.suppress(InvalidObject):
        blob_payload(raw)


@FUZZ
@given(_inputs([encode_reply({"ok": True, "status": {"faces": [1, 2]}})]))
def test_management(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_reply(raw)
    name = command_name("status", {"x": 1})
    comps = [c for c in raw.split(b"/") if c][:8]
    try:
        cmd = Name((*name.components[:3], *[c[:255] for c in comps]))
    except ValueError:
        return
    with contextlib.suppress(DecodeError):
        parse_command(cmd)


# -- NDN TLV ---------------------------------------------------------------------------------


@FUZZ
@given(_inputs(_ndn_packets()))
def test_ndn_decoders(raw: bytes) -> None:
    for decoder in (
        ndn.decode_interest,
        ndn.decode_data,
        ndn.decode_name,
        ndn_lp.decode_lp,
        decode_control_parameters,
    ):
        with contextlib.suppress(NdnDecodeError):
            decoder(raw)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=64), _mutated(_ndn_packets())), max_size=8))
def test_ndn_framer(chunks: list[bytes]) -> None:
    framer = TlvFramer()
    try:
        for chunk in chunks:
            framer.feed(chunk)
    except NdnFrameError:
        return


# -- UDP fragments ---------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            _mutated(fragment(bytes(range(256)) * 4, 200, 42)),
        ),
        max_size=40,
    )
)
def test_reassembler(datagrams: list[bytes]) -> None:
    r = Reassembler(max_packets=4, max_bytes=2048, timeout=1.0)
    for n, datagram in enumerate(datagrams):
        r.feed(datagram, n * 0.1)  # no exception at all: bad fragments are counted
        assert r.pending <= 4 and r.pending_bytes <= 2048


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            _mutated([ask(42, [0, 1, 2, 7, 9], 200, rate=123_456)]),
        ),
        max_size=40,
    )
)
def test_fragment_requests(datagrams: list[bytes]) -> None:
    """Requests for missing fragments: parsed or refused (None), never an exception; a sender
    answers at most what it keeps, at most MAX_ASKS times a packet."""
    sender = Fragmenter(200, first_id=42, keep_bytes=4096)
    sender.fragment(bytes(range(256)) * 4, 0.0)
    receiver = Reassembler(ask_after=0.02, max_packets=4, max_bytes=2048)
    sent = 0
    for n, datagram in enumerate(datagrams):
        request = parse_ask(datagram)
        if request is not None:
            indexes = request.indexes(6)
            assert indexes == sorted(set(indexes)) and all(0 <= i < 6 for i in indexes)
        sent += len(sender.resend(request, n * 0.01))
        receiver.feed(datagram, n * 0.01)  # a request fed as a fragment: counted, no more
        receiver.asks(n * 0.01 + 1, 200)
    assert sender.counters.asked <= MAX_ASKS and sent <= MAX_ASKS * 6
