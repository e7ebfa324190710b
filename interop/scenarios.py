"""Interop scenarios: real ccn node processes and unmodified python-ndn apps (interop/ndn_apps.py).

Each scenario is an async function ``(workdir) -> None`` that starts what it needs, asserts, and
ends every process it started (by pid, in ``finally``). Every wait is bounded. Run them by hand:

    python interop/scenarios.py              # all
    python interop/scenarios.py consumers    # one (see SCENARIOS)

``tests/interop/test_python_ndn.py`` runs the same functions under pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ccn.client import connect
from ccn.keys import SigningKey
from ccn.name import Name
from ccn.testing import NodeProcess, free_port, stop_all, wait_ready
from ccn.trust import Anchors

APPS = Path(__file__).resolve().with_name("ndn_apps.py")
APP_TIMEOUT = 30.0
BIG = 5 * 1024 * 1024


class Topology:
    """The node and app processes of one scenario; :meth:`close` ends them all (by pid)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: list[NodeProcess] = []
        self.apps: list[trio.Process] = []
        self.ndn_ports: dict[str, int] = {}

    async def node(self, label: str, *, routes: tuple[str, ...] = (), ndn: bool = True) -> str:
        """Start ``ccn node`` (TCP listener, NDN listener if ``ndn``); return its ccn URI."""
        port = free_port()
        uri = f"tcp://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "ccn", "node", "--store", str(self.workdir / label / "store")]
        cmd += ["--listen", uri]
        if ndn:
            self.ndn_ports[label] = free_port()
            cmd += ["--ndn", f"tcp://127.0.0.1:{self.ndn_ports[label]}"]
        for r in routes:
            cmd += ["--route", r]
        with open(self.workdir / f"{label}.log", "wb") as log:
            proc = await trio.lowlevel.open_process(cmd, stdout=log, stderr=subprocess.STDOUT)
        node = NodeProcess(label, uri, proc)
        self.nodes.append(node)
        await wait_ready(node, self.workdir)
        return uri

    def env(self, label: str) -> dict[str, str]:
        return {**os.environ, "NDN_CLIENT_TRANSPORT": f"tcp4://127.0.0.1:{self.ndn_ports[label]}"}

    async def app(self, label: str, *args: str) -> dict[str, Any]:
        """Run a python-ndn consumer against node ``label``; return its JSON result."""
        with trio.fail_after(APP_TIMEOUT):
            done = await trio.run_process(
                [sys.executable, str(APPS), *args],
                env=self.env(label),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        lines = done.stdout.decode().strip().splitlines()
        if done.returncode != 0 or not lines:
            raise AssertionError(f"{args}: exit {done.returncode}: {done.stderr.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    async def producer(self, label: str, *args: str) -> None:
        """Start a python-ndn producer on node ``label``; return once it registered its prefix."""
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(APPS), *args],
            env=self.env(label),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.apps.append(proc)
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(APP_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise AssertionError(f"producer {args} exited before it was ready")
                line += chunk
        assert json.loads(line) == {"ready": True}, line

    async def close(self) -> None:
        for proc in self.apps:
            if proc.returncode is None:
                proc.kill()
        for proc in self.apps:
            with trio.move_on_after(3):
                await proc.wait()
        await stop_all(self.nodes)


@asynccontextmanager
async def topology(workdir: Path) -> AsyncIterator[Topology]:
    topo = Topology(workdir)
    try:
        yield topo
    finally:
        with trio.CancelScope(shield=True):
            await topo.close()


async def run_ccn(
    uri: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the ``ccn`` CLI against the node at ``uri``."""
    with trio.fail_after(APP_TIMEOUT):
        return await trio.run_process(
            [sys.executable, "-m", "ccn", "--node", uri, *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def ccn(uri: str, *args: str) -> bytes:
    """Run the ``ccn`` CLI; return its stdout (raise with stderr on failure)."""
    done = await run_ccn(uri, *args)
    if done.returncode != 0:
        raise AssertionError(f"ccn {' '.join(args)}: {done.stderr.decode().strip()}")
    out: bytes = done.stdout
    return out


async def status(uri: str) -> dict[str, Any]:
    with trio.fail_after(10):
        async with connect(uri) as client:
            return await client.status()


async def ndn_interests_out(uri: str) -> int:
    """Interests a node sent to its NDN apps (the producers)."""
    faces = (await status(uri))["faces"]
    return sum(f["out_interests"] for f in faces if f["remote"].startswith("ndn+"))


def content_of(text: str, size: int) -> bytes:
    unit = text.encode()
    return (unit * (size // len(unit) + 1))[:size]


# -- scenarios -----------------------------------------------------------------------------------


async def consumers(workdir: Path) -> None:
    """legacy express_interest and v2 express of a small ccn object; segment_fetcher of 5 MiB."""
    async with topology(workdir) as topo:
        uri = await topo.node("a")
        small = workdir / "small.txt"
        small.write_bytes(b"hello from ccn\n" * 100)
        big = workdir / "big.bin"
        big.write_bytes(os.urandom(BIG))
        await ccn(uri, "put", str(small), "/demo/small")
        await ccn(uri, "put", str(big), "/demo/big")

        for kind in ("legacy-get", "v2-get"):
            got = await topo.app("a", kind, "/demo/small")
            assert got["name"] == "/demo/small/v=1/seg=0", got
            assert bytes.fromhex(got["content"]) == small.read_bytes(), kind

        out = workdir / "big.out"
        got = await topo.app("a", "segfetch", "/demo/big", str(out))
        assert got == {"size": BIG, "sha256": hashlib.sha256(big.read_bytes()).hexdigest()}, got
        assert out.read_bytes() == big.read_bytes()


async def producers_two_hops(workdir: Path) -> None:
    """A legacy and a v2 producer register on node a; ``ccn get`` on node c (c → b → a)."""
    async with topology(workdir) as topo:
        a = await topo.node("a")
        b = await topo.node("b", routes=(f"/p={a}",), ndn=False)
        c = await topo.node("c", routes=(f"/p={b}",), ndn=False)
        await topo.producer("a", "legacy-serve", "/p/legacy", "legacy!", "10000")
        await topo.producer("a", "v2-serve", "/p/appv2", "appv2?", "3000")
        for name, text, size in (("/p/legacy", "legacy!", 10000), ("/p/appv2", "appv2?", 3000)):
            assert await ccn(c, "get", name, "-o", "-") == content_of(text, size), name
            to_producers = await ndn_interests_out(a)
            hits = (await status(c))["cs"]["hits"]
            assert await ccn(c, "get", name, "-o", "-") == content_of(text, size), name
            assert (await status(c))["cs"]["hits"] > hits, "second fetch must hit c's cache"
            assert await ndn_interests_out(a) == to_producers, "the producers were asked again"
        # The publisher of NDN content is not verified: ccn get says so, and under a trust
        # anchor refuses it (it was written out with exit 0 and no word).
        plain = await run_ccn(c, "get", "/p/legacy", "-o", "-")
        assert plain.returncode == 0 and plain.stderr.decode().splitlines() == [
            "ccn: note: /p/legacy is NDN content: its publisher is not verified (ccn checks "
            "DigestSha256 signatures only)"
        ]
        home = workdir / "home"
        Anchors([(Name.parse("/p"), SigningKey.generate().public)]).save(home / "trust")
        out = workdir / "refused.bin"
        env = {**os.environ, "CCN_HOME": str(home)}
        refused = await run_ccn(c, "get", "/p/legacy", "-o", str(out), env=env)
        assert refused.returncode == 1 and not out.exists()
        assert refused.stderr.decode().splitlines() == [
            "ccn: error: /p/legacy is not a ccn version signed for /p, which the trust file "
            "anchors (NDN content is not accepted there: ccn does not verify NDN signatures)"
        ]


async def chain(workdir: Path) -> None:
    """A python-ndn consumer on node x, a python-ndn producer on node y, x → y over ccn."""
    async with topology(workdir) as topo:
        y = await topo.node("y")
        await topo.node("x", routes=(f"/q={y}",))
        await topo.producer("y", "v2-serve", "/q/data", "chained ", "20000")
        out = workdir / "q.out"
        got = await topo.app("x", "segfetch", "/q/data", str(out))
        assert out.read_bytes() == content_of("chained ", 20000), got
        got = await topo.app("x", "legacy-get", "/q/data")
        assert got["name"].startswith("/q/data/v=7/seg="), got


async def nack_and_malformed(workdir: Path) -> None:
    """No route: a Nack at once. A malformed TLV stream closes that face only."""
    async with topology(workdir) as topo:
        uri = await topo.node("a")
        small = workdir / "small.txt"
        small.write_bytes(b"still here\n")
        await ccn(uri, "put", str(small), "/demo/small")
        got = await topo.app("a", "legacy-get", "/no/such/prefix")
        assert got["nack"] == 150 and got["elapsed"] < 1.0, got
        got = await topo.app("a", "v2-get", "/no/such/prefix")
        assert got["nack"] == 150 and got["elapsed"] < 1.0, got

        port = topo.ndn_ports["a"]
        good = await trio.open_tcp_stream("127.0.0.1", port)
        bad = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(10):
            await bad.send_all(b"\x05\x03\x07\x01\x08" + b"GET / HTTP/1.1\r\n\r\n")
            while await bad.receive_some(4096):
                pass  # the node closes it
            # The well-formed face on the same listener still works.
            interest = bytes.fromhex("0519") + _interest_value("/demo/small")
            await good.send_all(interest)
            reply = await good.receive_some(65536)
            assert reply[:1] == b"\x06" and b"still here" in reply, reply
        await good.aclose()
        await bad.aclose()
        assert await topo.app("a", "v2-get", "/demo/small")


def _interest_value(uri: str) -> bytes:
    from ccn.ndn.packets import T_CAN_BE_PREFIX, T_MUST_BE_FRESH, encode_name, generic
    from ccn.ndn.tlv import tlv

    name = tuple(generic(p.encode()) for p in uri.strip("/").split("/"))
    value = encode_name(name) + tlv(T_CAN_BE_PREFIX) + tlv(T_MUST_BE_FRESH)
    value += tlv(0x0A, b"\x01\x02\x03\x04")
    assert len(value) == 0x19
    return value


SCENARIOS: dict[str, Callable[[Path], Awaitable[None]]] = {
    "consumers": consumers,
    "producers_two_hops": producers_two_hops,
    "chain": chain,
    "nack_and_malformed": nack_and_malformed,
}


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"ccn-interop-{name}-") as tmp:
            start = time.monotonic()
            trio.run(SCENARIOS[name], Path(tmp))
            print(f"{name}: ok ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
