"""Publish a file on a node and print its versioned name.

python examples/producer.py PATH NAME [--node URI]
"""

from __future__ import annotations

import argparse

import trio

import ccn


async def main(path: str, name: str, node: str | None) -> None:
    async with ccn.connect(node) as client:
        versioned = await client.put(path, name)
        print(versioned)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("name")
    p.add_argument("--node")
    a = p.parse_args()
    trio.run(main, a.path, a.name, a.node)
