from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.name import Name
from ccn.tables.nametree import NameTree

N = Name.parse


def test_set_get_replace_and_len() -> None:
    t: NameTree[str] = NameTree()
    t.set(N("/a/b"), "ab")
    t.set(N("/a/b"), "ab2")
    t.set(N("/"), "root")
    assert len(t) == 2
    assert t.get(N("/a/b")) == "ab2"
    assert t.get(N("/a")) is None
    assert t.get(N("/")) == "root"
    assert t.get(N("/a/b/c")) is None


def test_none_values_are_refused() -> None:
    t: NameTree[str | None] = NameTree()
    with pytest.raises(ValueError):
        t.set(N("/a"), None)


def test_pop_prunes_but_keeps_other_branches() -> None:
    t: NameTree[int] = NameTree()
    t.set(N("/a/b/c"), 1)
    t.set(N("/a/x"), 2)
    assert t.pop(N("/a/b")) is None
    assert t.pop(N("/a/b/c")) == 1
    assert t.pop(N("/a/b/c")) is None
    assert len(t) == 1
    assert list(t.items()) == [(N("/a/x"), 2)]
    assert t.pop(N("/a/x")) == 2
    assert list(t.items()) == []
    # Pruned completely: the root has no children left.
    assert not t._root.children


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/a/b/c/d", "abc"),
        ("/a/b/c", "abc"),
        ("/a/b", "a"),
        ("/a/z", "a"),
        ("/z", "root"),
        ("/", "root"),
    ],
)
def test_longest_prefix_match(name: str, expected: str) -> None:
    t: NameTree[str] = NameTree()
    t.set(N("/"), "root")
    t.set(N("/a"), "a")
    t.set(N("/a/b/c"), "abc")
    assert t.longest_prefix_match(N(name)) == expected


def test_longest_prefix_match_without_root() -> None:
    t: NameTree[str] = NameTree()
    t.set(N("/a"), "a")
    assert t.longest_prefix_match(N("/b")) is None


def test_prefix_values_and_descendants() -> None:
    t: NameTree[str] = NameTree()
    for text in ["/a", "/a/b", "/a/b/c", "/a/c", "/b"]:
        t.set(N(text), text)
    assert list(t.prefix_values(N("/a/b/c/d"))) == [(1, "/a"), (2, "/a/b"), (3, "/a/b/c")]
    assert sorted(t.descendant_values(N("/a"))) == ["/a", "/a/b", "/a/b/c", "/a/c"]
    assert sorted(t.descendant_values(N("/a/b/c"))) == ["/a/b/c"]
    assert list(t.descendant_values(N("/q"))) == []


def test_items_in_name_order() -> None:
    t: NameTree[int] = NameTree()
    names = [N(x) for x in ["/b", "/a/z", "/a", "/a/b", "/", "/c/d"]]
    for i, name in enumerate(names):
        t.set(name, i)
    assert [n for n, _ in t.items()] == sorted(names)


# Components that sort apart in bytes (not in their text), and are prefixes of each other.
_components = st.sampled_from([b"a", b"ab", b"b", b"\x00", b"\xff", b"a%", b"A"])
_names = st.lists(_components, max_size=4).map(Name)


@given(
    stored=st.lists(_names, max_size=25),
    under=st.none() | st.lists(_components, max_size=2).map(Name),
    after=st.none() | _names,
)
def test_items_under_and_after_match_a_sorted_filter(
    stored: list[Name], under: Name | None, after: Name | None
) -> None:
    # A route list is paged: each page goes on from the last prefix of the one before.
    t: NameTree[Name] = NameTree()
    for name in stored:
        t.set(name, name)
    below = sorted(n for n in set(stored) if under is None or under.is_prefix_of(n))
    expected = [n for n in below if after is None or n > after]
    assert [n for n, _ in t.items(under, after)] == expected
    assert [v for _, v in t.items(under, after)] == expected
    assert t.count(under) == len(below)


def test_pages_after_a_cursor_cover_a_subtree_once() -> None:
    t: NameTree[int] = NameTree()
    names = [N(f"/s/i{k}") for k in range(30)] + [N("/s"), N("/s/i1/x"), N("/t"), N("/r")]
    for i, name in enumerate(names):
        t.set(name, i)
    pages: list[list[Name]] = []
    after: Name | None = None
    for _ in range(20):
        page = [n for n, _ in itertools.islice(t.items(N("/s"), after), 7)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    seen = [n for page in pages for n in page]
    assert seen == sorted(n for n in names if N("/s").is_prefix_of(n))
    assert len(pages) == 5 and seen[:3] == [N("/s"), N("/s/i0"), N("/s/i1")]
    assert seen[3] == N("/s/i1/x")  # a name's extensions come before its next sibling
    assert list(t.items(N("/nothing"))) == [] and t.count(N("/nothing")) == 0


def test_pages_of_a_wide_node_sort_its_children_once_while_it_does_not_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # route list of 66,000 names in one directory sorted the node's children again for
    # every page (O(n) a page, O(n^2 / page) in all). They are sorted once, and again only
    # after the tree changed, and a page still sees the change.
    from ccn.tables import nametree

    sorted_items = 0

    def counted(items: Iterable[bytes], **kwargs: Any) -> list[bytes]:
        nonlocal sorted_items
        out = sorted(items, **kwargs)
        sorted_items += len(out)
        return out

    monkeypatch.setattr(nametree, "sorted", counted, raising=False)
    t: NameTree[int] = NameTree()
    for k in range(3000):
        t.set(N(f"/flat/n{k:04d}"), k)
    pages = []
    after: Name | None = None
    while page := [n for n, _ in itertools.islice(t.items(None, after), 100)]:
        pages.append(page)
        after = page[-1]
    assert [n for page in pages for n in page] == [N(f"/flat/n{k:04d}") for k in range(3000)]
    assert sorted_items < 3 * 3000  # once for the first page's walk, once for the cursor
    t.set(N("/flat/n1000a"), -1)
    t.pop(N("/flat/n1001"))
    page = [n for n, _ in itertools.islice(t.items(None, N("/flat/n1000")), 2)]
    assert page == [N("/flat/n1000a"), N("/flat/n1002")]
