"""Reading a small file of the user's (a key, the trust file, a config) that must be a regular
file: a FIFO or a device at that path is refused at once instead of waiting forever for a
writer, or reading without end."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["read_regular"]


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The regular file at ``path`` (its first ``limit`` bytes if given); OSError
    (``strerror`` says why: "not a regular file" for a FIFO, a device, a directory) otherwise."""
    # O_NONBLOCK: opening a FIFO for reading does not wait for a writer (and is then refused)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fsdecode(path))
        os.set_blocking(fd, True)
        parts = []
        size = 0
        while limit is None or size < limit:  # (a regular file ends)
            chunk = os.read(fd, 1 << 20 if limit is None else min(limit - size, 1 << 20))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)
