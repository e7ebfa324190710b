"""The README's Python example runs as written, against a real node."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_python_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has a Python example"
    sock = f"unix://{tmp_path}/n.sock"
    (tmp_path / "notes.txt").write_text("remember the milk\n")
    (tmp_path / "example.py").write_text(blocks[0])
    with subprocess.Popen(
        [sys.executable, "-m", "ccn", "node", "--store", str(tmp_path / "s"), "--listen", sock],
        stdout=subprocess.PIPE,
        text=True,
    ) as node:
        try:
            assert node.stdout is not None and "listening" in node.stdout.readline()
            out = subprocess.run(
                [sys.executable, "example.py"],
                cwd=tmp_path,
                env={**os.environ, "CCN_NODE": sock},
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            node.terminate()
            node.wait(timeout=5)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "/me/notes/v1 b'remember the milk\\n'",
        "no route to /no/such/name",
    ]
