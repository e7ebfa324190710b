"""The plumbing of the cache-hit study: where processes run, and the non-ccn servers and clients.

* :class:`Net` is the place the study runs in: three network namespaces (consumer ``c``, nearby
  ``m``, origin ``o``) joined by veth pairs c-m and m-o, with the nearby namespace forwarding IP
  so that the consumer host can reach the origin host through it; or loopback, where every
  "host" is 127.0.0.1. Namespaces are named ``ccns-<pid>-<host>``, created by :meth:`Net.create`
  and removed by :meth:`Net.destroy` (call it in a ``finally``); nothing outside them changes.
* Helper servers run as child processes (``python _study_net.py relay|raw|http ...``): the
  delaying relay from :mod:`ccn.relay` (several listeners, one process, one delay), a raw trio
  request/response server (the protocol of ``bench_node.py``'s baseline) and an HTTP/1.1
  keep-alive fallback server on :mod:`http.server`. Each prints ``ready`` once it listens.
* nginx: :func:`ensure_nginx` finds or installs the Debian package, :func:`nginx_command` writes
  a config serving one directory on one port.
* Clients: :class:`HttpClient` (keep-alive, pipelined GETs) and the raw request/response client
  helpers, all trio, all reading everything available per wake-up like a ccn face.

Every process is started and ended by its caller, by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import trio
from bench_node import WINDOW, BaselineClient, answer_requests

from ccn.relay import run_relay

CLONE_NEWNET = 0x40000000
HOSTS = ("c", "m", "o")
#: Addresses inside our own namespaces (private to them: they cannot clash with anything).
NS_ADDR = {"c": "10.201.1.1", "m_c": "10.201.1.2", "m_o": "10.201.2.1", "o": "10.201.2.2"}
#: Fixed ports inside the namespaces (each namespace has its own port space).
NS_PORTS = {"node": 6464, "raw": 7000, "http": 8080, "relay_node": 9000, "relay_raw": 9001}
NS_PORTS["relay_http"] = 9002
NS_PORTS["forward"] = 9003


def _run(cmd: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Net:
    """Where the study runs: ``netns`` (three namespaces) or ``loopback``."""

    mode: str
    names: dict[str, str] = field(default_factory=dict)
    why: str = ""
    _home_ns: int | None = None

    # -- addresses the study uses ------------------------------------------------------------

    def prefix(self, host: str) -> list[str]:
        """Command prefix that runs a program on ``host`` (c, m, o)."""
        if self.mode == "netns":
            return ["ip", "netns", "exec", self.names[host]]
        return []

    def node_listen_host(self, host: str) -> str:
        if self.mode == "netns":
            return {"c": NS_ADDR["c"], "m": NS_ADDR["m_c"], "o": "127.0.0.1"}[host]
        return "127.0.0.1"

    @property
    def origin_addr(self) -> str:
        """Where the relay listens: the origin host's address on the slow link."""
        return NS_ADDR["o"] if self.mode == "netns" else "127.0.0.1"

    @property
    def nearby_addr(self) -> str:
        return NS_ADDR["m_c"] if self.mode == "netns" else "127.0.0.1"

    def port(self, what: str) -> int:
        if self.mode == "netns":
            return NS_PORTS[what]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

    def describe(self) -> str:
        if self.mode == "netns":
            return (
                "network namespaces " + ", ".join(self.names.values()) + " (veth c-m and m-o, "
                "IP forwarding in m; consumer c = 10.201.1.1, nearby m = 10.201.1.2/10.201.2.1, "
                "origin o = 10.201.2.2)"
            )
        return f"loopback 127.0.0.1 ({self.why})" if self.why else "loopback 127.0.0.1"

    # -- life cycle --------------------------------------------------------------------------

    @classmethod
    def create(cls, want: str) -> Net:
        """``want``: auto, netns or loopback. ``auto`` uses namespaces when root and working."""
        if want == "loopback":
            return cls("loopback", why="asked for")
        if os.geteuid() != 0:
            if want == "netns":
                raise SystemExit("--net netns needs root")
            return cls("loopback", why="not root")
        if shutil.which("ip") is None:
            if want == "netns":
                raise SystemExit("--net netns needs iproute2 (ip)")
            return cls("loopback", why="no ip command")
        net = cls("netns", names={h: f"ccns-{os.getpid()}-{h}" for h in HOSTS})
        try:
            net._build()
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            net.destroy()
            if want == "netns":
                raise SystemExit(f"cannot build network namespaces: {e}") from None
            return cls("loopback", why=f"ip netns failed: {e}")
        return net

    def _ip(self, *args: str) -> None:
        out = _run(["ip", *args])
        if out.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")

    def _sysctl(self, host: str, key: str, value: str) -> bool:
        path = "/proc/sys/" + key.replace(".", "/")
        out = _run([*self.prefix(host), "sh", "-c", f"echo {value} > {path}"])
        return out.returncode == 0

    def _build(self) -> None:
        n = self.names
        for h in HOSTS:
            self._ip("netns", "add", n[h])
        self._ip(
            "-n",
            n["c"],
            "link",
            "add",
            "vc",
            "type",
            "veth",
            "peer",
            "name",
            "vmc",
            "netns",
            n["m"],
        )
        self._ip(
            "-n",
            n["m"],
            "link",
            "add",
            "vmo",
            "type",
            "veth",
            "peer",
            "name",
            "vo",
            "netns",
            n["o"],
        )
        for host, dev, addr in (
            ("c", "vc", NS_ADDR["c"]),
            ("m", "vmc", NS_ADDR["m_c"]),
            ("m", "vmo", NS_ADDR["m_o"]),
            ("o", "vo", NS_ADDR["o"]),
        ):
            self._ip("-n", n[host], "addr", "add", f"{addr}/24", "dev", dev)
            self._ip("-n", n[host], "link", "set", dev, "up")
        for h in HOSTS:
            self._ip("-n", n[h], "link", "set", "lo", "up")
        self._ip("-n", n["c"], "route", "add", "default", "via", NS_ADDR["m_c"])
        self._ip("-n", n["o"], "route", "add", "default", "via", NS_ADDR["m_o"])
        if not self._sysctl("m", "net.ipv4.ip_forward", "1"):
            raise RuntimeError("cannot enable IP forwarding in the nearby namespace")
        available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text()
        if "cubic" in available.split():
            for h in HOSTS:
                self._sysctl(h, "net.ipv4.tcp_congestion_control", "cubic")

    def enter_consumer(self) -> None:
        """Move this process (its main thread; call before starting threads) into ``c``."""
        if self.mode != "netns":
            return
        self._home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.names['c']}")

    def destroy(self) -> None:
        if self._home_ns is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(self._home_ns, CLONE_NEWNET)
            os.close(self._home_ns)
            self._home_ns = None
        for name in self.names.values():
            if Path(f"/run/netns/{name}").exists():
                _run(["ip", "netns", "del", name])

    def congestion_control(self) -> str:
        out = _run([*self.prefix("c"), "cat", "/proc/sys/net/ipv4/tcp_congestion_control"])
        return out.stdout.strip() or "unknown"


