"""Build: compiles the per-packet modules with mypyc (docs/compiled.md). The rest of the
project's metadata is in pyproject.toml.

The modules listed in ccn/_compiled.py are plain, strictly typed Python; mypyc (part of mypy)
turns each into a C extension installed beside its source, which makes the node and the client
about twice as fast per packet. ``CCN_PURE=1`` skips it, and so does a machine without a
working C compiler (with a warning): ccn then runs the same code as pure Python.
"""

from __future__ import annotations

import os
import runpy
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

_COMPILER_ERRORS = (CCompilerError, CompileError, ExecError, PlatformError)


class _BuildOrStayPure(build_ext):
    """build_ext that leaves the modules pure Python when the C compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except _COMPILER_ERRORS as exc:
            print(f"warning: ccn: no compiled modules ({exc}); installing pure Python")


def _extensions() -> list[Any]:
    if os.environ.get("CCN_PURE"):
        return []
    from mypyc.build import mypycify

    modules = runpy.run_path("ccn/_compiled.py")["MODULES"]
    paths = [m.replace(".", "/") + ".py" for m in modules]
    return list(mypycify(paths, opt_level="3", debug_level="0"))


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildOrStayPure})
