"""What a node's start adds to the file system for its store, so that a failed start can take
it back.

A start that fails (a port in use, a listener refused) must not leave a new, empty store
behind. :class:`NewStore` looks, before the store is opened, at what of its path exists: the
highest directory of it that does not (the store directory itself, or a parent) is what this
start creates; a directory that exists but holds no store yet (empty, or only ``lost+found``)
keeps the entries it had. :meth:`NewStore.undo` removes exactly what was added since. A
directory that already held a store is never touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class NewStore:
    """The part of a store's path a node start is about to create (see the module)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        #: The highest directory of the path that does not exist yet, if any.
        self.top: Path | None = None
        #: What an existing directory without a store held; None for a store (or a new path).
        self.kept: frozenset[str] | None = None
        path = store.absolute()
        while not os.path.lexists(path):
            self.top = path
            path = path.parent
        if self.top is None:
            entries = frozenset(os.listdir(store))
            self.kept = None if "objects" in entries else entries

    def undo(self) -> None:
        """Remove what was added to the file system for the store since this was made, unless
        it holds content by now: another node may have started on the same new path at the
        same moment, and published there (a store as made holds only empty files)."""
        if self.top is not None:
            if not _holds_content(self.top):
                shutil.rmtree(self.top, ignore_errors=True)
            return
        if self.kept is None or _holds_content(self.store):
            return
        try:
            added = set(os.listdir(self.store)) - self.kept
        except OSError:
            return
        for entry in added:
            path = self.store / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _holds_content(top: Path) -> bool:
    """Whether any file below ``top`` is not empty."""
    for root, _dirs, files in os.walk(top):
        for f in files:
            try:
                if os.lstat(os.path.join(root, f)).st_size:
                    return True
            except OSError:
                continue
    return False
