"""The fetch's file writer thread: order, hashes, backpressure, errors, abort."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from blake3 import blake3

from ccn.filewriter import BATCH_BYTES, FileWriter


def _write_and_check(
    pieces: dict[Path, list[bytes]], *, hold_queue: bool = False, executable: str = ""
) -> None:
    """Write ``pieces`` (file -> its chunks) through one writer; check contents and hashes.
    ``hold_queue``: everything is queued before the thread may take any of it (the lock is
    reentrant for this thread), so it takes batches."""
    w = FileWriter()
    try:
        with w._cond if hold_queue else contextlib.nullcontext():
            for path, chunks in pieces.items():
                w.open(path)
                for c in chunks:
                    w.write(memoryview(c))
                w.close(path, executable=path.name == executable)
        hashes = w.finish()
    finally:
        w.abort()
    for path, chunks in pieces.items():
        assert path.read_bytes() == b"".join(chunks)
        assert hashes[path] == blake3(b"".join(chunks)).digest()


def test_files_are_written_in_order_and_hashed(tmp_path: Path) -> None:
    pieces = {tmp_path / "a": [os.urandom(n) for n in (1, 70_000, 5)], tmp_path / "b": []}
    _write_and_check(pieces, executable="b")
    assert os.stat(tmp_path / "b").st_mode & stat.S_IXUSR
    assert not os.stat(tmp_path / "a").st_mode & stat.S_IXUSR


def test_a_queue_taken_in_batches_keeps_files_apart_and_in_order(tmp_path: Path) -> None:
    # Queued whole before the thread takes any: batches that mix opens, data and closes, the
    # data cut at BATCH_BYTES.
    pieces = {
        tmp_path / "a": [os.urandom(n) for n in (3, 200_000, 1, 90_000)],
        tmp_path / "empty": [],
        tmp_path / "b": [os.urandom(150_000) for _ in range(20)],
        tmp_path / "c": [os.urandom(7)],
    }
    assert sum(map(len, pieces[tmp_path / "b"])) > 2 * BATCH_BYTES
    _write_and_check(pieces, hold_queue=True)


def test_write_blocks_when_the_backlog_is_full_until_the_thread_catches_up(
    tmp_path: Path,
) -> None:
    # The thread is stuck opening a fifo that nobody reads yet: the loop's writes pile up to
    # max_backlog, then the next one waits.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    w = FileWriter(max_backlog=64 * 1024)
    chunk = os.urandom(16 * 1024)
    written = threading.Event()

    def loop_side() -> None:
        w.open(fifo)
        for _ in range(8):  # 128 KiB, twice the backlog
            w.write(memoryview(chunk))
        written.set()
        w.close(fifo)

    t = threading.Thread(target=loop_side)
    t.start()
    try:
        assert not written.wait(0.3)  # blocked by the bound
        with open(fifo, "rb") as reader:
            got = b""
            while len(got) < 8 * len(chunk):
                got += reader.read(65536)
            assert written.wait(10)
            t.join(10)
            assert w.finish()[fifo] == blake3(chunk * 8).digest()
        assert got == chunk * 8
    finally:
        w.abort()
        t.join(10)


def test_a_write_error_is_raised_on_the_loop_side(tmp_path: Path) -> None:
    w = FileWriter()
    try:
        w.open(Path("/dev/full"))
        w.write(memoryview(os.urandom(1 << 20)))
        with pytest.raises(OSError) as info:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # raised by a later call, or by finish
                w.write(memoryview(b"x"))
                time.sleep(0.01)
            w.finish()
        assert info.value.errno == errno.ENOSPC
    finally:
        w.abort()


def test_abort_stops_the_thread_and_closes_the_file(tmp_path: Path) -> None:
    w = FileWriter()
    w.open(tmp_path / "f")
    for _ in range(64):
        w.write(memoryview(os.urandom(64 * 1024)))
    w.abort()
    w.abort()  # idempotent
    assert not w._worker.is_alive()
    with pytest.raises(RuntimeError, match="aborted"):
        w.write(memoryview(b"late"))
    open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    assert str(tmp_path / "f") not in open_files


def test_abort_does_not_wait_for_ever_on_a_thread_stuck_in_a_system_call(
    tmp_path: Path,
) -> None:
    # The thread blocks opening a fifo that nobody reads (as on a hung network file system);
    # Ctrl-C during the fetch must still end it.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    w = FileWriter()
    w.open(fifo)
    deadline = time.monotonic() + 5
    while w._items and time.monotonic() < deadline:  # the thread has taken the open
        time.sleep(0.01)
    time.sleep(0.1)  # and is inside it
    start = time.monotonic()
    w.abort(wait=0.2)
    assert time.monotonic() - start < 2
    assert w._worker.is_alive()
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # unblock it, so the test ends clean
    try:
        w._worker.join(5)
        assert not w._worker.is_alive()
    finally:
        os.close(reader)
