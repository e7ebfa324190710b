"""Two nodes in one script: publish on one, fetch through the other, see the cache answer.

python examples/two_nodes.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

import ccn
from ccn.testing import node_in_process


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "hello.txt").write_text("hello, named data\n")
        async with node_in_process(work, "producer", tcp=True) as (producer, producer_uri):
            route = (ccn.Name.parse("/hello"), str(producer.bound[1]))
            async with node_in_process(work, "consumer", routes=[route]) as (_c, consumer_uri):
                async with ccn.connect(producer_uri) as p:
                    name = await p.put(work / "hello.txt", "/hello/file")
                async with ccn.connect(consumer_uri) as c:
                    first = await c.get(name)
                    await c.get(name)
                    status = await c.status()
                print(f"fetched {name}: {first.decode().strip()!r}")
                print(f"consumer cache hits after the second fetch: {status['cs']['hits']}")


if __name__ == "__main__":
    trio.run(main)
