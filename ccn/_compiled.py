"""The modules that the install compiles with mypyc (setup.py reads the list from here), and
whether each runs compiled: see docs/compiled.md.

This file is read by setup.py without importing ccn, so it imports nothing of ccn's.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

#: The per-packet paths: names and packets, the codec and framing, the tables and forwarder,
#: the stream faces, the node's loop, the producer, the client's pending Interests and the
#: fetch pipeline. Each is plain, strictly typed Python that also runs as it is.
MODULES = (
    "ccn.name",
    "ccn.packet",
    "ccn.codec",
    "ccn.framing",
    "ccn.tables.cs",
    "ccn.tables.dnl",
    "ccn.tables.fib",
    "ccn.tables.nametree",
    "ccn.tables.pit",
    "ccn.fw.actions",
    "ccn.fw.adaptive",
    "ccn.fw.forwarder",
    "ccn.fw.strategy",
    "ccn.faces.base",
    "ccn.faces.stream",
    "ccn.node",
    "ccn.pending",
    "ccn.fetch",
    "ccn.filewriter",
    "ccn.producer",
)

_ROOT = Path(__file__).resolve().parent.parent


def source(module: str) -> Path:
    """The ``.py`` file of ``module`` in this checkout."""
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


def extension(module: str) -> Path | None:
    """The compiled extension beside the source of ``module``, if the install built one."""
    src = source(module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        built = src.with_name(src.stem + suffix)
        if built.exists():
            return built
    return None


def running_compiled(module: str) -> bool:
    """Whether ``import module`` gives the compiled extension (finds it without importing)."""
    spec = importlib.util.find_spec(module)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def stale() -> list[str]:
    """Modules whose source changed after they were compiled: Python imports the extension,
    so the change would not run until the install compiles it again."""
    out = []
    for module in MODULES:
        built = extension(module)
        if built is not None and source(module).stat().st_mtime > built.stat().st_mtime:
            out.append(module)
    return out


def wrong_type_error(module: str, own: type[Exception]) -> type[Exception]:
    """What a call into ``module`` with an argument of the wrong Python type raises: compiled,
    mypyc's ``TypeError`` before the function runs; pure, the function's ``own`` error. (Input
    from the wire is checked by the codec before anything is built from it.)"""
    return TypeError if running_compiled(module) else own
