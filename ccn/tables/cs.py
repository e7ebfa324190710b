"""The Content Store: a cache of Data with exact-name, prefix and digest lookup and LRU eviction.

Matching rules (docs/forwarder.md has the full table):

- an Interest with a digest is answered by the cached object with that digest, whatever the
  Interest's name (a locator): a chunk cached for ``/a/v3`` answers a digest Interest at ``/a/v4``;
- otherwise by the named Data with exactly that name, or, for can-be-prefix, by the most
  recently inserted named Data under that prefix that passes the freshness check, a version of
  the prefix itself (``prefix/v<N>``) before any deeper name;
- must-be-fresh needs ``now < inserted_at + freshness_ms / 1000``; ``freshness_ms == 0`` is never
  fresh. Nameless Data is indexed by digest only.

The store is bounded by bytes (``len(content) + entry_overhead`` per entry) and by an entry count;
the least recently used entry goes first. It does not check that Data is what it claims to be:
the forwarder only inserts Data that satisfied a PIT entry (for digest Interests, whose digest
matched). Time is passed in as ``now``.

An object too large ever to enter can still answer the one Interest it was brought in for:
:meth:`pass_on` holds it for the next lookup only (the node uses this for objects from its
store or cache tier, which it answers through here).

With ``keep_evicted`` set, Data that leave the store by eviction (or are too large ever to
enter it) are appended to ``evicted`` for the owner to take: the node's on-disk cache tier is
filled from there, as a victim cache behind this one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from ccn.name import Name
from ccn.packet import Data, Interest
from ccn.tables.nametree import NameTree

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 65_536
DEFAULT_ENTRY_OVERHEAD = 256

# Named Data is keyed by its name's components, nameless Data by its digest: a tuple never
# equals bytes, so one ordered dict is both the exact-name index and the LRU list. Tuples of
# bytes hash and compare in C, which a Name (Python-level __hash__/__eq__) does not.
_Key = tuple[bytes, ...] | bytes


class CsEntry:
    __slots__ = ("data", "fresh_until", "key", "seq", "size")

    def __init__(self, data: Data, key: _Key, size: int, fresh_until: float, seq: int) -> None:
        self.data = data
        self.key = key
        self.size = size
        self.fresh_until = fresh_until
        self.seq = seq


class ContentStore:
    __slots__ = (
        "_by_digest",
        "_lru",
        "_names",
        "_passing",
        "_seq",
        "bytes",
        "entry_overhead",
        "evicted",
        "evictions",
        "hits",
        "inserts",
        "keep_evicted",
        "max_bytes",
        "max_entries",
        "misses",
    )

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        entry_overhead: int = DEFAULT_ENTRY_OVERHEAD,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.entry_overhead = entry_overhead
        self._lru: OrderedDict[_Key, CsEntry] = OrderedDict()
        self._by_digest: dict[bytes, CsEntry] = {}
        self._names: NameTree[CsEntry] = NameTree()
        self._seq = 0
        self._passing: Data | None = None
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.inserts = 0
        self.evictions = 0
        self.keep_evicted = False
        self.evicted: list[Data] = []

    def __len__(self) -> int:
        return len(self._lru)

    def insert(self, data: Data, now: float) -> bool:
        """Cache ``data`` (replacing an entry with the same key); False if it can never fit."""
        size = len(data.content) + self.entry_overhead
        if size > self.max_bytes or self.max_entries <= 0:
            if self.keep_evicted:
                self.evicted.append(data)
            return False
        name = data.name
        comps = name.components
        key: _Key = comps if comps else data.digest
        old = self._lru.pop(key, None)
        if old is not None:
            self._unindex(old)
        self._seq += 1
        entry = CsEntry(data, key, size, now + data.freshness_ms / 1000.0, self._seq)
        self._lru[key] = entry
        self._by_digest[data.digest] = entry
        if comps:
            self._names.set(name, entry)
        self.bytes += size
        self.inserts += 1
        lru = self._lru
        while self.bytes > self.max_bytes or len(lru) > self.max_entries:
            _, victim = lru.popitem(last=False)
            self._unindex(victim)
            self.evictions += 1
            if self.keep_evicted:
                self.evicted.append(victim.data)
        return True

    def _unindex(self, entry: CsEntry) -> None:
        self.bytes -= entry.size
        digest = entry.data.digest
        if self._by_digest.get(digest) is entry:
            del self._by_digest[digest]
        if type(entry.key) is tuple:
            self._names.pop(entry.data.name)

    def lookup(self, interest: Interest, now: float) -> Data | None:
        """The cached Data that answers ``interest`` at ``now``, or ``None``. Counts a hit or miss
        and marks the entry recently used."""
        digest = interest.digest
        entry: CsEntry | None
        if digest is None and not interest.can_be_prefix:
            entry = self._lru.get(interest.name.components)
        elif digest is not None:
            entry = self._by_digest.get(digest)
        else:
            entry = self._latest_under(interest.name, interest.must_be_fresh, now)
        if entry is not None and interest.must_be_fresh and entry.fresh_until <= now:
            entry = None
        if entry is None:
            passing = self._passing
            if passing is not None:
                self._passing = None
                if passing.digest == digest and not interest.must_be_fresh:
                    self.hits += 1
                    return passing
            self.misses += 1
            return None
        self._lru.move_to_end(entry.key)
        self.hits += 1
        return entry.data

    def pass_on(self, data: Data) -> None:
        """Hold ``data`` for the next :meth:`lookup` only, which answers a digest Interest for
        it as a hit and forgets it either way: for an object that :meth:`insert` refused as too
        large, brought in to answer the Interest in hand. Memory stays bounded by one object."""
        self._passing = data

    def _latest_under(self, prefix: Name, must_be_fresh: bool, now: float) -> CsEntry | None:
        """The most recently inserted entry under ``prefix`` that passes the freshness check,
        a version of ``prefix`` itself (``prefix/v<N>``) before any deeper name. A version of a
        deeper name never answers an unversioned ``prefix``: a "latest" Interest for
        ``/videos`` asks for a version of ``/videos``, and ``/videos/talk/v1`` (cached when
        someone fetched that) is none; the Interest goes on to a node that has one, or to the
        producer. (Other deeper names, an NDN version's segments, still answer.)"""
        best: CsEntry | None = None
        best_version: CsEntry | None = None
        depth = len(prefix) + 1
        unversioned = prefix.version is None
        for entry in self._names.descendant_values(prefix):
            if must_be_fresh and entry.fresh_until <= now:
                continue
            name = entry.data.name
            if name.version is not None and len(name) == depth:
                if best_version is None or entry.seq > best_version.seq:
                    best_version = entry
            elif unversioned and name.version is not None and len(name) > depth:
                continue  # a version of a deeper name
            elif best is None or entry.seq > best.seq:
                best = entry
        return best_version if best_version is not None else best

    def hit_by_digest(self, digest: bytes) -> Data | None:
        """``lookup`` for a digest Interest without must-be-fresh, counting only a hit: None
        (nothing counted) lets the caller take the full lookup instead."""
        entry = self._by_digest.get(digest)
        if entry is None:
            return None
        self._lru.move_to_end(entry.key)
        self.hits += 1
        return entry.data

    def get_by_digest(self, digest: bytes) -> Data | None:
        """The cached object with ``digest``, without counting or touching LRU order."""
        entry = self._by_digest.get(digest)
        return None if entry is None else entry.data

    def nameless_recent_first(self) -> Iterator[Data]:
        """The cached nameless Data, most recently used first."""
        for entry in reversed(self._lru.values()):
            if type(entry.key) is bytes:
                yield entry.data

    def erase(self, name: Name) -> bool:
        """Drop the named Data at exactly ``name``."""
        entry = self._lru.pop(name.components, None)
        if entry is None:
            return False
        self._unindex(entry)
        return True

    def clear(self) -> None:
        self._passing = None
        self._lru.clear()
        self._by_digest.clear()
        self._names = NameTree()
        self.bytes = 0
