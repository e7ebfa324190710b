"""Fixtures shared by the tests of keys and trust, and a small disk to fill."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ccn import _compiled
from ccn.name import Name
from ccn.store.objects import Kind, Version

ROOT_ID = bytes(range(32))

# The tests start hundreds of ccn processes (nodes, the CLI). Where the environment says not to
# write bytecode (this machine's does), each of them compiled every ccn module afresh: about
# 85 s of a CI run's CPU. The tests' children may cache it (in the checkout's __pycache__,
# which git ignores); the pytest process itself is unchanged.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module whose source changed after the install compiled it:
    Python would import the old extension and the change would go untested."""
    stale = _compiled.stale()
    if stale:
        pytest.exit(
            f"{', '.join(stale)} changed after the install compiled it: install again "
            "(pip install -e .), or install with CCN_PURE=1 while editing (docs/compiled.md)",
            returncode=4,
        )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$CCN_HOME`` (keys, trust file) in the test's directory."""
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A tmpfs of 64 KiB mounted for the test (skipped unless root): ``fill(pages)`` fills it
    (more) so that only ``pages`` pages of 4 KiB are left, and returns it; removing its
    ``filler`` file frees it again."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to mount a small tmpfs")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)

    def fill(pages: int) -> Path:
        kept = [os.open(mnt / f"page{i}", os.O_WRONLY | os.O_CREAT) for i in range(pages)]
        for fd in kept:
            os.write(fd, bytes(4096))
            os.close(fd)
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for _ in range(17):  # 64 KiB and one page more: it fails before
                os.write(fd, bytes(4096))
        except OSError:
            pass
        finally:
            os.close(fd)
        for i in range(pages):
            os.unlink(mnt / f"page{i}")
        return mnt

    try:
        yield fill
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture
def version() -> Callable[..., Version]:
    """Make an unsigned version record of a 5-byte blob: ``version(name="/pub/doc", number=1)``."""

    def make(name: str = "/pub/doc", number: int = 1) -> Version:
        return Version(Name.parse(name), number, ROOT_ID, Kind.BLOB, 5, bytes(32), 1, None)

    return make
