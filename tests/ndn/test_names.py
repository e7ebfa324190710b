from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn.name import Name
from ccn.ndn import packets as p
from ccn.ndn.names import UnmappableName, component_to_ccn, ndn_uri, shown, to_ccn, to_ndn


@pytest.mark.parametrize(
    ("ndn", "ccn"),
    [
        ((8, b"videos"), b"videos"),
        (p.version(3), b"v3"),
        ((8, b"v3"), b"~8~v3"),
        ((8, b""), b"~8~"),
        ((8, b"~home"), b"~8~~home"),
        (p.segment(5), b"~50~\x05"),
        (p.METADATA, b"~32~metadata"),
        ((p.C_VERSION, b"\x00\x03"), b"~54~\x00\x03"),  # not the shortest: kept exact
        ((p.C_IMPLICIT_DIGEST, b"\x11" * 32), b"~1~" + b"\x11" * 32),
    ],
)
def test_component_golden(ndn: tuple[int, bytes], ccn: bytes) -> None:
    assert component_to_ccn(*ndn) == ccn
    assert to_ndn(Name((ccn,))) == (ndn,)


def test_versioned_names_map_both_ways() -> None:
    assert str(to_ccn(((8, b"a"), (8, b"b"), p.version(3)))) == "/a/b/v3"
    assert to_ndn(Name.parse("/a/b/v3")) == ((8, b"a"), (8, b"b"), p.version(3))


def test_unmappable() -> None:
    with pytest.raises(UnmappableName):
        to_ccn(((8, b"x" * 300),))
    with pytest.raises(UnmappableName):
        to_ccn(tuple((8, b"x") for _ in range(65)))


components = st.one_of(
    st.tuples(st.just(8), st.binary(max_size=200)),
    st.tuples(st.sampled_from([32, 50, 52, 54, 56, 58, 200, 65535]), st.binary(max_size=200)),
    st.tuples(st.sampled_from([1, 2]), st.binary(min_size=32, max_size=32)),
)


@given(st.lists(components, max_size=8))
def test_round_trip(name: list[tuple[int, bytes]]) -> None:
    ndn = tuple(name)
    assert to_ndn(to_ccn(ndn)) == ndn


@pytest.mark.parametrize(
    ("ccn", "uri"),
    [
        ("/a/b/v3", "/a/b/v=3"),
        ("/a/b/v3/~50~%05", "/a/b/v=3/seg=5"),
        ("/a/~32~metadata/v256", "/a/32=metadata/v=256"),
        ("/a/~54~%00%03", "/a/54=%00%03"),  # not the shortest number: its bytes
        ("/a/~8~v3/~8~/~8~~h", "/a/8=v3/8=/8=~h"),
        ("/a/~1~" + "%AB" * 32, "/a/sha256digest=" + "ab" * 32),
        ("/caf%C3%A9/a%3Db", "/caf%C3%A9/a%3Db"),
    ],
)
def test_ndn_uri(ccn: str, uri: str) -> None:
    assert ndn_uri(Name.parse(ccn)) == uri
    assert Name.parse(uri) == Name.parse(ccn)


def test_shown_is_ccn_form_unless_the_name_has_ndn_typed_components() -> None:
    assert shown(Name.parse("/a/b/v3")) == "/a/b/v3"
    assert shown(Name.parse("/a/~x~/~1~short/v%3D1")) == "/a/~x~/~1~short/v%3D1"
    assert shown(Name.parse("/a/b/v3/~50~%01")) == "/a/b/v=3/seg=1"
    assert shown(Name.parse("/a/~8~v3")) == "/a/8=v3"


@given(st.lists(components, max_size=8))
def test_ndn_uri_reads_back(name: list[tuple[int, bytes]]) -> None:
    ccn = to_ccn(tuple(name))
    assert Name.parse(ndn_uri(ccn)) == ccn
    assert Name.parse(shown(ccn)) == ccn
