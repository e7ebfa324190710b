"""A line on stderr for the person running a node (or a relay): a stderr that is gone (a
closed pipe, a full disk) loses the line, never the process.

``ccn node 2>&1 | tee log`` whose reader stopped made the next such line raise
``BrokenPipeError``, which ended the node without a word (helper-54)."""

from __future__ import annotations

import contextlib
import sys
import traceback

#: OSError: a pipe with no reader, a full disk; ValueError: stderr closed.
_GONE = (OSError, ValueError)


def say(line: str) -> None:
    with contextlib.suppress(*_GONE):
        print(line, file=sys.stderr, flush=True)


def say_traceback(line: str) -> None:
    """``line``, then the traceback of the exception being handled."""
    with contextlib.suppress(*_GONE):
        print(line, file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
