"""Refs: which version objects are published under which name, and pins.

This module owns the mapping ``name → [(v1, id), (v2, id), ...]``. Rules it keeps:

* a ref name is a non-empty :class:`~ccn.name.Name` without a version component;
* a name's versions only grow: :meth:`RefStore.compare_and_swap` appends version ``number``
  only if the latest version is still ``expected``, else raises
  :class:`~ccn.errors.RefConflict`, so two publishers can never both become ``v(n+1)``;
* every accepted update is kept, in order, with its time: the list *is* the log.

Pins name versions (or "whatever is latest") that must be kept; GC will treat them, and every
published version, as roots. :class:`MemoryRefStore` and :class:`DiskRefStore` are twins that
pass one contract test. This module stores ids but never reads objects.
"""

from __future__ import annotations

import abc
import bisect
import fcntl
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Final

from blake3 import blake3

from ccn.errors import InvalidName, NewerFormat, RefConflict, StoreError, StoreUsageError
from ccn.name import Name
from ccn.store.objstore import check_id

Clock = Callable[[], int]

_LOG_MAGIC: Final = "ccn-ref 1"
_PINS_MAGIC: Final = "ccn-pins 1"
_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_MAX_ESCAPED: Final = 200
#: A header line is at most the magic and a name escaped (3 characters a byte, 2048 bytes).
_HEADER_READ: Final = 8192
#: A directory name that is a component exactly (nothing escaped, no leading dot).
_PLAIN_DIR: Final = re.compile(r"[A-Za-z0-9\-_~][A-Za-z0-9\-._~]{0,199}")
#: The same, as the component's bytes.
_PLAIN_COMPONENT: Final = re.compile(_PLAIN_DIR.pattern.encode("ascii"))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One accepted ref update: version ``number`` of the name is object ``id``."""

    number: int
    id: bytes
    time_ns: int


@dataclass(frozen=True, slots=True)
class Pin:
    """Keep version ``number`` of ``name``, or its latest version if ``number`` is None.

    ``id`` is the version object's id when the version is not published here (a consumer
    pinning what it fetched); for names published here it is None and the ref gives the id."""

    name: Name
    number: int | None
    id: bytes | None = None


def check_ref_name(name: object) -> Name:
    """Return ``name`` if it can name a ref, else raise :class:`~ccn.errors.InvalidName`."""
    if not isinstance(name, Name):
        raise InvalidName(f"a ref name must be a Name, not {type(name).__name__}")
    if len(name) == 0 or name.version is not None:
        raise InvalidName(f"a ref name must be non-empty and carry no version: {name}")
    return name


def _check_number(label: str, number: object) -> int:
    if type(number) is not int or number < 1:
        raise StoreUsageError(f"{label} must be a version number >= 1, got {number!r}")
    return number


class RefStore(abc.ABC):
    """Published names and pins. Thread-safe; the disk twin is also safe across processes."""

    def latest(self, name: Name) -> tuple[int, bytes] | None:
        """The highest published version of ``name`` and its id, or None."""
        log = self.log(name)
        return (log[-1].number, log[-1].id) if log else None

    def get(self, name: Name, number: int) -> bytes | None:
        """The id of version ``number`` of ``name``, or None."""
        _check_number("version", number)
        for e in self.log(name):
            if e.number == number:
                return e.id
        return None

    def versions(self, name: Name) -> list[tuple[int, bytes]]:
        """Every published version of ``name``, oldest first."""
        return [(e.number, e.id) for e in self.log(name)]

    @abc.abstractmethod
    def log(self, name: Name) -> list[LogEntry]:
        """Every accepted update of ``name`` in order (empty if never published)."""

    @abc.abstractmethod
    def names(self, prefix: Name | None = None) -> list[Name]:
        """Published names under ``prefix`` (itself included), sorted."""

    def iter_names(self, prefix: Name | None = None, after: Name | None = None) -> Iterator[Name]:
        """:meth:`names`, in the same order, one at a time: those that come after ``after``
        (a cursor: the last name of an earlier page; None: from the first). The disk twin
        reads only what it gives (and the directories on the way), so a page of a big store
        costs about the page, not the store."""
        for name in self.names(prefix):
            if after is None or name > after:
                yield name

    def compare_and_swap(
        self, name: Name, expected: int | None, number: int, version_id: bytes
    ) -> None:
        """Publish ``version_id`` as version ``number`` of ``name`` if the latest version is
        still ``expected`` (None: never published). ``number`` must exceed ``expected``.

        Raises :class:`~ccn.errors.RefConflict` if another publisher got there first.
        """
        check_ref_name(name)
        if expected is not None:
            _check_number("expected version", expected)
        _check_number("version", number)
        if number <= (expected or 0):
            raise StoreUsageError(f"version {number} must be above the expected {expected}")
        check_id(version_id)
        self._check_open()
        self._cas(name, expected, number, version_id)

    @abc.abstractmethod
    def _cas(self, name: Name, expected: int | None, number: int, version_id: bytes) -> None: ...

    # -- pins ------------------------------------------------------------------------------

    def pin(self, name: Name, number: int | None = None, version_id: bytes | None = None) -> None:
        """Keep version ``number`` of ``name`` (None: its latest version, whatever it is).
        ``version_id`` records the version's id for a name not published here (it needs a
        number). Pinning the same version again replaces the earlier pin."""
        p = self._pin(name, number, version_id)

        def add(pins: frozenset[Pin]) -> frozenset[Pin]:
            return frozenset(q for q in pins if (q.name, q.number) != (name, number)) | {p}

        self._update_pins(add)

    def unpin(self, name: Name, number: int | None = None) -> bool:
        """Drop the pin of version ``number`` of ``name`` (None: the pin of its latest
        version); return whether it existed."""
        self._pin(name, number)
        found = False

        def drop(pins: frozenset[Pin]) -> frozenset[Pin]:
            nonlocal found
            kept = frozenset(q for q in pins if (q.name, q.number) != (name, number))
            found = len(kept) != len(pins)
            return kept

        self._update_pins(drop)
        return found

    def pins(self) -> list[Pin]:
        return sorted(self._read_pins(), key=_pin_key)

    @staticmethod
    def _pin(name: Name, number: int | None, version_id: bytes | None = None) -> Pin:
        check_ref_name(name)
        if number is not None:
            _check_number("pinned version", number)
        if version_id is not None:
            check_id(version_id)
            if number is None:
                raise StoreUsageError("a pin by version id needs a version number")
        return Pin(name, number, version_id)

    @abc.abstractmethod
    def _read_pins(self) -> frozenset[Pin]: ...

    @abc.abstractmethod
    def _update_pins(self, change: Callable[[frozenset[Pin]], frozenset[Pin]]) -> None: ...

    # -- lifetime --------------------------------------------------------------------------

    _closed: bool = False

    def close(self) -> None:
        """Refuse further use. (No resources are held between calls today.)"""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("ref store is closed")

    def __enter__(self) -> RefStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _pin_key(p: Pin) -> tuple[Name, int]:
    return (p.name, -1 if p.number is None else p.number)


def _conflict(name: Name, current: int | None, expected: int | None) -> RefConflict:
    def show(n: int | None) -> str:
        return "nothing" if n is None else f"v{n}"

    return RefConflict(f"{name}: latest is {show(current)}, expected {show(expected)}")


class MemoryRefStore(RefStore):
    """Refs in dicts, for tests and ephemeral nodes."""

    def __init__(self, *, clock: Clock = time.time_ns) -> None:
        self._clock = clock
        self._logs: dict[Name, list[LogEntry]] = {}
        self._pins: frozenset[Pin] = frozenset()
        self._lock = threading.Lock()

    def log(self, name: Name) -> list[LogEntry]:
        check_ref_name(name)
        self._check_open()
        with self._lock:
            return list(self._logs.get(name, ()))

    def names(self, prefix: Name | None = None) -> list[Name]:
        with self._lock:
            found = list(self._logs)
        return sorted(n for n in found if prefix is None or prefix.is_prefix_of(n))

    def _cas(self, name: Name, expected: int | None, number: int, version_id: bytes) -> None:
        with self._lock:
            log = self._logs.setdefault(name, [])
            current = log[-1].number if log else None
            if current != expected:
                raise _conflict(name, current, expected)
            log.append(LogEntry(number, version_id, self._clock()))

    def _read_pins(self) -> frozenset[Pin]:
        return self._pins

    def _update_pins(self, change: Callable[[frozenset[Pin]], frozenset[Pin]]) -> None:
        with self._lock:
            self._pins = change(self._pins)


class DiskRefStore(RefStore):
    """Refs as files under ``<root>/refs/``, one directory per name, pins in ``<root>/pins``.

    A name's directory is its components, each percent-escaped (bytes outside
    ``A-Z a-z 0-9 - . _ ~``, and a leading ``.``; components that would escape to more than
    200 characters become ``%H`` + blake3 hex). It holds ``.log`` (the name, then one line
    ``<number> <hex id> <time_ns>`` per version) and ``.lock``. Updates take an exclusive
    ``flock`` on ``.lock``, re-read ``.log``, write a new one to a temp file and rename it over;
    readers take no lock and always see a complete file.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = True, clock: Clock = time.time_ns
    ) -> None:
        self.root = os.fspath(root)
        self.fsync = fsync
        self._clock = clock
        self._refdir = os.path.join(self.root, "refs")
        self._pins_path = os.path.join(self.root, "pins")
        self._token = secrets.token_hex(4)
        self._listings = _Listings()
        os.makedirs(self._refdir, exist_ok=True)

    def _dir(self, name: Name) -> str:
        return os.path.join(self._refdir, *(_escape_component(c) for c in name))

    # -- reading ---------------------------------------------------------------------------

    def log(self, name: Name) -> list[LogEntry]:
        check_ref_name(name)
        self._check_open()
        return self._read_log(os.path.join(self._dir(name), ".log"), name)

    def _read_log(self, path: str, name: Name | None) -> list[LogEntry]:
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("ascii").splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as e:
            raise StoreError(f"cannot read ref file {path}: {e}") from None
        if not lines:
            raise StoreError(f"ref file {path} is empty")
        # the header as this module writes it, else whatever spelling of the name it holds
        if lines[0] != f"{_LOG_MAGIC} {name}" and _header_name(lines[0], _LOG_MAGIC, path) != name:
            raise StoreError(f"ref file {path} does not belong to {name}")
        entries = []
        for line in lines[1:]:
            try:
                num, hexid, t = line.split(" ")
                entry = LogEntry(int(num), bytes.fromhex(hexid), int(t))
                check_id(entry.id)
            except (ValueError, StoreUsageError):
                raise StoreError(f"malformed line in ref file {path}: {line!r}") from None
            entries.append(entry)
        return entries

    def names(self, prefix: Name | None = None) -> list[Name]:
        # Only the prefix's own directory is walked, and its path is the prefix's components
        # (whatever their escaping), so the names below it come off their paths too.
        top = () if prefix is None else prefix.components
        found: list[Name] = []
        _log_names(self._refdir if prefix is None or not top else self._dir(prefix), found, top)
        if prefix is not None and top:  # a header (of an escaped name) may say otherwise
            found = [n for n in found if prefix.is_prefix_of(n)]
        return sorted(found, key=_components)  # Name's order, compared in C

    def iter_names(self, prefix: Name | None = None, after: Name | None = None) -> Iterator[Name]:
        top = () if prefix is None else prefix.components
        cursor = None if after is None else after.components
        if cursor is not None and cursor[: len(top)] != top:
            if cursor > top:
                return  # the whole subtree comes before the cursor
            cursor = None
        path = self._dir(prefix) if prefix is not None and top else self._refdir
        last: Name | None = None
        for name in _ordered_names(self._listings, path, top, True, cursor):
            # A header that names something else than its path (damage) could put a name
            # out of order or outside the prefix: left out, so no cursor goes back.
            if last is not None and name <= last:
                continue
            if (after is not None and name <= after) or (
                prefix is not None and not prefix.is_prefix_of(name)
            ):
                continue
            last = name
            yield name

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self, lock_path: str) -> Iterator[None]:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    def _replace(self, path: str, text: str) -> None:
        tmp = f"{path}.tmp.{os.getpid()}.{self._token}.{threading.get_ident()}"
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.write(text)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self.fsync:
            fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _cas(self, name: Name, expected: int | None, number: int, version_id: bytes) -> None:
        d = self._dir(name)
        os.makedirs(d, exist_ok=True)
        log_path = os.path.join(d, ".log")
        with self._locked(os.path.join(d, ".lock")):
            log = self._read_log(log_path, name)
            current = log[-1].number if log else None
            if current != expected:
                raise _conflict(name, current, expected)
            log.append(LogEntry(number, version_id, self._clock()))
            lines = [f"{_LOG_MAGIC} {name}"]
            lines += [f"{e.number} {e.id.hex()} {e.time_ns}" for e in log]
            self._replace(log_path, "\n".join(lines) + "\n")

    # -- pins ------------------------------------------------------------------------------

    def _read_pins(self) -> frozenset[Pin]:
        path = self._pins_path
        try:
            with open(path, encoding="ascii") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return frozenset()
        if not lines or lines[0] != _PINS_MAGIC:
            if lines:
                _check_family(lines[0], _PINS_MAGIC, str(path))
            raise StoreError(f"pins file {path} is malformed")
        pins = set()
        for line in lines[1:]:
            try:
                text, which, *rest = line.split(" ")
                number = None if which == "latest" else int(which)
                vid = bytes.fromhex(rest[0]) if len(rest) == 1 else None
                if len(rest) > 1:
                    raise ValueError(line)
                pins.add(self._pin(Name.parse(text), number, vid))
            except (ValueError, InvalidName, StoreUsageError):
                raise StoreError(f"malformed line in pins file {path}: {line!r}") from None
        return frozenset(pins)

    def _update_pins(self, change: Callable[[frozenset[Pin]], frozenset[Pin]]) -> None:
        with self._locked(self._pins_path + ".lock"):
            pins = change(self._read_pins())
            lines = [_PINS_MAGIC]
            lines += [
                f"{p.name} {'latest' if p.number is None else p.number}"
                + ("" if p.id is None else f" {p.id.hex()}")
                for p in sorted(pins, key=_pin_key)
            ]
            self._replace(self._pins_path, "\n".join(lines) + "\n")

    def __repr__(self) -> str:
        return f"DiskRefStore({self.root!r}, fsync={self.fsync})"


