"""A TCP relay that adds a fixed one-way delay in each direction: a link emulator in user space.

This kernel has no netem, so the demo and the benchmarks put this relay on the "slow link"; ccn
traffic and any host-to-host baseline pass through the same relay and see the same link. Bytes
keep their order; what is ready is written in one ``send_all``. Trio timers are good to about a
millisecond, so use delays of 5 ms or more.
"""

from __future__ import annotations

import socket
from collections import deque
from functools import partial

import trio


async def _pump(src: trio.abc.ReceiveStream, dst: trio.abc.SendStream, delay: float) -> None:
    pending: deque[tuple[float, bytes | bytearray]] = deque()
    more = trio.Event()
    done = False

    async def reader() -> None:
        nonlocal more, done
        try:
            while True:
                chunk = await src.receive_some(1 << 20)
                if not chunk:
                    break
                pending.append((trio.current_time() + delay, chunk))
                more.set()
        finally:
            done = True
            more.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        while True:
            if not pending:
                if done:
                    break
                await more.wait()
                more = trio.Event()
                continue
            await trio.sleep_until(pending[0][0])
            now = trio.current_time()
            batch = []
            while pending and pending[0][0] <= now:
                batch.append(pending.popleft()[1])
            await dst.send_all(b"".join(batch))
    await dst.aclose()


async def _handle(target: tuple[str, int], delay: float, client: trio.SocketStream) -> None:
    upstream: trio.SocketStream | None = None
    try:
        upstream = await trio.open_tcp_stream(*target)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, client, upstream, delay)
            nursery.start_soon(_pump, upstream, client, delay)
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
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
