"""A TCP relay that adds a fixed one-way delay in each direction: a link emulator in user space.

This kernel has no netem, so the demo and the benchmarks put this relay on the "slow link"; ccn
traffic and any host-to-host baseline pass through the same relay and see the same link. Bytes
keep their order. Trio timers are good to about a millisecond, so use delays of 5 ms or more.

A link should cost the hosts nothing, so the bytes never enter this process: each read is
``splice``d from the socket into a pipe, which holds it for the delay, and then from the pipe
into the other socket (`benchmarks/bench_relay.py`: 1.0-1.5 GB/s at 0.5-0.8 ms of CPU per MB
on loopback, where reading and writing in Python gave about 420 MB/s at 2.3 ms). Per direction
at most :data:`MAX_IN_FLIGHT` bytes in :data:`MAX_PIPES` pipes are held; past that the relay
stops reading and TCP flow control holds the sender back.

Closing behaves as on a direct connection, as far as a relay can: an end's half-close (FIN) is
passed on after the bytes before it; a reset is passed on as a reset (after the bytes before
it); if one side stops taking bytes, only that direction ends and the other drains; an upstream
that refuses the connection resets the client's (whose connect had already succeeded).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import socket
import struct
import sys
from collections import deque
from functools import partial

import trio

#: Bytes one pipe holds (the most an unprivileged process may ask for by default).
PIPE_SIZE = 1 << 20
#: Bytes held in the delay line per direction. A link holds rate x delay: 32 MiB covers
#: 1.6 GB/s at 20 ms. Past it the relay stops reading and TCP holds the sender back (a receiver
#: that reads slowly therefore sees up to this much queued, as behind a proxy).
MAX_IN_FLIGHT = 32 << 20
#: Pipes in the delay line per direction (a pipe holds less than PIPE_SIZE when the socket
#: hands over small pieces), and idle pipes kept once the line drains: each pipe is two
#: descriptors.
MAX_PIPES = 128
SPARE_PIPES = 4

_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_LINGER_RESET = struct.pack("ii", 1, 0)


class _Pipe:
    __slots__ = ("r", "w")

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # the default size (64 KiB) will do
            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


class _Reset(Exception):
    """A peer reset its connection (or it broke): the relay resets the other side too."""


async def _splice_out(pipe: _Pipe, dst: trio.socket.SocketType, size: int) -> bool:
    """Move the ``size`` bytes ``pipe`` holds into ``dst``; False if ``dst`` is gone."""
    try:
        while size:
            try:
                size -= os.splice(pipe.r, dst.fileno(), size, flags=_FLAGS)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(dst)
    except OSError:
        return False
    return True


async def _pump(src: trio.socket.SocketType, dst: trio.socket.SocketType, delay: float) -> None:
    """Move bytes from ``src`` to ``dst``, each read held back ``delay`` seconds, and shut down
    the writing side of ``dst`` when ``src`` ends. If ``dst`` stops taking bytes (it closed),
    only this direction ends: what it held is dropped and ``src`` is shut for reading, while
    the other direction drains. A reset of ``src`` raises :class:`_Reset` once what arrived
    before it has been delivered."""
    free: list[_Pipe] = []
    pending: deque[tuple[float, _Pipe, int]] = deque()
    in_flight = 0
    more = trio.Event()
    room = trio.Event()
    done = False
    reset = False  # src failed (a reset): passed on once what came before it is delivered
    src_fd = src.fileno()

    async def wait_room() -> None:
        nonlocal room
        await room.wait()
        room = trio.Event()

    def new_pipe() -> _Pipe | None:
        if free:
            return free.pop()
        try:
            return _Pipe()
        except OSError:  # out of descriptors: wait for a pipe in the line to come back
            if not pending:
                raise
            return None

    async def reader() -> None:
        nonlocal more, done, in_flight, reset
        try:
            while True:
                while len(pending) >= MAX_PIPES or in_flight >= MAX_IN_FLIGHT:
                    await wait_room()
                await trio.lowlevel.wait_readable(src)
                pipe = new_pipe()
                if pipe is None:
                    await wait_room()
                    continue
                want = min(PIPE_SIZE, MAX_IN_FLIGHT - in_flight)
                try:
                    n = os.splice(src_fd, pipe.w, want, flags=_FLAGS)
                except BlockingIOError:
                    free.append(pipe)
                    continue
                except OSError:
                    free.append(pipe)
                    reset = True
                    break
                if not n:
                    free.append(pipe)
                    break
                pending.append((trio.current_time() + delay, pipe, n))
                in_flight += n
                more.set()
        finally:
            done = True
            more.set()

    broken = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            while True:
                if not pending:
                    if done:
                        break
                    await more.wait()
                    more = trio.Event()
                    continue
                due, pipe, size = pending[0]
                await trio.sleep_until(due)
                if not await _splice_out(pipe, dst, size):  # dst is gone: end this direction
                    broken = True
                    nursery.cancel_scope.cancel()
                    break
                pending.popleft()
                in_flight -= size
                free.append(pipe)
                if not pending:  # the line drained: keep a few pipes, not the burst's peak
                    while len(free) > SPARE_PIPES:
                        free.pop().close()
                room.set()
        if reset and not broken:
            raise _Reset
        with contextlib.suppress(OSError):
            if broken:
                src.shutdown(socket.SHUT_RD)
            else:
                dst.shutdown(socket.SHUT_WR)
    finally:
        for _due, pipe, _n in pending:
            pipe.close()
        for pipe in free:
            pipe.close()


async def _handle(target: tuple[str, int], delay: float, client: trio.SocketStream) -> None:
    upstream: trio.SocketStream | None = None
    reset = False
    try:
        try:
            upstream = await trio.open_tcp_stream(*target)
        except OSError as e:
            # The client's connect already succeeded; a reset is the nearest thing to refused.
            _log(f"cannot reach {target[0]}:{target[1]}: {e}")
            reset = True
            return
        a, b = client.socket, upstream.socket
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, a, b, delay)
                nursery.start_soon(_pump, b, a, delay)
        except* _Reset:
            reset = True  # a peer reset: pass the reset on, as a direct connection would
        except* OSError as group:
            _log(f"connection ended: {group.exceptions[0]}")
            reset = True
    finally:
        # Shielded: under an outer cancellation the first close would re-raise Cancelled and
        # skip the second.
        with trio.CancelScope(shield=True):
            for stream in (client, upstream):
                if stream is None:
                    continue
                if reset:
                    with contextlib.suppress(OSError):
                        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                await trio.aclose_forcefully(stream)


def _raise_descriptor_limit() -> None:
    """Each direction may hold MAX_PIPES pipes of two descriptors; the usual soft limit of 1024
    would make a few busy connections wait on descriptors. Raise it as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _log(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a stderr gone loses the line, not the relay
        print(f"ccn relay: {text}", file=sys.stderr, flush=True)


async def run_relay(
    target: tuple[str, int],
    delay: float,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and relay every connection to ``target`` with ``delay`` seconds
    added one way in each direction. Reports the bound port."""
    _raise_descriptor_limit()
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    task_status.started(bound)
    await trio.serve_listeners(partial(_handle, target, delay), listeners)
