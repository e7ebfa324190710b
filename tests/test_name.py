from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.errors import InvalidName
from ccn.name import MAX_COMPONENT_BYTES, ROOT, Name

components = st.binary(min_size=1, max_size=40)
names = st.lists(components, max_size=8).map(Name)


@given(names)
def test_text_round_trip_is_exact(name: Name) -> None:
    assert Name.parse(str(name)) == name


@given(names)
def test_canonical_text_round_trips(name: Name) -> None:
    text = str(name)
    assert str(Name.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "components"),
    [
        ("/", ()),
        ("/a", (b"a",)),
        ("/a/b/", (b"a", b"b")),
        ("/a%2Fb", (b"a/b",)),
        ("/%00%ff", (b"\x00\xff",)),
        ("/caf%C3%A9/v3", ("café".encode(), b"v3")),
        ("/a~b_c-d.e", (b"a~b_c-d.e",)),
    ],
)
def test_parse(text: str, components: tuple[bytes, ...]) -> None:
    assert Name.parse(text).components == components


@pytest.mark.parametrize(
    "text", ["", "a/b", "//", "/a//b", "/a b", "/%2", "/%zz", "/é", "/" + "x" * 300]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidName):
        Name.parse(text)


def test_escaping_is_upper_case() -> None:
    assert str(Name([b"a b/\xff"])) == "/a%20b%2F%FF"


def test_components_are_validated() -> None:
    with pytest.raises(InvalidName):
        Name([b""])
    with pytest.raises(InvalidName):
        Name(["text"])  # type: ignore[list-item]
    with pytest.raises(InvalidName):
        Name([b"x" * (MAX_COMPONENT_BYTES + 1)])
    with pytest.raises(InvalidName):
        Name([b"x"] * 65)


def test_prefix_and_order() -> None:
    a, ab, b = Name.parse("/a"), Name.parse("/a/b"), Name.parse("/b")
    assert a.is_prefix_of(ab) and a.is_prefix_of(a) and ROOT.is_prefix_of(b)
    assert not ab.is_prefix_of(a) and not b.is_prefix_of(ab)
    assert sorted([b, ab, a, ROOT]) == [ROOT, a, ab, b]
    assert list(ab.prefixes()) == [ab, a, ROOT]


def test_value_semantics() -> None:
    n = Name.parse("/x/y")
    assert n == Name([b"x", b"y"]) and hash(n) == hash(Name([b"x", b"y"]))
    assert n[0] == b"x" and n[1:] == Name.parse("/y") and len(n) == 2
    assert n / "z" == Name.parse("/x/y/z")
    with pytest.raises(AttributeError):
        n.foo = 1


@pytest.mark.parametrize(
    ("text", "version"),
    [("/a/v3", 3), ("/a/v0", 0), ("/a/v03", None), ("/a/v", None), ("/a/v3x", None), ("/", None)],
)
def test_version(text: str, version: int | None) -> None:
    assert Name.parse(text).version == version


def test_version_helpers() -> None:
    assert Name.parse("/a/v3").with_version(4) == Name.parse("/a/v4")
    assert Name.parse("/a").with_version(1) == Name.parse("/a/v1")
    assert Name.parse("/a/v9").unversioned() == Name.parse("/a")
    with pytest.raises(InvalidName):
        Name.parse("/a").with_version(-1)


def test_scopes() -> None:
    assert Name.parse("/localhost/ccn/status").is_localhost
    assert Name.parse("/localhop/ccn/hello").is_localhop
    assert not Name.parse("/a/localhost").is_localhost
    assert not ROOT.is_localhost
