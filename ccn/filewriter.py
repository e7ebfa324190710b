"""Writing fetched content on a worker thread: in order, each file hashed, the backlog bounded.

A fetch's event loop hands each blob's bytes to :meth:`FileWriter.write` and goes back to its
packets; one thread writes them to their files and hashes each file. Both the file write and
blake3 release the GIL, so this work runs on another core beside the loop's packet work instead
of between its packets. At most ``max_backlog`` bytes wait: past that, :meth:`write` blocks until
the thread catches up, the same backpressure a write on the loop gave. An error in the thread (a
full disk) is raised by the next call from the loop, or by :meth:`finish`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from pathlib import Path
from typing import BinaryIO, Final

from blake3 import blake3

MAX_BACKLOG: Final = 8 << 20
#: The most data the thread takes from the queue at once, joined into one write and one hash.
BATCH_BYTES: Final = 1 << 20
#: How long :meth:`FileWriter.abort` waits for the thread to stop.
ABORT_WAIT: Final = 2.0

_OPEN: Final = 0
_DATA: Final = 1
_CLOSE: Final = 2
_END: Final = 3


class FileWriter:
    """One writer thread for one fetch. Calls come from one thread (the event loop), in order:
    :meth:`open`, :meth:`write`…, :meth:`close` for each file, then :meth:`finish` (or
    :meth:`abort`, which is always safe and must be called on every way out)."""

    def __init__(self, max_backlog: int = MAX_BACKLOG) -> None:
        self.max_backlog = max_backlog
        #: blake3 of each file's content, by path, as each file is closed.
        self.hashes: dict[Path, bytes] = {}
        self._cond = threading.Condition()
        self._items: deque[tuple[int, Path | memoryview | None, int]] = deque()
        self._backlog = 0
        self._blocked = False
        self._stop = False
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="ccn-file-writer", daemon=True)
        self._worker.start()

    def open(self, path: Path) -> None:
        """The next :meth:`write` calls go to ``path`` (created or truncated)."""
        self._put(_OPEN, path, 0)

    def write(self, data: memoryview) -> None:
        """Append ``data`` to the open file. ``data`` must not change until it is written."""
        self._put(_DATA, data, len(data))

    def close(self, path: Path, *, executable: bool = False) -> None:
        """Close the open file (``path``) and record its hash; mark it executable if asked."""
        self._put(_CLOSE, path, int(executable))

    def finish(self) -> dict[Path, bytes]:
        """Wait until everything is written; return the hashes. Raises the thread's error."""
        self._put(_END, None, 0)
        self._worker.join()
        self._raise()
        return self.hashes

    def abort(self, wait: float = ABORT_WAIT) -> None:
        """Stop the thread (what is queued is not written) and wait up to ``wait`` seconds for
        it to close its file. A thread stuck in a system call (a hung network file system, a
        fifo nobody reads) is left behind rather than holding up the fetch's exit; it is a
        daemon thread. Idempotent; a no-op after :meth:`finish`."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._worker.join(wait)

    # -- the loop's side -------------------------------------------------------------------

    def _raise(self) -> None:
        """Raise the thread's error, or say the writer was aborted."""
        if self._error is not None:
            raise self._error
        if self._stop:
            raise RuntimeError("the file writer was aborted")

    def _put(self, kind: int, value: Path | memoryview | None, size: int) -> None:
        with self._cond:
            self._raise()
            if not self._items:
                self._cond.notify_all()
            self._items.append((kind, value, size))
            if kind == _DATA:
                self._backlog += size
                while self._backlog > self.max_backlog and self._error is None and not self._stop:
                    self._blocked = True
                    self._cond.wait()
                self._raise()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        fh: BinaryIO | None = None
        hasher = blake3()
        try:
            while True:
                with self._cond:
                    while not self._items and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    batch = self._take()
                run: list[memoryview] = []
                size = 0
                for kind, value, n in batch:
                    if kind == _DATA:
                        assert isinstance(value, memoryview)
                        run.append(value)
                        size += n
                        continue
                    if run:
                        assert fh is not None
                        self._write(fh, hasher, run, size)
                        run, size = [], 0
                    if kind == _OPEN:
                        assert isinstance(value, Path)
                        fh = open(value, "wb")  # noqa: SIM115 - closed by _CLOSE or finally
                        hasher = blake3()
                    elif kind == _CLOSE:
                        assert fh is not None and isinstance(value, Path)
                        fh.close()
                        fh = None
                        self.hashes[value] = hasher.digest()
                        if n:
                            value.chmod(0o755)
                    else:
                        return
                if run:
                    assert fh is not None
                    self._write(fh, hasher, run, size)
        except BaseException as e:
            with self._cond:
                self._error = e
                self._cond.notify_all()
        finally:
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()

    def _take(self) -> list[tuple[int, Path | memoryview | None, int]]:
        """The queue's head, up to :data:`BATCH_BYTES` of data (at least one item). Called
        holding the lock."""
        items = self._items
        batch: list[tuple[int, Path | memoryview | None, int]] = []
        size = 0
        while items and (not batch or size < BATCH_BYTES):
            item = items.popleft()
            batch.append(item)
            if item[0] == _DATA:
                size += item[2]
        return batch

    def _write(self, fh: BinaryIO, hasher: blake3, run: list[memoryview], size: int) -> None:
        """Write and hash a run of data in one piece: one write and one hash per batch, not per
        blob. Each of those releases the GIL and takes it back, and taking it back from the busy
        packet loop is a wait and a thread switch (docs/compiled.md)."""
        buf = run[0] if len(run) == 1 else b"".join(run)
        fh.write(buf)
        hasher.update(buf)
        with self._cond:
            self._backlog -= size
            if self._blocked and self._backlog <= self.max_backlog // 2:
                self._blocked = False
                self._cond.notify_all()
