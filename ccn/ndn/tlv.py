"""NDN TLV primitives (packet format v0.3): VAR-NUMBERs, NonNegativeIntegers, elements, framing.

Pure and strict: decoders accept only the shortest VAR-NUMBER encodings and NonNegativeIntegers
of 1, 2, 4 or 8 bytes, and raise :class:`NdnDecodeError` — never another exception — for
anything else. :class:`TlvFramer` cuts a byte stream into top-level elements. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator

from ccn.errors import DecodeError

#: Largest NDN packet (a top-level element, TL included), as in NDN's MAX_NDN_PACKET_SIZE.
MAX_PACKET_SIZE = 8800

T_INTEREST = 0x05
T_DATA = 0x06
T_LP_PACKET = 0x64
TOP_LEVEL_TYPES = frozenset((T_INTEREST, T_DATA, T_LP_PACKET))

Buffer = bytes | bytearray | memoryview


class NdnDecodeError(DecodeError):
    """Bytes are not a valid NDN TLV structure. The only error the NDN decoders raise."""


class NdnFrameError(NdnDecodeError):
    """The stream is not NDN TLV (bad top-level type, oversized element): close it."""


def encode_varnum(n: int) -> bytes:
    if n < 253:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "big")
    return b"\xff" + n.to_bytes(8, "big")


def read_varnum(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Read one VAR-NUMBER at ``pos``; return ``(value, next position)``. Shortest form only."""
    if pos >= end:
        raise NdnDecodeError("truncated TLV: missing VAR-NUMBER")
    first = buf[pos]
    if first < 253:
        return first, pos + 1
    size = 2 if first == 253 else 4 if first == 254 else 8
    stop = pos + 1 + size
    if stop > end:
        raise NdnDecodeError("truncated TLV: short VAR-NUMBER")
    value = int.from_bytes(buf[pos + 1 : stop], "big")
    minimum = 253 if size == 2 else 0x10000 if size == 4 else 0x100000000
    if value < minimum:
        raise NdnDecodeError("VAR-NUMBER not in its shortest encoding")
    return value, stop


def encode_nonneg(n: int) -> bytes:
    """A NonNegativeInteger in 1, 2, 4 or 8 bytes (the shortest that fits)."""
    if n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"NonNegativeInteger out of range: {n}")
    for size in (1, 2, 4, 8):
        if n < 1 << (8 * size):
            return n.to_bytes(size, "big")
    raise AssertionError


def decode_nonneg(value: Buffer) -> int:
    if len(value) not in (1, 2, 4, 8):
        raise NdnDecodeError(f"NonNegativeInteger of {len(value)} bytes")
    return int.from_bytes(value, "big")


def tlv(t: int, value: Buffer = b"") -> bytes:
    return encode_varnum(t) + encode_varnum(len(value)) + bytes(value)


def tlv_nonneg(t: int, n: int) -> bytes:
    return tlv(t, encode_nonneg(n))


def is_critical(t: int) -> bool:
    """Unrecognised critical elements make a packet invalid; non-critical ones are skipped."""
    return t <= 31 or t & 1 == 1


def read_tl(buf: Buffer, pos: int, end: int) -> tuple[int, int, int]:
    """Read one element header at ``pos``: ``(type, value start, value end)``."""
    t, pos = read_varnum(buf, pos, end)
    n, pos = read_varnum(buf, pos, end)
    if t == 0:
        raise NdnDecodeError("TLV-TYPE 0 is invalid")
    stop = pos + n
    if stop > end:
        raise NdnDecodeError(f"truncated TLV: element {t} wants {n} bytes")
    return t, pos, stop


def iter_elements(buf: Buffer, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Every element in ``buf[pos:end]``, which they must fill exactly."""
    while pos < end:
        t, start, stop = read_tl(buf, pos, end)
        yield t, start, stop
        pos = stop


def unwrap(wire: Buffer, expected: int) -> tuple[int, int]:
    """Check ``wire`` is exactly one element of type ``expected``; return its value bounds."""
    t, start, stop = read_tl(wire, 0, len(wire))
    if t != expected:
        raise NdnDecodeError(f"expected TLV-TYPE {expected}, got {t}")
    if stop != len(wire):
        raise NdnDecodeError("trailing bytes after the element")
    return start, stop


class TlvFramer:
    """Cuts a byte stream into top-level elements (Interest, Data, LpPacket), whole, as bytes.

    A top-level type other than those, or an element above :data:`MAX_PACKET_SIZE`, raises
    :class:`NdnFrameError`; the framer is then poisoned (the stream must be closed).
    """

    __slots__ = ("_buf", "_error")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: NdnFrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of an element."""
        return len(self._buf)

    def feed(self, data: Buffer) -> list[bytes]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while pos < end:
            try:
                t, p = read_varnum(buf, pos, end)
                n, p = read_varnum(buf, p, end)
            except NdnDecodeError as e:
                if "shortest" in str(e):
                    raise self._fail(str(e)) from None
                break  # the header is not all here yet
            if t not in TOP_LEVEL_TYPES:
                raise self._fail(f"TLV-TYPE {t} is not an NDN packet")
            if p - pos + n > MAX_PACKET_SIZE:
                raise self._fail(f"element of {p - pos + n} bytes exceeds {MAX_PACKET_SIZE}")
            stop = p + n
            if stop > end:
                break
            out.append(bytes(buf[pos:stop]))
            pos = stop
        del buf[:pos]
        return out

    def _fail(self, message: str) -> NdnFrameError:
        self._error = NdnFrameError(message)
        return self._error
