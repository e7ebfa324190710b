from __future__ import annotations

import contextlib
import os
import socket
import struct
from typing import Any

import pytest
import trio

from ccn.relay import MAX_PIPES, run_relay


async def _relayed(nursery: trio.Nursery, handler: Any, delay: float = 0.005) -> int:
    """Serve ``handler`` on loopback behind a relay adding ``delay``; return the relay's port."""
    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    relay_port: int = await nursery.start(run_relay, ("127.0.0.1", port), delay)
    return relay_port


async def test_relay_adds_delay_each_way_and_keeps_order() -> None:
    async def echo(stream: trio.SocketStream) -> None:
        async for chunk in stream:
            await stream.send_all(chunk)

    async with trio.open_nursery() as nursery:
        relay_port = await _relayed(nursery, echo, 0.02)
        stream = await trio.open_tcp_stream("127.0.0.1", relay_port)
        t0 = trio.current_time()
        payload = bytes(range(256)) * 400
        await stream.send_all(payload)
        got = bytearray()
        with trio.fail_after(5):
            while len(got) < len(payload):
                got += await stream.receive_some()
        assert bytes(got) == payload
        assert trio.current_time() - t0 >= 0.04  # 20 ms each way, at the least
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_relay_carries_large_streams_both_ways_intact() -> None:
    size = 24 << 20
    up, down = os.urandom(size), os.urandom(size)
    received: dict[str, bytes] = {}

    async def server(stream: trio.SocketStream) -> None:
        async def send() -> None:
            await stream.send_all(down)

        async with trio.open_nursery() as n:
            n.start_soon(send)
            received["server"] = await _read_exactly(stream, size)

    async with trio.open_nursery() as nursery:
        relay_port = await _relayed(nursery, server)
        stream = await trio.open_tcp_stream("127.0.0.1", relay_port)
        with trio.fail_after(30):
            async with trio.open_nursery() as n:
                n.start_soon(stream.send_all, up)
                received["client"] = await _read_exactly(stream, size)
            while "server" not in received:
                await trio.sleep(0.01)
        assert received["server"] == up and received["client"] == down
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_relay_passes_a_half_close_and_the_answer_after_it() -> None:
    async def server(stream: trio.SocketStream) -> None:
        request = bytearray()
        async for chunk in stream:  # until the client's EOF comes through the relay
            request += chunk
        await stream.send_all(b"got " + bytes(request))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        relay_port = await _relayed(nursery, server)
        stream = await trio.open_tcp_stream("127.0.0.1", relay_port)
        with trio.fail_after(5):
            await stream.send_all(b"hello")
            await stream.send_eof()
            answer = bytearray()
            async for chunk in stream:
                answer += chunk
        assert bytes(answer) == b"got hello"
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def _read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = await stream.receive_some(1 << 20)
        assert chunk, "stream ended early"
        got += chunk
    return bytes(got)


async def test_a_reset_is_passed_on_as_a_reset() -> None:
    seen: list[str] = []

    async def server(stream: trio.SocketStream) -> None:
        try:
            async for _chunk in stream:
                pass
            seen.append("clean EOF")
        except trio.BrokenResourceError:
            seen.append("reset")

    async with trio.open_nursery() as nursery:
        port = await _relayed(nursery, server)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"hello")
        await trio.sleep(0.05)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.socket.close()
        with trio.fail_after(5):
            while not seen:
                await trio.sleep(0.01)
        assert seen == ["reset"]
        nursery.cancel_scope.cancel()


async def test_an_answer_sent_before_the_server_closes_still_arrives() -> None:
    # The server answers and closes while the client is still sending: the client's next bytes
    # meet a closed socket, but the answer already on its way must not be thrown away.
    async def server(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.send_all(b"ANSWER")
        stream.socket.close()

    async with trio.open_nursery() as nursery:
        port = await _relayed(nursery, server)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        got = bytearray()

        async def keep_sending() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                for _ in range(300):
                    await stream.send_all(b"x" * 100)
                    await trio.sleep(0.001)

        with trio.fail_after(5):
            async with trio.open_nursery() as inner:
                inner.start_soon(keep_sending)
                with contextlib.suppress(trio.BrokenResourceError):
                    async for chunk in stream:
                        got += chunk
                inner.cancel_scope.cancel()
        await stream.aclose()
        assert bytes(got) == b"ANSWER"
        nursery.cancel_scope.cancel()


async def test_a_refused_upstream_resets_the_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens there once this closes
    async with trio.open_nursery() as nursery:
        relay_port = await nursery.start(run_relay, ("127.0.0.1", closed_port), 0.005)
        async with await trio.open_tcp_stream("127.0.0.1", relay_port) as stream:
            with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
                await stream.receive_some()
        nursery.cancel_scope.cancel()


async def test_the_delay_line_is_bounded_when_the_receiver_stops_reading() -> None:
    # A receiver that never reads: the relay stops reading at MAX_IN_FLIGHT bytes or MAX_PIPES
    # pipes per direction, whichever comes first, so its descriptors stay bounded.
    stalled = trio.Event()

    async def server(stream: trio.SocketStream) -> None:
        await stalled.wait()

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    async with trio.open_nursery() as nursery:
        port = await _relayed(nursery, server)
        before = descriptors()
        stream = await trio.open_tcp_stream("127.0.0.1", port)

        async def flood() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                block = b"y" * (1 << 20)
                for _ in range(256):
                    await stream.send_all(block)

        nursery.start_soon(flood)
        await trio.sleep(1.0)
        assert descriptors() - before <= 2 * (MAX_PIPES + 1) + 8
        stalled.set()
        await stream.aclose()
        nursery.cancel_scope.cancel()
