"""Reading a key, trust or config file that must be a regular file (real files and FIFOs)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ccn.regular import read_regular


def test_a_regular_file_is_read_whole_or_up_to_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 3_000_000)
    assert read_regular(f) == b"x" * 3_000_000
    assert read_regular(f, 10) == b"x" * 10
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular(tmp_path / "empty") == b""


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def read() -> None:
        try:
            read_regular(fifo)
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "waited for a writer"
    assert isinstance(result[0], OSError) and result[0].strerror == "not a regular file"


@pytest.mark.parametrize("where", ["dir", "missing"])
def test_a_directory_or_a_missing_path_is_an_os_error(tmp_path: Path, where: str) -> None:
    path = tmp_path if where == "dir" else tmp_path / "nothing"
    with pytest.raises(OSError):
        read_regular(path)
