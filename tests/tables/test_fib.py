from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.errors import LocalError
from ccn.name import Name
from ccn.tables.fib import Fib, NextHop, TableFull

N = Name.parse


def test_add_keeps_next_hops_sorted_by_cost_and_updates_cost() -> None:
    fib = Fib()
    fib.add(N("/a"), 1, 10)
    fib.add(N("/a"), 2, 5)
    fib.add(N("/a"), 3, 5)
    entry = fib.get(N("/a"))
    assert entry is not None
    assert entry.nexthops == [NextHop(2, 5), NextHop(3, 5), NextHop(1, 10)]
    fib.add(N("/a"), 1, 0)
    assert entry.nexthops[0] == NextHop(1, 0)
    assert len(entry.nexthops) == 3


def test_remove_and_remove_face() -> None:
    fib = Fib()
    fib.add(N("/a"), 1)
    fib.add(N("/a"), 2)
    fib.add(N("/b"), 1)
    assert fib.remove(N("/a"), 1)
    assert not fib.remove(N("/a"), 1)
    assert not fib.remove(N("/zz"), 1)
    assert fib.remove_face(1) == 1
    assert fib.get(N("/b")) is None
    assert [str(e.prefix) for e in fib.entries()] == ["/a"]
    assert fib.remove(N("/a"), 2)
    assert len(fib) == 0
    assert fib.lpm(N("/a/x")) is None


def test_epoch_counts_real_changes_per_face_and_prefixes_via_lists_them() -> None:
    fib = Fib()
    assert fib.epoch(1) == 0 and fib.prefixes_via(1) == set()
    fib.add(N("/a"), 1, 5)
    fib.add(N("/b"), 1, 5)
    assert fib.epoch(1) == 2 and fib.prefixes_via(1) == {N("/a"), N("/b")}
    fib.add(N("/a"), 1, 5)  # already so: no change
    fib.add(N("/a"), 2, 5)  # another face's routes
    fib.remove(N("/zz"), 1)
    assert fib.epoch(1) == 2 and fib.epoch(2) == 1
    fib.add(N("/a"), 1, 7)  # the cost changes
    assert fib.remove(N("/b"), 1)
    assert fib.epoch(1) == 4 and fib.prefixes_via(1) == {N("/a")}
    assert fib.remove_face(1) == 1
    assert fib.epoch(1) == 0 and fib.prefixes_via(1) == set()  # changed: the face is gone
    assert fib.remove_face(1) == 0
    assert fib.epoch(1) == 0


def test_faces_that_come_and_go_leave_nothing_behind() -> None:
    # Every reconnection of a neighbour is a new face id; the count of route changes of each
    # face that ever had a route stayed in the table for good (found reading the code for
    # state keyed by face id, after a soak run).
    fib = Fib()
    fib.add(N("/own"), 1)
    for face in range(2, 1002):
        fib.add(N("/n"), face)
        fib.add(N("/m"), face)
        fib.remove(N("/m"), face)
        assert fib.remove_face(face) == 1
    assert fib._faces.keys() == {1} and fib._epochs.keys() == {1}
    assert [str(e.prefix) for e in fib.entries()] == ["/own"]


def test_bound_and_bad_cost() -> None:
    fib = Fib(max_entries=1)
    fib.add(N("/a"), 1)
    fib.add(N("/a"), 2)  # an existing prefix is not a new entry
    with pytest.raises(TableFull):
        fib.add(N("/b"), 1)
    with pytest.raises(LocalError):
        fib.add(N("/a"), 1, -1)


def test_unbounded_routes_are_not_counted_against_the_bound() -> None:
    fib = Fib(max_entries=2)
    for i in range(5):  # e.g. a node's own published names
        fib.add(N(f"/own/{i}"), 9, bounded=False)
    fib.add(N("/a"), 1)
    fib.add(N("/own/0"), 1)  # a bounded hop on an own entry: now it counts
    with pytest.raises(TableFull):
        fib.add(N("/b"), 1)
    fib.add(N("/own/5"), 9, bounded=False)  # own names still go in
    assert len(fib) == 7
    assert fib.remove(N("/own/0"), 1) and fib.remove(N("/own/0"), 9)  # the entry goes
    fib.add(N("/b"), 1)  # its place in the bound is free again
    assert fib.remove_face(1) == 2  # /a and /b
    fib.add(N("/c"), 1)
    fib.add(N("/d"), 1)


def test_lpm_counts_lookups_and_misses() -> None:
    fib = Fib()
    fib.add(N("/a"), 1)
    assert fib.lpm(N("/a/b")) is not None
    assert fib.lpm(N("/b")) is None
    assert (fib.lookups, fib.misses) == (2, 1)


components = st.sampled_from([b"a", b"b", b"c"])
names = st.lists(components, max_size=4).map(Name)


@given(
    routes=st.lists(st.tuples(names, st.integers(1, 3), st.integers(0, 3)), max_size=12),
    removals=st.lists(st.tuples(names, st.integers(1, 3)), max_size=4),
    query=names,
)
def test_lpm_matches_brute_force(
    routes: list[tuple[Name, int, int]], removals: list[tuple[Name, int]], query: Name
) -> None:
    fib = Fib()
    model: dict[Name, dict[int, int]] = {}
    for prefix, face, cost in routes:
        fib.add(prefix, face, cost)
        model.setdefault(prefix, {})[face] = cost
    for prefix, face in removals:
        assert fib.remove(prefix, face) == (face in model.get(prefix, {}))
        model.get(prefix, {}).pop(face, None)
        if prefix in model and not model[prefix]:
            del model[prefix]
    matching = [p for p in model if p.is_prefix_of(query)]
    entry = fib.lpm(query)
    if not matching:
        assert entry is None
        return
    best = max(matching, key=len)
    assert entry is not None
    assert entry.prefix == best
    expected = sorted((cost, face) for face, cost in model[best].items())
    assert [(h.cost, h.face_id) for h in entry.nexthops] == expected
    assert sorted(e.prefix for e in fib.entries()) == sorted(model)


def test_entries_and_count_under_a_prefix_and_after_a_cursor() -> None:
    fib = Fib()
    for text in ["/a", "/a/b", "/a/b/c", "/ab", "/b"]:
        fib.add(N(text), 1)
    assert [str(e.prefix) for e in fib.entries(N("/a"))] == ["/a", "/a/b", "/a/b/c"]
    assert [str(e.prefix) for e in fib.entries(N("/a"), N("/a/b"))] == ["/a/b/c"]
    assert [str(e.prefix) for e in fib.entries(None, N("/a/b/c"))] == ["/ab", "/b"]
    assert (fib.count(), fib.count(N("/a")), fib.count(N("/a/b/c")), fib.count(N("/c"))) == (
        5,
        3,
        1,
        0,
    )
