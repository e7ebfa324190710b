"""Fixtures shared by the store tests: each store twin, so contract tests run against both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ccn.store.objstore import DiskObjectStore, MemoryObjectStore, ObjectStore
from ccn.store.refs import DiskRefStore, MemoryRefStore, RefStore


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    s: ObjectStore
    if request.param == "memory":
        s = MemoryObjectStore()
    else:
        s = DiskObjectStore(tmp_path / "store", fsync=False)
    with s:
        yield s


@pytest.fixture(params=["memory", "disk"])
def refs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RefStore]:
    r: RefStore
    if request.param == "memory":
        r = MemoryRefStore()
    else:
        r = DiskRefStore(tmp_path / "store", fsync=False)
    with r:
        yield r
