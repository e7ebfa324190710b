"""Names: the one canonical name type, its URI text form and version helpers.

A name is an immutable sequence of non-empty byte-string components. Text is parsed once, at the
edge, with :meth:`Name.parse`; everything inside ccn passes :class:`Name` values. The text form is
``/comp/comp``; bytes outside ``A-Z a-z 0-9 - . _ ~`` are written ``%XX`` (upper-case hex), so
``Name.parse(str(n)) == n`` for every name ``n``.

The parser also reads the NDN URI spellings of typed components (docs/ndn.md §2), so that a name
an NDN user writes means what it means in NDN: ``v=7`` is the version ``v7``, ``seg=1``,
``32=metadata``, ``sha256digest=<hex>`` ... are the reserved ``~T~V`` components NDN names map
to (:func:`typed_component`). Only a literal ``=`` after a known keyword or a decimal type does
that; ``v%3D7`` is the plain component ``v=7``, which is how the printer writes it, so the
round trip above still holds. This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final, NoReturn, overload

from ccn.errors import InvalidName
from ccn.ndn.tlv import encode_nonneg

MAX_COMPONENTS: Final = 64
MAX_COMPONENT_BYTES: Final = 255
MAX_NAME_BYTES: Final = 2048

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_UNRESERVED_RUN: Final = re.compile(rb"[A-Za-z0-9\-._~]*")
_VERSION_RE: Final = re.compile(rb"v(0|[1-9][0-9]{0,17})")
_PLAIN: Final = re.compile(r"[\x21-\x24\x26-\x7e]*")  # printable ASCII but '%': taken as it is
_LOCALHOST: Final = b"localhost"
# NDN typed components (docs/ndn.md §2): the spellings of NDN URIs (ndn-cxx, python-ndn).
NDN_GENERIC: Final = 8
NDN_VERSION: Final = 54
NDN_KEYWORDS: Final = {
    "sha256digest": 1,
    "params-sha256": 2,
    "seg": 50,
    "off": 52,
    "v": NDN_VERSION,
    "t": 56,
    "seq": 58,
}
_NDN_DIGESTS: Final = frozenset((1, 2))
_NDN_FORM: Final = re.compile(r"([0-9]+|[a-z][a-z0-9-]*)=(.*)", re.DOTALL)
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_MAX_VERSION: Final = 10**18
_LOCALHOP: Final = b"localhop"


def _escape(component: bytes) -> str:
    if _UNRESERVED_RUN.fullmatch(component):  # the common case: nothing to escape
        return component.decode("ascii")
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in component)


def _unescape(text: str) -> bytes:
    if _PLAIN.fullmatch(text):  # the common case: nothing escaped
        return text.encode("ascii")
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            hexpair = text[i + 1 : i + 3]
            if len(hexpair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in hexpair):
                raise InvalidName(f"bad percent-escape in name component {text!r}")
            out.append(int(hexpair, 16))
            i += 3
            continue
        code = ord(ch)
        if code > 0x9F:  # a letter of another script, say: its UTF-8 bytes (as NDN tools read it)
            try:
                out += ch.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (from bytes that were not UTF-8)
                raise InvalidName(f"character {ch!r} must be percent-escaped in {text!r}") from None
            i += 1
            continue
        if code > 0x7E or code < 0x21:
            raise InvalidName(f"character {ch!r} must be percent-escaped in {text!r}")
        out.append(code)
        i += 1
    return bytes(out)


def typed_component(t: int, value: bytes) -> bytes:
    """The ccn component of the NDN component of TLV-TYPE ``t`` and ``value`` (docs/ndn.md §2):
    a version ``v=N`` (shortest, N < 10^18) is ``vN``; a generic component is itself unless it
    is empty, starts with ``~`` or looks like a ccn version; anything else is ``~T~V``."""
    if t == NDN_GENERIC and value and value[0] != 0x7E and not _VERSION_RE.fullmatch(value):
        return value
    if t == NDN_VERSION and len(value) in (1, 2, 4, 8):
        n = int.from_bytes(value, "big")
        if n < _MAX_VERSION and encode_nonneg(n) == value:
            return b"v%d" % n
    return b"~%d~" % t + value


def _component(text: str) -> bytes:
    """One component of the text form: ccn's own spelling, or an NDN URI typed component."""
    if "=" not in text:
        return _unescape(text)
    m = _NDN_FORM.fullmatch(text)
    if m is None or not (m[1] in NDN_KEYWORDS or m[1].isdigit()):
        return _unescape(text)
    key, value = m[1], m[2]
    plain = text.replace("=", "%3D")
    if key in NDN_KEYWORDS:
        t = NDN_KEYWORDS[key]
        if t in _NDN_DIGESTS:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
                _not_ndn(text, f"{key}= takes 64 hex digits", plain)
            return typed_component(t, bytes.fromhex(value))
        if not _DECIMAL.fullmatch(value) or int(value) >= 1 << 64:
            _not_ndn(text, f"{key}= takes a number from 0 to 2^64-1, no leading zeros", plain)
        return typed_component(t, encode_nonneg(int(value)))
    t = int(key)
    if not (key == str(t) and 1 <= t <= 0xFFFF):
        _not_ndn(text, "the type of T=VALUE is a number from 1 to 65535", plain)
    raw = _unescape(value)
    if t in _NDN_DIGESTS and len(raw) != 32:
        _not_ndn(text, f"a type {t} (digest) component is 32 bytes", plain)
    return typed_component(t, raw)


def _not_ndn(text: str, why: str, plain: str) -> NoReturn:
    raise InvalidName(
        f"{text!r} reads as an NDN typed component, but {why}; write {plain} for a plain component"
    )


