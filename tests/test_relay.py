from __future__ import annotations

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
