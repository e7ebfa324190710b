"""Fetch the latest version of a name and print how many bytes came back and their blake3 hash.

python examples/consumer.py NAME [--node URI]
"""

from __future__ import annotations

import argparse

import trio
from blake3 import blake3

import ccn


async def main(name: str, node: str | None) -> None:
    async with ccn.connect(node) as client:
        data = await client.get(name)
        print(f"{len(data)} bytes, blake3 {blake3(data).hexdigest()[:16]}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--node")
    a = p.parse_args()
    trio.run(main, a.name, a.node)