# -- child processes -------------------------------------------------------------------------


async def start_helper(
    prefix: list[str], args: list[str], log: Path, timeout: float = 20.0
) -> trio.Process:
    """Start ``python _study_net.py ARGS`` (behind ``prefix``); return once it prints ready."""
    cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), *args]
    with open(log, "wb") as err:
        proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    got = b""
    with trio.move_on_after(timeout):
        while b"\n" not in got:
            chunk = await proc.stdout.receive_some(100)
            if not chunk:
                break
            got += chunk
    if not got.startswith(b"ready"):
        from _common import stop_process

        await stop_process(proc)
        text = log.read_text(errors="replace").strip().splitlines()
        raise RuntimeError(f"{args[0]} did not start: {text[-1] if text else '?'}")
    return proc


def ensure_nginx(allow_install: bool) -> tuple[str | None, str]:
    """Return (path to nginx or None, what happened)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if found:
        return found, "installed"
    if not allow_install:
        return None, "nginx not installed (install not allowed)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "nginx not installed and cannot install (not root or no apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    why = ""
    for attempt in range(2):
        for pkg in ("nginx-light", "nginx"):
            out = subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", pkg],
                capture_output=True,
                text=True,
                timeout=600,
                env=env,
                check=False,
            )
            path = shutil.which("nginx") or (
                "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
            )
            if out.returncode == 0 and path:
                return path, f"installed now: apt-get install {pkg}"
            lines = (out.stderr or out.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit {out.returncode}"
        if attempt == 0:
            _run(["apt-get", "update"], timeout=600)
    return None, f"apt-get install nginx-light/nginx failed: {why}"


def nginx_version(path: str) -> str:
    out = _run([path, "-v"])
    return (out.stderr or out.stdout).strip().replace("nginx version: ", "")


def nginx_command(path: str, workdir: Path, root: Path, host: str, port: int) -> list[str]:
    """Write a config serving ``root`` on ``host:port``; return the foreground command."""
    conf_dir = workdir / "nginx"
    (conf_dir / "body").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\npid {conf_dir}/nginx.pid;\n"
        f"error_log {conf_dir}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n"
        "  keepalive_requests 10000000;\n  keepalive_timeout 600s;\n"
        "  default_type application/octet-stream;\n"
        f"  client_body_temp_path {conf_dir}/body;\n"
        f"  server {{\n    listen {host}:{port};\n    root {root};\n  }}\n"
        "}\n"
    )
    return [
        path,
        "-p",
        str(conf_dir),
        "-e",
        str(conf_dir / "error.log"),
        "-c",
        str(conf),
        "-g",
        "daemon off;",
    ]


# -- the helper servers (run in child processes) ---------------------------------------------


async def _relay_main(delay: float, maps: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        for item in maps:
            listen, _, target = item.partition("=")
            lhost, _, lport = listen.rpartition(":")
            thost, _, tport = target.rpartition(":")
            await nursery.start(
                partial(run_relay, (thost, int(tport)), delay, host=lhost, port=int(lport))
            )
        print("ready", flush=True)


async def _raw_main(host: str, port: int) -> None:
    """Answer ``[u32 len][u32 size][u32 seq]`` with ``[u32 size][size bytes]``, coalesced."""
    payload = os.urandom(1 << 20)

    async def handle(stream: trio.SocketStream) -> None:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        await answer_requests(stream, payload)

    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        print("ready", flush=True)


async def _forward_main(host: str, port: int, target_host: str, target_port: int) -> None:
    """A byte forwarder that does nothing else: every connection to ``host:port`` is joined to
    one to the target, each direction a task that reads the socket and writes what it got, with
    ``os.read``/``os.write`` on the descriptors as ccn's faces do. Its latency is the floor of
    any design with a forwarding process on the consumer's host."""

    async def pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
        rfd, wfd = src.socket.fileno(), dst.socket.fileno()
        while True:
            try:
                got = os.read(rfd, 1 << 20)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(rfd)
                continue
            if not got:
                return
            view = memoryview(got)
            while view:
                try:
                    view = view[os.write(wfd, view) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(wfd)

    async def handle(stream: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream(target_host, target_port)
        for s in (stream, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pump, stream, upstream)
            await pump(upstream, stream)
            nursery.cancel_scope.cancel()

    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        print("ready", flush=True)


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx
    disable_nagle_algorithm = True  # headers and body are two writes; as nginx's tcp_nodelay

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _http_main(root: str, host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), partial(_Handler, directory=root))
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def helper_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="helper servers of the cache-hit study")
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--delay-ms", type=float, required=True)
    r.add_argument("maps", nargs="+", help="LISTENHOST:PORT=TARGETHOST:PORT")
    w = sub.add_parser("raw")
    w.add_argument("host")
    w.add_argument("port", type=int)
    f = sub.add_parser("forward")
    f.add_argument("host")
    f.add_argument("port", type=int)
    f.add_argument("target_host")
    f.add_argument("target_port", type=int)
    h = sub.add_parser("http")
    h.add_argument("root")
    h.add_argument("host")
    h.add_argument("port", type=int)
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.what == "relay":
            trio.run(_relay_main, args.delay_ms / 1000, args.maps)
        elif args.what == "raw":
            trio.run(_raw_main, args.host, args.port)
        elif args.what == "forward":
            trio.run(_forward_main, args.host, args.port, args.target_host, args.target_port)
        else:
            _http_main(args.root, args.host, args.port)
    return 0


