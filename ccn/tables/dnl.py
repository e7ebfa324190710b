"""The dead-nonce list: (name, digest, nonce) remembered after their PIT entry is gone.

A looping Interest can come back after the PIT entry that would have caught it was satisfied or
expired; this list catches it. Entries live ``lifetime`` seconds and at most ``max_entries`` are
kept (the oldest go first). Unlike NFD's hash-based list it is exact: no false positives. Time
is passed in; every entry gets the same lifetime, so insertion order is expiry order.

An Interest is its name *and* its digest (NFD's names carry the digest as their last
component): the Interests of one fetch share a locator and differ only in the digest, and
keyed by name alone two of them that drew the same random nonce looked like a loop and were
answered "duplicate" (the cache study's latency run met one).
"""

from __future__ import annotations

from collections import OrderedDict

from ccn.name import Name

DEFAULT_MAX_ENTRIES = 65_536
DEFAULT_LIFETIME = 6.0


class DeadNonceList:
    __slots__ = ("_entries", "_nonces", "evictions", "hits", "inserts", "lifetime", "max_entries")

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, lifetime: float = DEFAULT_LIFETIME
    ) -> None:
        self.max_entries = max_entries
        self.lifetime = lifetime
        # Keyed by (name components, digest, nonce): tuples hash and compare in C, Names do not.
        self._entries: OrderedDict[tuple[tuple[bytes, ...], bytes | None, int], float] = (
            OrderedDict()
        )
        # nonce -> number of entries with it: a cheap int lookup rules out almost every Interest
        # before a (name, nonce) key has to be hashed.
        self._nonces: dict[int, int] = {}
        self.inserts = 0
        self.evictions = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, name: Name, digest: bytes | None, nonce: int, now: float) -> None:
        """Remember the Interest (name, digest, nonce) until ``now + lifetime``."""
        if self.max_entries <= 0:
            return
        key = (name.components, digest, nonce)
        entries = self._entries
        if entries.pop(key, None) is None:
            nonces = self._nonces
            nonces[nonce] = nonces.get(nonce, 0) + 1
        entries[key] = now + self.lifetime
        self.inserts += 1
        self.purge(now)
        while len(entries) > self.max_entries:
            self._pop_oldest()
            self.evictions += 1

    def has(self, name: Name, digest: bytes | None, nonce: int, now: float) -> bool:
        if nonce not in self._nonces:
            return False
        expiry = self._entries.get((name.components, digest, nonce))
        if expiry is None or expiry <= now:
            return False
        self.hits += 1
        return True

    def discard(self, name: Name, digest: bytes | None, nonce: int) -> None:
        """Forget (name, digest, nonce): the node itself sends that Interest again (one it held
        for a neighbour's redial when the face it had gone out on closed), which is no loop."""
        key = (name.components, digest, nonce)
        if key in self._entries:
            del self._entries[key]
            self._uncount(nonce)

    def purge(self, now: float) -> None:
        """Forget entries whose lifetime is over."""
        entries = self._entries
        while entries:
            key = next(iter(entries))
            if entries[key] > now:
                return
            self._pop_oldest()

    def _pop_oldest(self) -> None:
        (_, _, nonce), _ = self._entries.popitem(last=False)
        self._uncount(nonce)

    def _uncount(self, nonce: int) -> None:
        """One entry with ``nonce`` is gone."""
        left = self._nonces[nonce] - 1
        if left:
            self._nonces[nonce] = left
        else:
            del self._nonces[nonce]
