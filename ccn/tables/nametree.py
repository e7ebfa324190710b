"""A name tree: a trie of name components mapping names to values, with longest-prefix match.

Owns only the tree shape. It makes no decisions and has no bound of its own: the tables built on
it (FIB, strategy choice, the CS prefix index) bound and count their entries. Walking the tree
compares components, never builds intermediate :class:`~ccn.name.Name` objects, so a lookup
allocates nothing. Values must not be ``None`` (``None`` marks a node that only holds children).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

from ccn.name import Name

V = TypeVar("V")

#: Sorted children kept for :meth:`NameTree.items` (a cursor's path is a few nodes deep).
_KEPT_ORDERS = 64


class _Node(Generic[V]):
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[bytes, _Node[V]] = {}
        self.value: V | None = None


class NameTree(Generic[V]):
    """Maps names to values; nodes that hold neither a value nor children are pruned."""

    __slots__ = ("_len", "_order", "_root")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._len = 0
        #: The sorted children of nodes :meth:`items` went down through to a cursor, kept
        #: until a node is added or pruned anywhere: each page of ``route list`` sorted the
        #: 66,000 children of one node again.
        self._order: dict[_Node[V], list[bytes]] = {}

    def __len__(self) -> int:
        return self._len

    def get(self, name: Name) -> V | None:
        node = self._root
        for comp in name.components:
            child = node.children.get(comp)
            if child is None:
                return None
            node = child
        return node.value

    def set(self, name: Name, value: V) -> None:
        """Map ``name`` to ``value``, replacing any previous value."""
        if value is None:
            raise ValueError("NameTree values must not be None")
        node = self._root
        for comp in name.components:
            child = node.children.get(comp)
            if child is None:
                child = node.children[comp] = _Node()
                if self._order:
                    self._order.clear()
            node = child
        if node.value is None:
            self._len += 1
        node.value = value

    def pop(self, name: Name) -> V | None:
        """Remove and return the value at ``name`` (``None`` if absent); prune empty nodes."""
        path: list[_Node[V]] = [self._root]
        node = self._root
        comps = name.components
        for comp in comps:
            child = node.children.get(comp)
            if child is None:
                return None
            path.append(child)
            node = child
        value = node.value
        if value is None:
            return None
        node.value = None
        self._len -= 1
        for depth in range(len(comps), 0, -1):
            n = path[depth]
            if n.children or n.value is not None:
                break
            del path[depth - 1].children[comps[depth - 1]]
            if self._order:
                self._order.clear()
        return value

    def longest_prefix_match(self, name: Name) -> V | None:
        """The value at the longest prefix of ``name`` that has one (the root counts)."""
        node = self._root
        best = node.value
        for comp in name.components:
            child = node.children.get(comp)
            if child is None:
                break
            node = child
            if child.value is not None:
                best = child.value
        return best

    def prefix_values(self, name: Name) -> Iterator[tuple[int, V]]:
        """``(depth, value)`` for every prefix of ``name`` that has a value, shortest first."""
        node = self._root
        if node.value is not None:
            yield 0, node.value
        for depth, comp in enumerate(name.components, 1):
            child = node.children.get(comp)
            if child is None:
                return
            node = child
            if child.value is not None:
                yield depth, child.value

    def descendant_values(self, name: Name) -> Iterator[V]:
        """Values at ``name`` and every name below it (``name`` is a prefix of theirs)."""
        node = self._root
        for comp in name.components:
            child = node.children.get(comp)
            if child is None:
                return
            node = child
        stack = [node]
        while stack:
            n = stack.pop()
            if n.value is not None:
                yield n.value
            stack.extend(n.children.values())

    def count(self, under: Name | None = None) -> int:
        """How many names have values at ``under`` or below it (all if None)."""
        if under is None:
            return self._len
        node = self._root
        for comp in under.components:
            child = node.children.get(comp)
            if child is None:
                return 0
            node = child
        found = 0
        stack = [node]
        while stack:
            n = stack.pop()
            found += n.value is not None
            stack.extend(n.children.values())
        return found

    def items(
        self, under: Name | None = None, after: Name | None = None
    ) -> Iterator[tuple[Name, V]]:
        """Every ``(name, value)`` at ``under`` or below it (all if None), in canonical name
        order (a prefix before its extensions); with ``after``, only the names that come after
        it in that order (a cursor: where an earlier walk stopped). Only what is yielded, and
        the path down to it, is visited."""
        node = self._root
        top = () if under is None else under.components
        for comp in top:
            child = node.children.get(comp)
            if child is None:
                return
            node = child
        if after is None:
            yield from _walk(top, node, True)
            return
        rest = after.components
        if rest[: len(top)] != top:  # after is outside the subtree: before all of it, or past
            if rest < top:
                yield from _walk(top, node, True)
            return
        # Down along ``after``: past its own node come its extensions, then, level by level
        # back up, the later siblings of each node on the way, each with all below it.
        levels: list[tuple[tuple[bytes, ...], _Node[V], bytes]] = []
        comps = top
        reached: _Node[V] | None = node
        for comp in rest[len(top) :]:
            assert reached is not None
            levels.append((comps, reached, comp))
            reached = reached.children.get(comp)
            if reached is None:
                break
            comps = (*comps, comp)
        if reached is not None:
            yield from _walk(comps, reached, False)
        for comps, node, comp in reversed(levels):
            order = self._order.get(node)
            if order is None:
                if len(self._order) >= _KEPT_ORDERS:
                    self._order.clear()
                order = self._order[node] = sorted(node.children)
            for later in itertools.islice(order, bisect.bisect_right(order, comp), None):
                child = node.children.get(later)
                if child is not None:  # else pruned since (the caller changed the tree)
                    yield from _walk((*comps, later), child, True)


def _walk(top: tuple[bytes, ...], node: _Node[V], with_top: bool) -> Iterator[tuple[Name, V]]:
    """``(name, value)`` at ``node`` (named ``top``; itself only if ``with_top``) and below it,
    in canonical name order."""
    stack: list[tuple[tuple[bytes, ...], _Node[V]]] = [(top, node)]
    while stack:
        comps, n = stack.pop()
        if n.value is not None and (with_top or n is not node):
            yield Name(comps), n.value
        for comp in sorted(n.children, reverse=True):
            stack.append(((*comps, comp), n.children[comp]))
