"""The ``ccn`` command's entry point. Loading the command line takes some tens of
milliseconds (argparse, names); Ctrl-C meanwhile ends the program with the same one line and
exit code as Ctrl-C later, not a traceback from deep inside an import. What a command loads
itself (trio, the client, the node: a few hundred ms) is inside ``ccn.cli.main``, whose
handling of Ctrl-C covers it."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    sys.stderr.write("ccn: interrupted\n")
    sys.stderr.flush()
    os._exit(130)  # nothing to clean up yet: only imports have run


def main() -> int:
    previous = signal.signal(signal.SIGINT, _interrupted)
    from ccn.cli import main as cli_main

    signal.signal(signal.SIGINT, previous)
    return cli_main()