# -- clients ---------------------------------------------------------------------------------


async def open_stream(host: str, port: int, timeout: float = 10.0) -> trio.SocketStream:
    deadline = time.monotonic() + timeout
    while True:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await trio.sleep(0.05)
            continue
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        return stream


class HttpError(Exception):
    pass


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client: GET with Content-Length bodies, pipelining."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.buf = bytearray()

    @classmethod
    async def open(cls, host: str, port: int) -> HttpClient:
        return cls(await open_stream(host, port), f"{host}:{port}")

    def request(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(1 << 20)
        if not chunk:
            raise HttpError("server closed the connection")
        self.buf += chunk

    async def _head(self) -> int:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        if " 200 " not in head[0] + " ":
            raise HttpError(f"HTTP answer {head[0]!r}")
        for line in head[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                return int(value)
        raise HttpError("no Content-Length")

    async def _body(self, n: int, out: BinaryIO | None) -> bytes:
        parts: list[bytes] = []
        while n:
            if not self.buf:
                await self._fill()
            take = min(n, len(self.buf))
            piece = bytes(self.buf[:take])
            del self.buf[:take]
            n -= take
            if out is not None:
                out.write(piece)
            else:
                parts.append(piece)
        return b"".join(parts)

    async def get(self, path: str) -> bytes:
        await self.stream.send_all(self.request(path))
        return await self._body(await self._head(), None)

    async def download(self, path: str, out: BinaryIO) -> int:
        await self.stream.send_all(self.request(path))
        n = await self._head()
        await self._body(n, out)
        return n

    async def pipelined(self, paths: Sequence[str], window: int = WINDOW) -> float:
        """GET every path once, ``window`` requests in flight; return the seconds taken."""
        start = time.perf_counter()
        issued = min(window, len(paths))
        await self.stream.send_all(b"".join(self.request(p) for p in paths[:issued]))
        for _ in range(len(paths)):
            await self._body(await self._head(), None)
            if issued < len(paths):
                await self.stream.send_all(self.request(paths[issued]))
                issued += 1
        return time.perf_counter() - start

    async def aclose(self) -> None:
        await self.stream.aclose()


async def raw_latency(host: str, port: int, size: int, count: int) -> list[float]:
    """``count`` sequential request/response round trips with ``size``-byte answers."""
    client = BaselineClient(await open_stream(host, port))
    out: list[float] = []
    try:
        for seq in range(count + 10):
            t0 = time.perf_counter()
            await client.stream.send_all(client.request(size, seq))
            while not await client.responses():
                pass
            if seq >= 10:  # the first few warm the connection up
                out.append(time.perf_counter() - t0)
    finally:
        await client.stream.aclose()
    return out


async def raw_window(host: str, port: int, size: int, count: int) -> float:
    """``count`` exchanges with ``WINDOW`` in flight; return the seconds taken."""
    client = BaselineClient(await open_stream(host, port))
    try:
        return await client.windowed(count, size)
    finally:
        await client.stream.aclose()


async def raw_bulk(host: str, port: int, total: int, dest: Path, piece: int = 64 * 1024) -> float:
    """Fetch ``total`` bytes in ``piece``-byte answers, window 64, into ``dest``; seconds."""
    client = BaselineClient(await open_stream(host, port))
    return await client.bulk(total, piece, dest)


if __name__ == "__main__":
    raise SystemExit(helper_main(sys.argv[1:]))
