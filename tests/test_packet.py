from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from ccn._compiled import wrong_type_error
from ccn.errors import InvalidPacket
from ccn.name import ROOT, Name
from ccn.packet import (
    Data,
    Interest,
    Nack,
    NackReason,
    _prechecked_data,
    _prechecked_interest,
)

#: A value of the wrong Python type: InvalidPacket, or compiled, mypyc's TypeError.
WRONG_TYPE = wrong_type_error("ccn.packet", InvalidPacket)

N = Name.parse("/a/b")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nonce": -1},
        {"nonce": 2**32},
        {"lifetime_ms": 10**9},
        {"hop_limit": 256},
        {"digest": b"short"},
    ],
)
def test_interest_rejects_invalid_fields(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"name": N, "nonce": 1, **kwargs}
    with pytest.raises(InvalidPacket):
        Interest(**fields)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nonce": 1.5},
        {"can_be_prefix": 1},
        {"must_be_fresh": None},
        {"digest": "x" * 32},
        {"name": "/a/b"},
    ],
)
def test_interest_rejects_fields_of_the_wrong_type(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"name": N, "nonce": 1, **kwargs}
    with pytest.raises(WRONG_TYPE):
        Interest(**fields)


def test_interest_is_frozen() -> None:
    i = Interest(N, 1)
    with pytest.raises(AttributeError):
        i.nonce = 2  # type: ignore[misc]


def test_data_validates() -> None:
    with pytest.raises(WRONG_TYPE):
        Data(N, "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidPacket):
        Data(N, b"", freshness_ms=-1)
    with pytest.raises(WRONG_TYPE):
        Data("/a", b"")  # type: ignore[arg-type]


def test_data_digest_and_nameless() -> None:
    d = Data(ROOT, b"chunk")
    assert d.digest == blake3(b"chunk").digest()
    assert d.is_nameless and not Data(N, b"").is_nameless
    assert d == Data(ROOT, b"chunk")  # the cached digest does not affect equality


@pytest.mark.parametrize(
    ("interest", "data", "expected"),
    [
        (Interest(N, 1), Data(N, b"x"), True),
        (Interest(N, 1), Data(N / "v1", b"x"), False),
        (Interest(N, 1, can_be_prefix=True), Data(N / "v1", b"x"), True),
        (Interest(N, 1, can_be_prefix=True), Data(Name.parse("/a"), b"x"), False),
        (Interest(N, 1, digest=blake3(b"x").digest()), Data(ROOT, b"x"), True),
        (Interest(N, 1, digest=blake3(b"y").digest()), Data(ROOT, b"x"), False),
    ],
)
def test_matching(interest: Interest, data: Data, expected: bool) -> None:
    assert interest.matches(data) is expected


def test_nack_validates() -> None:
    i = Interest(N, 1)
    assert Nack(i, NackReason.NO_ROUTE).reason == 1
    with pytest.raises(WRONG_TYPE):
        Nack(i, 1)  # type: ignore[arg-type]
    with pytest.raises(WRONG_TYPE):
        Nack(Data(N, b""), NackReason.NO_ROUTE)  # type: ignore[arg-type]


# -- the constructors without checks (used by the codec) ---------------------------------------


def test_prechecked_constructors_know_every_field() -> None:
    assert [f.name for f in dataclasses.fields(Interest)] == [
        "name",
        "nonce",
        "lifetime_ms",
        "hop_limit",
        "can_be_prefix",
        "must_be_fresh",
        "digest",
    ]
    assert [f.name for f in dataclasses.fields(Data)] == [
        "name",
        "content",
        "freshness_ms",
        "_digest",
        "_wire",
    ]


@given(
    nonce=st.integers(0, 2**32 - 1),
    lifetime=st.integers(0, 600_000),
    hop=st.integers(0, 255),
    cbp=st.booleans(),
    mbf=st.booleans(),
    digest=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_prechecked_interest_equals_interest(
    nonce: int, lifetime: int, hop: int, cbp: bool, mbf: bool, digest: bytes | None
) -> None:
    fast = _prechecked_interest(N, nonce, lifetime, hop, cbp, mbf, digest)
    slow = Interest(N, nonce, lifetime, hop, cbp, mbf, digest)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)


@given(content=st.binary(max_size=64), fresh=st.integers(0, 2**32 - 1))
def test_prechecked_data_equals_data(content: bytes, fresh: int) -> None:
    fast = _prechecked_data(N, content, fresh)
    slow = Data(N, content, fresh)
    assert fast == slow
    assert fast.digest == blake3(content).digest()
    assert fast._wire is None
