from __future__ import annotations

import os

import trio

from ccn.relay import run_relay


async def test_relay_adds_delay_each_way_and_keeps_order() -> None:
    async def echo(stream: trio.SocketStream) -> None:
        async for chunk in stream:
            await stream.send_all(chunk)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, echo, 0)
        port = listeners[0].socket.getsockname()[1]
        relay_port = await nursery.start(run_relay, ("127.0.0.1", port), 0.02)
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
        listeners = await nursery.start(trio.serve_tcp, server, 0)
        port = listeners[0].socket.getsockname()[1]
        relay_port = await nursery.start(run_relay, ("127.0.0.1", port), 0.005)
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
        listeners = await nursery.start(trio.serve_tcp, server, 0)
        port = listeners[0].socket.getsockname()[1]
        relay_port = await nursery.start(run_relay, ("127.0.0.1", port), 0.005)
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
