"""Open and accept stream transports (TCP, Unix sockets) and wrap them in stream faces.

Peers on a Unix socket, and loopback TCP peers that run as the node's user or root
(:mod:`ccn.faces.peers`), are *local* (they may use ``/localhost`` names).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from ccn.errors import ConnectError, os_error_text
from ccn.faces.peers import is_local_peer
from ccn.faces.stream import StreamFace
from ccn.faces.uri import FaceUri, sockaddr_host, unknown_zone
from ccn.framing import DEFAULT_MAX_FRAME

OnFace = Callable[[StreamFace], Awaitable[None]]
Say = Callable[[str], None]

#: What accept() fails with when this process (or the system) is out of descriptors, memory
#: or socket buffers: the listener is fine, the connection waits in its backlog.
ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: How long the accept loop waits before trying again after one of those.
ACCEPT_RETRY_S: Final = 0.1

#: How long a dial waits for the peer to answer. Without it a dial to a host that is off (its
#: SYNs dropped, not refused) waited out the kernel's retries, about two minutes, and so did a
#: neighbour's redial when its machine came back.
DIAL_TIMEOUT = 4.0


def _tune(stream: trio.SocketStream) -> None:
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)


#: The send buffer asked for on each end of a Unix-socket connection (the kernel grants at
#: most ``net.core.wmem_max``, doubled). A Unix stream socket has no autotuning: its default,
#: 208 KiB, holds under three 80 KiB objects on their way to a fetching client: a 256 MiB
#: fetch from the node's cache ran at about 0.75x the rate it has with 4 MiB
#: (benchmarks/README.md, "The Unix socket's send buffer").
UNIX_SNDBUF: Final = 4 << 20


def _tune_unix(stream: trio.SocketStream) -> None:
    with contextlib.suppress(OSError):  # (a value above the limit is capped, not refused)
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SNDBUF)


async def dial(uri: FaceUri) -> StreamFace:
    """Connect to a node; raise :class:`ConnectError` with one clear line if nobody answers."""
    if uri.scheme not in ("tcp", "unix"):
        raise ConnectError(f"cannot connect a stream to {uri}: use tcp:// or unix://")
    zone_error = unknown_zone(uri.host)
    if zone_error:
        raise ConnectError(f"cannot reach a ccn node at {uri}: {zone_error}")
    try:
        with trio.fail_after(DIAL_TIMEOUT):
            if uri.scheme == "tcp":
                tcp = await trio.open_tcp_stream(uri.host, uri.port)
                _tune(tcp)
                local = is_local_peer(tcp.socket.getsockname(), tcp.socket.getpeername())
                return StreamFace(tcp, str(uri), local=local)
            unix = await trio.open_unix_socket(uri.path)
            _tune_unix(unix)
            return StreamFace(unix, str(uri), local=True)
    except OSError as e:
        raise ConnectError(f"cannot reach a ccn node at {uri}: {_reason(e)}") from None
    except trio.TooSlowError:
        raise ConnectError(
            f"cannot reach a ccn node at {uri}: no answer in {DIAL_TIMEOUT:g} s"
        ) from None


def _reason(error: OSError) -> str:
    """Why a connect failed, in the operating system's words: trio's "all attempts to connect
    failed" keeps each attempt's error in its cause (the last attempt's is shown)."""
    cause = error.__cause__
    if error.strerror is None and isinstance(cause, BaseExceptionGroup):
        codes = [e.errno for e in cause.exceptions if isinstance(e, OSError) and e.errno]
        if codes:
            return os.strerror(codes[-1])
    return error.strerror or str(error)


async def open_listener(uri: FaceUri) -> tuple[trio.SocketListener, FaceUri]:
    """Bind a listener; return it and the address actually bound (port 0 resolved).

    Stream listeners only: ``udp://`` is served by :mod:`ccn.faces.udp`. A ``unix://``
    socket's directory must exist: it is not created. Raises :class:`ConnectError` naming the
    address if it cannot be bound."""
    try:
        return await _open_listener(uri)
    except OSError as e:
        raise ConnectError(f"cannot listen on {uri}: {os_error_text(e)}") from None