def _explain_component(c: object) -> None:
    if type(c) is not bytes:
        raise InvalidName(f"name component must be bytes, not {type(c).__name__}")
    if not c:
        raise InvalidName("name components must not be empty")
    raise InvalidName(f"name component longer than {MAX_COMPONENT_BYTES} bytes")


_set: Final = object.__setattr__
#: Whether this module runs compiled (mypyc, docs/compiled.md). Compiled, ``self.x = ...`` in
#: ``__init__`` is a native store that does not consult ``__setattr__``, and ``object.__setattr__``
#: refuses a class that defines its own; interpreted, it is the other way round.
_NATIVE: Final = not __file__.endswith(".py")


class Name:
    """An immutable, hashable, ordered sequence of byte-string components.

    Order is lexicographic over components, each compared as bytes, so a prefix sorts before
    the names it is a prefix of.
    """

    __slots__ = ("_comps", "_hash")

    _comps: tuple[bytes, ...]
    _hash: int

    def __init__(self, components: Iterable[bytes] = ()) -> None:
        comps = components if type(components) is tuple else tuple(components)
        total = 0
        for c in comps:
            n = len(c) if type(c) is bytes else -1
            if not 0 < n <= MAX_COMPONENT_BYTES:
                _explain_component(c)
            total += n
        if total > MAX_NAME_BYTES or len(comps) > MAX_COMPONENTS:
            raise InvalidName(
                f"name too long: at most {MAX_COMPONENTS} components, {MAX_NAME_BYTES} bytes"
            )
        if _NATIVE:
            self._comps = comps
            self._hash = hash(comps)
        else:
            _set(self, "_comps", comps)
            _set(self, "_hash", hash(comps))

    @classmethod
    def parse(cls, text: str) -> Name:
        """Parse the URI form (``/a/b/v3``). A leading ``/`` is required; ``/`` alone is root.
        NDN URI typed components are read as NDN reads them: ``/a/b/v=3/seg=0`` is
        ``/a/b/v3/~50~%00``."""
        if not isinstance(text, str):
            raise InvalidName(f"name must be text, not {type(text).__name__}")
        if not text.startswith("/"):
            raise InvalidName(f"name must start with '/': {text!r}")
        if text == "/":
            return ROOT
        body = text[1:-1] if text.endswith("/") else text[1:]
        parts = body.split("/")
        if any(not p for p in parts):
            raise InvalidName(f"empty component in name {text!r}")
        return cls(_component(p) for p in parts)

    # -- value behaviour -------------------------------------------------------------------

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Name is immutable")

    def __reduce__(self) -> tuple[type[Name], tuple[tuple[bytes, ...]]]:
        return (Name, (self._comps,))

    @property
    def components(self) -> tuple[bytes, ...]:
        return self._comps

    def __str__(self) -> str:
        if not self._comps:
            return "/"
        return "/" + "/".join(_escape(c) for c in self._comps)

    def __repr__(self) -> str:
        return f"Name({str(self)!r})"

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Name):
            return self._comps == other._comps
        return NotImplemented

    def __lt__(self, other: Name) -> bool:
        return self._comps < other._comps

    def __le__(self, other: Name) -> bool:
        return self._comps <= other._comps

    def __gt__(self, other: Name) -> bool:
        return self._comps > other._comps

    def __ge__(self, other: Name) -> bool:
        return self._comps >= other._comps

    def __len__(self) -> int:
        return len(self._comps)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._comps)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Name: ...
    def __getitem__(self, index: int | slice) -> bytes | Name:
        if isinstance(index, slice):
            return Name(self._comps[index])
        return self._comps[index]

    def __truediv__(self, component: bytes | str) -> Name:
        """``name / b"comp"`` appends one component (text is UTF-8 encoded, not parsed)."""
        if isinstance(component, str):
            component = component.encode()
        return Name((*self._comps, component))

    def append(self, *components: bytes) -> Name:
        return Name(self._comps + components)

    def is_prefix_of(self, other: Name) -> bool:
        n = len(self._comps)
        return n <= len(other._comps) and other._comps[:n] == self._comps

    def prefixes(self) -> Iterator[Name]:
        """Every prefix, longest first, down to the root."""
        for i in range(len(self._comps), -1, -1):
            yield Name(self._comps[:i])

    # -- versions --------------------------------------------------------------------------

    @property
    def version(self) -> int | None:
        """The version number if the last component is ``v<decimal>``, else ``None``."""
        if self._comps:
            m = _VERSION_RE.fullmatch(self._comps[-1])
            if m:
                return int(m.group(1))
        return None

    def with_version(self, version: int) -> Name:
        """This name (its own version dropped, if any) with ``/v<version>`` appended."""
        if version < 0:
            raise InvalidName("version numbers are non-negative")
        return self.unversioned().append(version_component(version))

    def unversioned(self) -> Name:
        return self[:-1] if self.version is not None else self

    # -- scopes ----------------------------------------------------------------------------

    @property
    def is_localhost(self) -> bool:
        """``/localhost/...`` names never leave the node."""
        return bool(self._comps) and self._comps[0] == _LOCALHOST

    @property
    def is_localhop(self) -> bool:
        """``/localhop/...`` names travel at most one hop."""
        return bool(self._comps) and self._comps[0] == _LOCALHOP


def version_component(version: int) -> bytes:
    return b"v%d" % version


ROOT: Final = Name()
LOCALHOST: Final = Name((_LOCALHOST,))
LOCALHOP: Final = Name((_LOCALHOP,))
