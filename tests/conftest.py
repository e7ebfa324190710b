"""Fixtures shared by the tests of keys and trust."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ccn.name import Name
from ccn.store.objects import Kind, Version

ROOT_ID = bytes(range(32))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$CCN_HOME`` (keys, trust file) in the test's directory."""
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def version() -> Callable[..., Version]:
    """Make an unsigned version record of a 5-byte blob: ``version(name="/pub/doc", number=1)``."""

    def make(name: str = "/pub/doc", number: int = 1) -> Version:
        return Version(Name.parse(name), number, ROOT_ID, Kind.BLOB, 5, bytes(32), 1, None)

    return make
