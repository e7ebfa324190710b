"""Unmodified python-ndn applications, one per subcommand, for the interop scenarios.

Each connects to the forwarder named by ``NDN_CLIENT_TRANSPORT`` (e.g.
``tcp4://127.0.0.1:6363``) exactly as it would to NFD, prints one JSON line with its result on
stdout and exits 0 (consumers) or serves until killed (producers, after printing
``{"ready": ...}``). asyncio-based: run it in its own process.

    python interop/ndn_apps.py legacy-get /name            # ndn.app.NDNApp express_interest
    python interop/ndn_apps.py v2-get /name                # ndn.appv2.NDNApp express
    python interop/ndn_apps.py segfetch /name OUT          # segment_fetcher into OUT
    python interop/ndn_apps.py legacy-serve /prefix TEXT SIZE
    python interop/ndn_apps.py v2-serve /prefix TEXT SIZE  # segmented producers of SIZE bytes
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

import ndn.appv2 as appv2
from ndn.app import NDNApp
from ndn.app_support.segment_fetcher import segment_fetcher
from ndn.encoding import Component, Name
from ndn.security import DigestSha256Signer, KeychainDigest
from ndn.types import InterestNack, InterestTimeout, ValidationFailure

SEGMENT = 4000
FRESHNESS_MS = 10_000
VERSION = 7


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def content_of(text: str, size: int) -> bytes:
    """Deterministic content: ``text`` repeated to ``size`` bytes (the test recomputes it)."""
    unit = text.encode()
    return (unit * (size // len(unit) + 1))[:size]


def segment_reply(prefix: list[bytes], name: list[bytes], content: bytes) -> tuple[Any, bytes, int]:
    """The Data name, content and final segment for an Interest ``name`` under ``prefix``."""
    last = max(0, (len(content) - 1) // SEGMENT)
    seg = 0
    if len(name) > len(prefix) and Component.get_type(name[-1]) == Component.TYPE_SEGMENT:
        seg = Component.to_number(name[-1])
    data_name = [*prefix, Component.from_version(VERSION), Component.from_segment(seg)]
    return data_name, content[seg * SEGMENT : (seg + 1) * SEGMENT], last


def legacy_get(name: str) -> None:
    app = NDNApp(keychain=KeychainDigest())

    async def main() -> None:
        start = time.monotonic()
        try:
            got, _meta, content = await app.express_interest(
                name, must_be_fresh=True, can_be_prefix=True, lifetime=4000
            )
            say(name=Name.to_str(got), content=bytes(content or b"").hex())
        except InterestNack as e:
            say(nack=e.reason, elapsed=time.monotonic() - start)
        except (InterestTimeout, ValidationFailure) as e:
            say(error=type(e).__name__, elapsed=time.monotonic() - start)
        finally:
            app.shutdown()

    app.run_forever(after_start=main())


def v2_get(name: str) -> None:
    app = appv2.NDNApp()

    async def main() -> None:
        start = time.monotonic()
        try:
            got, content, _ctx = await app.express(
                name,
                validator=appv2.pass_all,
                must_be_fresh=True,
                can_be_prefix=True,
                lifetime=4000,
            )
            say(name=Name.to_str(got), content=bytes(content or b"").hex())
        except InterestNack as e:
            say(nack=e.reason, elapsed=time.monotonic() - start)
        except (InterestTimeout, ValidationFailure) as e:
            say(error=type(e).__name__, elapsed=time.monotonic() - start)
        finally:
            app.shutdown()

    app.run_forever(after_start=main())


def segfetch(name: str, out: str) -> None:
    app = NDNApp(keychain=KeychainDigest())

    async def main() -> None:
        digest = hashlib.sha256()
        size = 0
        try:
            with open(out, "wb") as fh:
                async for chunk in segment_fetcher(app, name):
                    fh.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            say(size=size, sha256=digest.hexdigest())
        except (InterestNack, InterestTimeout, ValidationFailure) as e:
            say(error=type(e).__name__)
        finally:
            app.shutdown()

    app.run_forever(after_start=main())


def legacy_serve(prefix: str, text: str, size: int) -> None:
    app = NDNApp(keychain=KeychainDigest())
    content = content_of(text, size)
    base = Name.normalize(prefix)

    def on_interest(name: Any, _param: Any, _app_param: Any) -> None:
        data_name, part, last = segment_reply(base, name, content)
        app.put_data(
            data_name,
            part,
            freshness_period=FRESHNESS_MS,
            final_block_id=Component.from_segment(last),
        )

    async def main() -> None:
        ok = await app.register(base, on_interest)
        say(ready=ok)

    app.run_forever(after_start=main())


def v2_serve(prefix: str, text: str, size: int) -> None:
    app = appv2.NDNApp()
    content = content_of(text, size)
    base = Name.normalize(prefix)
    signer = DigestSha256Signer()

    def on_interest(name: Any, _app_param: Any, reply: Any, _context: Any) -> None:
        data_name, part, last = segment_reply(base, name, content)
        reply(
            app.make_data(
                data_name,
                part,
                signer,
                freshness_period=FRESHNESS_MS,
                final_block_id=Component.from_segment(last),
            )
        )

    app.attach_handler(base, on_interest)

    async def main() -> None:
        ok = await app.register(base)
        say(ready=ok)

    app.run_forever(after_start=main())


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "legacy-get":
        legacy_get(args[0])
    elif cmd == "v2-get":
        v2_get(args[0])
    elif cmd == "segfetch":
        segfetch(args[0], args[1])
    elif cmd == "legacy-serve":
        legacy_serve(args[0], args[1], int(args[2]))
    elif cmd == "v2-serve":
        v2_serve(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
