from __future__ import annotations

import pytest

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
