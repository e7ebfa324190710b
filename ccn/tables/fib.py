"""The Forwarding Information Base: name prefix -> next hops (face, cost), longest-prefix match.

A data structure without policy: it stores routes and answers lookups. Which next hop to use is
the strategy's decision, whether a face is up is the forwarder's. Next hops of an entry are kept
sorted by cost (ties by face id), so readers never sort. Bounded by a number of prefixes; the
routes a caller adds with ``bounded=False`` (a node's own published names, which its store
bounds) are not counted, so that neither they nor the bound lock the other out.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from dataclasses import dataclass

from ccn.errors import LocalError
from ccn.name import Name
from ccn.tables.nametree import NameTree

DEFAULT_MAX_ENTRIES = 65_536
_NO_PREFIXES: frozenset[Name] = frozenset()


class TableFull(LocalError):
    """A table refused a new entry because it is at its configured bound."""


@dataclass(frozen=True, slots=True)
class NextHop:
    face_id: int
    cost: int


class FibEntry:
    """One prefix and its next hops, lowest cost first."""

    __slots__ = ("bounded", "nexthops", "prefix")

    def __init__(self, prefix: Name) -> None:
        self.prefix = prefix
        self.nexthops: list[NextHop] = []
        #: Counted against the table's bound (some next hop was added with ``bounded=True``).
        self.bounded = False

    def __repr__(self) -> str:
        hops = ", ".join(f"{h.face_id}:{h.cost}" for h in self.nexthops)
        return f"FibEntry({str(self.prefix)!r}, [{hops}])"


class Fib:
    """Routes by prefix. ``lpm`` is the only method on the packet path."""

    __slots__ = ("_bounded", "_epochs", "_faces", "_tree", "lookups", "max_entries", "misses")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._tree: NameTree[FibEntry] = NameTree()
        self._bounded = 0  # entries counted against max_entries
        # face id -> prefixes routed through it, so removing a face does not scan the table.
        self._faces: dict[int, set[Name]] = {}
        # face id -> a count of changes to the routes through it (see :meth:`epoch`)
        self._epochs: dict[int, int] = {}
        self.lookups = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._tree)

    def add(self, prefix: Name, face_id: int, cost: int = 0, *, bounded: bool = True) -> FibEntry:
        """Add a next hop, or change its cost if ``face_id`` is already one for ``prefix``.

        Raises :class:`TableFull` if the route is ``bounded``, ``prefix`` is not yet counted
        against the bound, and ``max_entries`` prefixes are.
        """
        if cost < 0:
            raise LocalError(f"route cost must be non-negative, got {cost}")
        entry = self._tree.get(prefix)
        if bounded and (entry is None or not entry.bounded):
            if self._bounded >= self.max_entries:
                raise TableFull(f"FIB is full ({self.max_entries} prefixes)")
            self._bounded += 1
        hop = NextHop(face_id, cost)
        if entry is None:
            # a new prefix (every published name at a node's start): one hop, nothing to sort
            entry = FibEntry(prefix)
            entry.bounded = bounded
            entry.nexthops = [hop]
            self._tree.set(prefix, entry)
        else:
            entry.bounded = entry.bounded or bounded
            if hop in entry.nexthops:
                return entry  # already so: nothing changes
            hops = [h for h in entry.nexthops if h.face_id != face_id]
            hops.append(hop)
            hops.sort(key=_hop_order)
            entry.nexthops = hops
        self._faces.setdefault(face_id, set()).add(prefix)
        self._changed(face_id)
        return entry

    def remove(self, prefix: Name, face_id: int) -> bool:
        """Remove one next hop; the entry goes when its last next hop does. False if absent."""
        entry = self._tree.get(prefix)
        if entry is None:
            return False
        hops = [h for h in entry.nexthops if h.face_id != face_id]
        if len(hops) == len(entry.nexthops):
            return False
        entry.nexthops = hops
        if not hops:
            self._drop(entry)
        prefixes = self._faces.get(face_id)
        if prefixes is not None:
            prefixes.discard(prefix)
            if not prefixes:
                del self._faces[face_id]
        self._changed(face_id)
        return True

    def remove_face(self, face_id: int) -> int:
        """Remove ``face_id`` from every entry (the face is gone); returns how many next hops
        were removed. Its :meth:`epoch` is forgotten too: kept, one count stayed behind for
        every face that ever had a route (a neighbour's each reconnection)."""
        prefixes = self._faces.pop(face_id, set())
        for prefix in prefixes:
            entry = self._tree.get(prefix)
            if entry is None:
                continue
            entry.nexthops = [h for h in entry.nexthops if h.face_id != face_id]
            if not entry.nexthops:
                self._drop(entry)
        self._epochs.pop(face_id, None)
        return len(prefixes)

    def _changed(self, face_id: int) -> None:
        self._epochs[face_id] = self._epochs.get(face_id, 0) + 1

    def epoch(self, face_id: int) -> int:
        """A count that grows whenever a route through ``face_id`` is added, removed or
        changes cost (and only then): comparing it is how to tell that they changed without
        looking at every one. Back to 0 when the face goes (:meth:`remove_face`)."""
        return self._epochs.get(face_id, 0)

    def prefixes_via(self, face_id: int) -> Set[Name]:
        """The prefixes routed through ``face_id``, in no order (the table's own set: do not
        keep it across changes)."""
        return self._faces.get(face_id, _NO_PREFIXES)

    def _drop(self, entry: FibEntry) -> None:
        self._tree.pop(entry.prefix)
        self._bounded -= entry.bounded

    def get(self, prefix: Name) -> FibEntry | None:
        """The entry for exactly ``prefix``."""
        return self._tree.get(prefix)

    def lpm(self, name: Name) -> FibEntry | None:
        """The entry with the longest prefix of ``name``, or ``None``."""
        self.lookups += 1
        entry = self._tree.longest_prefix_match(name)
        if entry is None:
            self.misses += 1
        return entry

    def count(self, under: Name | None = None) -> int:
        """How many entries :meth:`entries` gives for ``under``, without building them."""
        return self._tree.count(under)

    def entries(self, under: Name | None = None, after: Name | None = None) -> Iterator[FibEntry]:
        """Every entry for ``under`` or a prefix below it (all if None), in name order; with
        ``after``, only the entries whose prefix comes after it (see :meth:`NameTree.items`)."""
        for _, entry in self._tree.items(under, after):
            yield entry


def _hop_order(hop: NextHop) -> tuple[int, int]:
    return (hop.cost, hop.face_id)
