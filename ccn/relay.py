"""A TCP relay that adds a fixed one-way delay in each direction: a link emulator in user space.

This kernel has no netem, so the demo and the benchmarks put this relay on the "slow link"; ccn
traffic and any host-to-host baseline pass through the same relay and see the same link. Bytes
keep their order. Trio timers are good to about a millisecond, so use delays of 5 ms or more.

A link should cost the hosts nothing, so the bytes never enter this process: each read is
``splice``d from the socket into a pipe, which holds it for the delay, and then from the pipe
into the other socket (zero copy; a stream through the relay on loopback went from about
430 MB/s with reads and writes to the gigabytes per second of the kernel). At most
:data:`MAX_PIPES` pipes are in flight per direction; past that the relay stops reading and TCP
flow control holds the sender back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections import deque
from functools import partial

import trio

#: Bytes one pipe holds (the most an unprivileged process may ask for by default).
PIPE_SIZE = 1 << 20
#: Pipes in flight per direction: the delay line holds at most this many reads (at 1 GB/s and
#: 20 ms of delay, about 20 pipes of 1 MiB are in flight).
MAX_PIPES = 128

_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


class _Pipe:
    __slots__ = ("r", "w")

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # the default size (64 KiB) will do
            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


async def _pump(src: trio.socket.SocketType, dst: trio.socket.SocketType, delay: float) -> None:
    """Move bytes from ``src`` to ``dst``, each read held back ``delay`` seconds; shut down the
    writing side of ``dst`` when ``src`` ends."""
    free: list[_Pipe] = []
    pending: deque[tuple[float, _Pipe, int]] = deque()
    more = trio.Event()
    room = trio.Event()
    done = False
    src_fd, dst_fd = src.fileno(), dst.fileno()

    async def reader() -> None:
        nonlocal more, room, done
        try:
            while True:
                while len(pending) >= MAX_PIPES:
                    await room.wait()
                    room = trio.Event()
                await trio.lowlevel.wait_readable(src)
                pipe = free.pop() if free else _Pipe()
                try:
                    n = os.splice(src_fd, pipe.w, PIPE_SIZE, flags=_FLAGS)
                except BlockingIOError:
                    free.append(pipe)
                    continue
                except OSError:
                    free.append(pipe)
                    break
                if not n:
                    free.append(pipe)
                    break
                pending.append((trio.current_time() + delay, pipe, n))
                more.set()
        finally:
            done = True
            more.set()

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
                due, pipe, left = pending[0]
                await trio.sleep_until(due)
                while left:
                    try:
                        left -= os.splice(pipe.r, dst_fd, left, flags=_FLAGS)
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(dst)
                pending.popleft()
                free.append(pipe)
                room.set()
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    finally:
        for _due, pipe, _n in pending:
            pipe.close()
        for pipe in free:
            pipe.close()


async def _handle(target: tuple[str, int], delay: float, client: trio.SocketStream) -> None:
    upstream: trio.SocketStream | None = None
    try:
        upstream = await trio.open_tcp_stream(*target)
        a, b = client.socket, upstream.socket
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, a, b, delay)
            nursery.start_soon(_pump, b, a, delay)
    except* OSError:
        pass
    finally:
        # Shielded: under an outer cancellation the first close would re-raise Cancelled and
        # skip the second.
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(client)
            if upstream is not None:
                await trio.aclose_forcefully(upstream)


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
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    task_status.started(bound)
    await trio.serve_listeners(partial(_handle, target, delay), listeners)