def _escape_component(component: bytes) -> str:
    if _PLAIN_COMPONENT.fullmatch(component):  # the common case: written as it is
        return component.decode("ascii")
    text = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in component)
    if text.startswith("."):
        text = "%2E" + text[1:]
    if len(text) > _MAX_ESCAPED:
        text = "%H" + blake3(component).hexdigest()
    return text


def _check_family(line: str, magic: str, path: str) -> None:
    """Raise :class:`NewerFormat` if ``line`` is ``magic``'s header with another version."""
    family, _, reads = magic.rpartition(" ")
    word = line[len(family) + 1 :].partition(" ")[0]
    if line.startswith(family + " ") and word.isdigit() and word != reads:
        raise NewerFormat(path, family, word, int(reads))


def _header_name(line: str, magic: str, path: str) -> Name:
    if not line.startswith(magic + " "):
        _check_family(line, magic, path)
        raise StoreError(f"file {path} has no {magic!r} header")
    try:
        return Name.parse(line[len(magic) + 1 :])
    except InvalidName:
        raise StoreError(f"file {path} names no valid name") from None


def _components(name: Name) -> tuple[bytes, ...]:
    return name.components


def _log_names(top: str, found: list[Name], parent: tuple[bytes, ...] | None = None) -> None:
    """Append the name of every ``.log`` below ``top``. One ``scandir`` per directory; a name
    is the path's components, unescaped, when every directory of it is written as
    :func:`_escape_component` writes a component with nothing to escape (the common case: no
    file is opened), else the name in the log's header. Unreadable directories are skipped,
    as ``os.walk`` does. ``parent``: the components of ``top`` (None: unknown, read headers)."""
    try:
        entries = os.scandir(top)
    except OSError:
        return
    with entries:
        for entry in entries:
            text = entry.name
            if text == ".log":
                found.append(_path_name(parent) or _log_name(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                below = None
                if parent is not None and _PLAIN_DIR.fullmatch(text):
                    below = (*parent, text.encode("ascii"))
                _log_names(entry.path, found, below)


#: A directory of refs with at least this many entries keeps its sorted listing in memory
#: between pages (while it does not change): a page of ``ccn ls`` of 66,000 names in one
#: directory listed and sorted them all again, 0.4 s a page.
_KEEP_LISTING: Final = 1024
#: At most this many listings are kept.
_KEPT_LISTINGS: Final = 16
#: A listing is kept only if its directory had not changed for this long when it was read: a
#: change within the file system's timestamp granularity would not change its mtime.
_SETTLED_NS: Final = 2_000_000_000

#: A directory's children in Name order: the component of a subdirectory, or a name read from
#: a header (below a directory whose name is a hashed component).
_Children = list[bytes | Name]


class _Listings:
    """Sorted listings of big ref directories, each valid while its (inode, mtime) holds."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int], str | None, _Children]] = {}
        self._lock = threading.Lock()

    def children(self, path: str, comps: tuple[bytes, ...]) -> tuple[str | None, _Children] | None:
        """The ``.log`` of directory ``path`` (the name ``comps``; None if it has none) and
        its children in Name order; None if it cannot be read."""
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None:
            try:
                st = os.stat(path)
            except OSError:
                return None
            if kept[0] == (st.st_ino, st.st_mtime_ns):
                return kept[1], kept[2]
        began = time.time_ns()
        read = _read_children(path, comps)
        if read is None:
            return None
        log, children, named = read
        # Kept only if the directory had not changed for a while when it was read (then it
        # is a whole listing of that state) and no child is a hashed component (what lies
        # below one can change without changing this directory).
        if len(children) >= _KEEP_LISTING and not named:
            try:
                st = os.stat(path)
            except OSError:
                return log, children
            if st.st_mtime_ns < began - _SETTLED_NS:
                with self._lock:
                    if len(self._kept) >= _KEPT_LISTINGS:
                        del self._kept[next(iter(self._kept))]
                    self._kept[path] = ((st.st_ino, st.st_mtime_ns), log, children)
        return log, children


def _read_children(
    path: str, comps: tuple[bytes, ...]
) -> tuple[str | None, _Children, bool] | None:
    """:meth:`_Listings.children`, read from the directory, and whether any child is a name
    read from a header."""
    depth = len(comps)
    try:
        entries = os.scandir(path)
    except OSError:
        return None
    log = None
    children: _Children = []
    named = False
    with entries:
        for entry in entries:
            text = entry.name
            if text == ".log":
                log = entry.path
            elif entry.is_dir(follow_symlinks=False):
                comp = _unescape_component(text)
                if comp is not None:
                    children.append(comp)
                    continue
                found: list[Name] = []
                _log_names(entry.path, found)
                for name in found:
                    if len(name) > depth and name.components[:depth] == comps:
                        children.append(name)
                        named = True
    children.sort(key=partial(_child_key, depth))
    return log, children, named


def _child_key(depth: int, child: bytes | Name) -> tuple[bytes, ...]:
    return (child,) if isinstance(child, bytes) else child.components[depth:]


def _ordered_names(
    listings: _Listings,
    path: str,
    comps: tuple[bytes, ...],
    plain: bool,
    cursor: tuple[bytes, ...] | None,
) -> Iterator[Name]:
    """The names of the logs at and below directory ``path`` (the name ``comps``), in Name
    order, lazily; with ``cursor`` (components that start with ``comps``), only those after
    it, and the subdirectories before the cursor's are not read. A directory's component is
    its name unescaped; a name is read from its log's header unless every directory of its
    path is plain (``plain``: this one's are), as :func:`_log_names` does. Below a directory
    whose name cannot be unescaped (``%H``: a hashed long component) the headers are read
    first, to know where in the order those names go (rare: components over 66 bytes)."""
    listing = listings.children(path, comps)
    if listing is None:
        return
    log, children = listing
    if log is not None and cursor is None:  # on the cursor's path, this name is not after it
        yield (_path_name(comps) if plain else None) or _log_name(log)
    depth = len(comps)
    at = cursor[depth] if cursor is not None and len(cursor) > depth else None
    start = 0
    if at is not None:
        first: tuple[bytes, ...] = (at,)
        start = bisect.bisect_left(children, first, key=partial(_child_key, depth))
    for child in itertools.islice(children, start, None):
        if isinstance(child, bytes):
            below = os.path.join(path, _escape_component(child))
            below_plain = plain and _PLAIN_COMPONENT.fullmatch(child) is not None
            below_cursor = cursor if child == at else None
            yield from _ordered_names(listings, below, (*comps, child), below_plain, below_cursor)
        elif cursor is None or child.components > cursor:
            yield child


def _unescape_component(text: str) -> bytes | None:
    """The component :func:`_escape_component` writes as ``text``; None for a hashed one
    (``%H``) or a text it would not write."""
    if _PLAIN_DIR.fullmatch(text):  # the common case: nothing escaped
        return text.encode("ascii")
    if text.startswith("%H"):
        return None
    out = bytearray()
    i = 0
    try:
        while i < len(text):
            if text[i] == "%":
                out.append(int(text[i + 1 : i + 3], 16))
                i += 3
            else:
                out.append(ord(text[i]))
                i += 1
    except ValueError:  # not two hex digits, or a character that is not a byte
        return None
    comp = bytes(out)
    return comp if comp and _escape_component(comp) == text else None


def _path_name(components: tuple[bytes, ...] | None) -> Name | None:
    if components is None:
        return None
    try:
        return Name(components)
    except InvalidName:
        return None  # not a name: the header says what it is (or that the file is bad)


def _log_name(path: str) -> Name:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        head = os.read(fd, _HEADER_READ)
    finally:
        os.close(fd)
    try:
        line = head.partition(b"\n")[0].decode("ascii")
    except UnicodeDecodeError:
        raise StoreError(f"file {path} has no {_LOG_MAGIC!r} header") from None
    return _header_name(line, _LOG_MAGIC, path)