async def _open_listener(uri: FaceUri) -> tuple[trio.SocketListener, FaceUri]:
    if uri.scheme == "tcp":
        listeners = await trio.open_tcp_listeners(uri.port, host=uri.host)
        listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        addr = listener.socket.getsockname()
        return listener, FaceUri("tcp", host=sockaddr_host(addr), port=addr[1])
    path = uri.path
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        if await _unix_alive(path):
            sock.close()
            raise ConnectError(f"another node already listens on {uri}")
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            # only a dead node's socket is ours to replace, never a file of the user's
            sock.close()
            raise ConnectError(f"cannot listen on {uri}: {path} exists and is not a socket")
        os.unlink(path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        # a mistyped path is told, not made: no tree of directories appears where none was
        sock.close()
        raise ConnectError(f"cannot listen on {uri}: directory {directory} does not exist")
    await sock.bind(path)
    sock.listen(128)
    _BOUND[path] = _identity(path)
    return trio.SocketListener(sock), uri


#: The file each Unix listener bound, by path: what it may remove when it stops.
_BOUND: dict[str, tuple[int, int, int] | None] = {}


def _identity(path: str) -> tuple[int, int, int] | None:
    """Which file is at ``path``: an inode number freed is soon given again, so with the
    time it was made."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


async def _unix_alive(path: str) -> bool:
    try:
        s = await trio.open_unix_socket(path)
    except OSError:
        return False
    await s.aclose()
    return True


async def accepted_peer(stream: trio.SocketStream) -> tuple[FaceUri, bool] | None:
    """The peer of an accepted TCP connection, and whether it is local (see
    :mod:`ccn.faces.peers`); None, having closed it, if the peer is already gone (reset before
    we looked: ``getpeername`` fails, and must not take the listener, and with it the node,
    down)."""
    try:
        peer = stream.socket.getpeername()
        ours = stream.socket.getsockname()
    except OSError:
        await trio.aclose_forcefully(stream)
        return None
    return FaceUri("tcp", host=peer[0], port=peer[1]), is_local_peer(ours, peer)


async def serve(
    listener: trio.SocketListener,
    bound: FaceUri,
    on_face: OnFace,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    say: Say | None = None,
) -> None:
    """Accept connections forever, running ``on_face`` for each in its own task. Faces accept
    frames of at most ``max_frame`` bytes. ``say``: see :func:`accept_forever`."""

    async def handle(stream: trio.SocketStream) -> None:
        if bound.scheme == "tcp":
            peer = await accepted_peer(stream)
            if peer is None:
                return
            uri, local = peer
            _tune(stream)
            face = StreamFace(stream, str(uri), local=local, max_frame=max_frame)
        else:
            _tune_unix(stream)
            face = StreamFace(stream, f"unix://{bound.path}#peer", local=True, max_frame=max_frame)
        face.opened_by_peer = True
        await on_face(face)

    try:
        await accept_forever(listener, bound, handle, say)
    finally:
        remove_socket(bound)


def remove_socket(bound: FaceUri) -> None:
    """A stopped Unix listener removes its socket file: only the one it made. One removed
    meanwhile (a tmp cleaner) may be another node's now, which listens there (helper-54:
    stopping removed it)."""
    if bound.scheme == "unix" and _BOUND.pop(bound.path, None) == _identity(bound.path):
        with contextlib.suppress(OSError):
            os.unlink(bound.path)


async def accept_forever(
    listener: trio.SocketListener,
    bound: FaceUri,
    handle: Callable[[trio.SocketStream], Awaitable[None]],
    say: Say | None = None,
) -> None:
    """Accept connections on ``listener`` forever, each handled in a task of its own and
    closed after. Out of descriptors (or memory), accept waits :data:`ACCEPT_RETRY_S` and tries
    again, and ``say`` is told once when that starts and once when connections are taken
    again: ``trio.serve_listeners`` logged a traceback of nine lines at every retry, ten a
    second per listener, for as long as the limit was reached."""

    async def run(stream: trio.SocketStream) -> None:
        async with stream:
            await handle(stream)

    failing = False
    async with listener, trio.open_nursery() as nursery:
        while True:
            try:
                stream = await listener.accept()
            except OSError as e:
                if e.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                if not failing and say is not None:
                    say(f"cannot accept connections on {bound}: {_capacity_text(e)}")
                failing = True
                await trio.sleep(ACCEPT_RETRY_S)
                continue
            if failing and say is not None:
                say(f"accepting connections on {bound} again")
            failing = False
            nursery.start_soon(run, stream)


def _capacity_text(e: OSError) -> str:
    if e.errno == errno.EMFILE:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return (
            f"{e.strerror} (this process may open {limit}: ulimit -n); new connections wait "
            "until some close"
        )
    return f"{e.strerror}; new connections wait"
