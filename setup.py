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

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

_COMPILER_ERRORS = (CCompilerError, CompileError, ExecError, PlatformError)


class _BuildOrStayPure(build_ext):
    """build_ext that leaves the modules pure Python when the C compiler fails."""

    def finalize_options(self) -> None:
        dist = self.distribution
        if any(isinstance(ext, _Mypyc) for ext in dist.ext_modules or ()):
            dist.ext_modules = _compiled_extensions()
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except _COMPILER_ERRORS as exc:
            failed = type(exc).__name__
            print(f"warning: ccn: the C compiler failed ({failed}); installing pure Python")


def _compiled_extensions() -> list[Any]:
    from mypyc.build import mypycify

    modules = runpy.run_path("ccn/_compiled.py")["MODULES"]
    paths = [m.replace(".", "/") + ".py" for m in modules]
    # One C file for all of them (multi_file=False): the C compiler can then inline across
    # modules; a C file each compiled in 56 s rather than 83 s, but parsed names 2x slower.
    return list(mypycify(paths, opt_level="3", debug_level="0"))


class _Mypyc(Extension):
    """Stands for the compiled modules until build_ext runs: mypyc type-checks and generates
    C only then, not each time pip asks setup.py about the project."""

    def __init__(self) -> None:
        super().__init__("ccn._mypyc_placeholder", sources=[])


setup(
    ext_modules=[] if os.environ.get("CCN_PURE") else [_Mypyc()],
    cmdclass={"build_ext": _BuildOrStayPure},
)
