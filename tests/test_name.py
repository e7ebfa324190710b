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
        ("/vidéos/été/v2", ("vidéos".encode(), "été".encode(), b"v2")),  # UTF-8, as NDN reads it
        ("/日本", ("日本".encode(),)),
        ("/a~b_c-d.e", (b"a~b_c-d.e",)),
    ],
)
def test_parse(text: str, components: tuple[bytes, ...]) -> None:
    assert Name.parse(text).components == components


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a/b",
        "//",
        "/a//b",
        "/a b",
        "/%2",
        "/%zz",
        "/a\x7f",
        "/a\x85",
        "/\udce9",
        "/" + "x" * 300,
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidName):
        Name.parse(text)


def test_non_ascii_text_is_read_as_utf8_and_printed_escaped() -> None:
    name = Name.parse("/café")
    assert str(name) == "/caf%C3%A9" and Name.parse(str(name)) == name


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


@pytest.mark.parametrize(
    ("text", "ccn"),
    [
        ("/a/b/v=7", "/a/b/v7"),  # the NDN spelling of a version is the version
        ("/a/b/v=3/seg=5", "/a/b/v3/~50~%05"),
        ("/a/seg=256/off=0/t=1/seq=2", "/a/~50~%01%00/~52~%00/~56~%01/~58~%02"),
        ("/a/32=metadata", "/a/~32~metadata"),
        ("/a/8=plain", "/a/plain"),  # a generic component written as typed
        ("/a/8=v3/8=", "/a/~8~v3/~8~"),  # generic ones ccn would read otherwise
        ("/a/200=%00x", "/a/~200~%00x"),
        ("/a/v=1000000000000000000", "/a/~54~%0D%E0%B6%B3%A7d%00%00"),  # past ccn's versions
        ("/a/sha256digest=" + "Ab" * 32, "/a/~1~" + "%AB" * 32),
        ("/a/params-sha256=" + "00" * 32, "/a/~2~" + "%00" * 32),
        ("/a/v%3D7/x=y/V=1", "/a/v%3D7/x%3Dy/V%3D1"),  # not NDN forms: as they are
    ],
)
def test_parse_reads_ndn_uri_typed_components(text: str, ccn: str) -> None:
    assert Name.parse(text) == Name.parse(ccn)


@pytest.mark.parametrize(
    ("text", "instead"),
    [
        ("/a/v=x", "v%3Dx"),
        ("/a/v=07", "v%3D07"),
        ("/a/v=", "v%3D"),
        ("/a/seg=-1", "seg%3D-1"),
        ("/a/seg=18446744073709551616", "seg%3D18446744073709551616"),
        ("/a/0=x", "0%3Dx"),
        ("/a/65536=x", "65536%3Dx"),
        ("/a/050=x", "050%3Dx"),
        ("/a/1=short", "1%3Dshort"),
        ("/a/sha256digest=abc", "sha256digest%3Dabc"),
    ],
)
def test_malformed_ndn_forms_say_how_to_write_a_plain_component(text: str, instead: str) -> None:
    with pytest.raises(InvalidName, match="NDN typed component") as e:
        Name.parse(text)
    assert f"write {instead} for a plain component" in str(e.value)
    assert Name.parse(f"/a/{instead}").components[1] == text.split("/")[2].encode()


@given(st.lists(st.text(alphabet="v=segt0123456789%3Dx~", min_size=1, max_size=12), max_size=6))
def test_printed_names_never_read_as_ndn_forms(parts: list[str]) -> None:
    # '=' is always printed escaped: whatever a name holds, its text means exactly it
    name = Name(p.encode() for p in parts)
    assert Name.parse(str(name)) == name
