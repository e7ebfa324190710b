"""Versions a node has seen pass: ``name → {number: version id}``, kept beside the cache tier.

A node caches the objects it forwards in its cache tier (:mod:`ccn.store.cache`), but those are
found by id only: without knowing that ``/doc/v3`` is version object ``<id>``, a node whose
upstream is down (or that restarted) cannot answer ``/doc/v3``, or "the newest ``/doc`` you
have", although it holds every byte. This module keeps that mapping for version records of
other nodes' names that answered this node's Interests; the node answers from it (see
:meth:`ccn.node.Node._from_seen`).

Rules it keeps:

* an entry is a version number and a version id, added once (a version never changes);
* at most ``max_entries`` entries: the oldest recorded go first;
* the file ``<path>`` is an append-only log of lines ``<number> <64 hex id> <name URI>``. A torn
  or malformed line (a crash mid-append) is skipped when the log is read; the log is rewritten
  (to a temporary file, then renamed) when it holds more than twice the live entries; a
  temporary file a crash left is removed when the log is opened.

It is a cache: a write that fails loses the entry on restart, nothing more (a line only
partly written, on a disk that filled, is cut off again). Writes are one ``os.write`` of one
line, on the caller's thread (version records are few next to objects).
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from ccn.errors import InvalidName
from ccn.name import Name

MAX_SEEN_VERSIONS = 65_536
_ID_HEX = 64


class SeenVersions:
    def __init__(self, path: Path, max_entries: int = MAX_SEEN_VERSIONS) -> None:
        self.path = path
        self.max_entries = max_entries
        self._order: OrderedDict[tuple[Name, int], bytes] = OrderedDict()
        self._by_name: dict[Name, dict[int, bytes]] = {}
        self._numbers: dict[Name, list[int]] = {}  # each name's numbers, ascending
        self._lines = 0
        self.write_errors = 0
        self._fd: int | None = None
        for left in path.parent.glob(f"{path.name}.tmp.*"):  # a rewrite cut short by a crash
            with contextlib.suppress(OSError):
                left.unlink()
        torn = self._load()
        if torn or self._lines > 2 * len(self._order):
            self._rewrite()  # a torn tail would otherwise join the next line appended
        self._open()

    def __len__(self) -> int:
        return len(self._order)

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: Name, number: int) -> bytes | None:
        """The id of version ``number`` of ``name``, if seen."""
        versions = self._by_name.get(name)
        return versions.get(number) if versions is not None else None

    def newest_first(self, name: Name) -> Iterator[tuple[int, bytes]]:
        """The seen versions of ``name``, highest number first (kept in order: asking costs
        nothing however many versions a name has)."""
        versions = self._by_name.get(name)
        if versions:
            for number in reversed(self._numbers[name]):
                yield number, versions[number]

    # -- writing ---------------------------------------------------------------------------

    def record(self, name: Name, number: int, version_id: bytes) -> bool:
        """Remember that version ``number`` of ``name`` is ``version_id``; False if known."""
        if not self._add(name, number, version_id):
            return False
        self._append(f"{number} {version_id.hex()} {name}\n")
        if self._lines > 2 * self.max_entries:
            self._rewrite()
            self._open()
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- internals -------------------------------------------------------------------------

    def _add(self, name: Name, number: int, version_id: bytes) -> bool:
        versions = self._by_name.setdefault(name, {})
        if number in versions:
            return False
        versions[number] = version_id
        bisect.insort(self._numbers.setdefault(name, []), number)
        self._order[(name, number)] = version_id
        while len(self._order) > self.max_entries:
            (old_name, old_number), _ = self._order.popitem(last=False)
            old = self._by_name[old_name]
            del old[old_number]
            numbers = self._numbers[old_name]
            del numbers[bisect.bisect_left(numbers, old_number)]
            if not old:
                del self._by_name[old_name]
                del self._numbers[old_name]
        return True

    def _load(self) -> bool:
        """Read the log; True if its last line is torn (no newline)."""
        line = "\n"
        try:
            with open(self.path, encoding="ascii", errors="replace") as f:
                for line in f:
                    self._lines += 1
                    parsed = _parse(line)
                    if parsed is not None:
                        self._add(*parsed)
        except FileNotFoundError:
            pass
        except OSError:
            self.write_errors += 1  # unreadable: start empty
        return not line.endswith("\n")

    def _open(self) -> None:
        self.close()
        try:
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError:
            self.write_errors += 1

    def _append(self, line: str) -> None:
        self._lines += 1
        if self._fd is None:
            return
        data = line.encode("ascii")
        try:
            written = os.write(self._fd, data)
        except OSError:
            self.write_errors += 1
            return
        if written < len(data):
            # A disk that filled mid-line took part of it: cut that off, or the next line
            # appended would join it and be lost with it.
            self.write_errors += 1
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.tmp.{os.getpid()}")
        text = "".join(f"{n} {vid.hex()} {name}\n" for (name, n), vid in self._order.items())
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.write(text)
            os.replace(tmp, self.path)
            self._lines = len(self._order)
        except OSError:
            self.write_errors += 1
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _parse(line: str) -> tuple[Name, int, bytes] | None:
    """``<number> <hex id> <name>`` → its parts; None for a torn or malformed line."""
    if not line.endswith("\n"):
        return None
    parts = line[:-1].split(" ")
    if len(parts) != 3 or not (parts[0].isdigit() and len(parts[0]) <= 20):
        return None
    if len(parts[1]) != _ID_HEX:
        return None
    try:
        version_id = bytes.fromhex(parts[1])
        name = Name.parse(parts[2])
    except (ValueError, InvalidName):
        return None
    number = int(parts[0])
    if not name.components or name.version is not None or number < 1:
        return None  # no ref name, or no version number (they start at 1)
    return name, number, version_id
