"""The ``ccn`` command line. Every user mistake is one line on stderr and a non-zero exit.

Exit codes: 0 success, 1 a ccn error (no node, no route, not found, verification failed, bad
name...), 2 bad usage (one line, naming the --help to read), 130 interrupted, 143 terminated
(SIGTERM; like Ctrl-C, the command cleans up first), 141 (quietly, as
a program ended by SIGPIPE) the reader of stdout went away (``ccn get NAME -o - | head``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from ccn.defaults import ccn_home, default_listen, default_socket, default_store
from ccn.errors import CcnError, LocalError, Refused, VerificationError, os_error_text
from ccn.name import Name

# trio, the client, the node, the store, keys (cryptography) and the NDN layer are imported by
# the commands that use them, not here: every ccn command pays for what this module loads.
# trio and the client are most of the start-up of a command that talks to a node, and --help,
# a usage mistake, key and trust need neither. tests/test_cli.py checks what each path loads.
if TYPE_CHECKING:
    import trio

    from ccn.client import Client
    from ccn.keys import PublicKey
    from ccn.trust import Anchors

# -- output helpers --------------------------------------------------------------------------


def _named(text: str) -> str:
    """A name the node sent as text, for a person: NDN URI form if it holds NDN typed
    components (a prefix an NDN app registered), else as it came (see ccn.ndn.names.shown)."""
    if "~" not in text:  # every typed component starts with it: the node's text it is
        return text
    from ccn.ndn.names import shown

    try:
        return shown(Name.parse(text))
    except CcnError:
        return text


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


class ProgressBar:
    """Bytes, rate and ETA on one self-overwriting stderr line, at most 10 times a second."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        pct = 100 * done / total if total else 100.0
        sys.stderr.write(
            f"\r{pct:5.1f}%  {_human(done)} / {_human(total)}  {_human(rate)}/s  ETA {eta:4.0f}s "
        )
        sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")


# -- commands --------------------------------------------------------------------------------


class _Terminated(BaseException):
    """SIGTERM arrived: the command stops through its cleanup (exit 143)."""


async def _on_signals(*, task_status: trio.TaskStatus[None]) -> None:
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for sig in signals:
            if sig == signal.SIGINT:
                raise KeyboardInterrupt
            raise _Terminated


async def _stopped_by_signals(work: Callable[[], Awaitable[int]]) -> int:
    """Run ``work``; Ctrl-C and SIGTERM (kill, timeout, a service manager) end it through its
    cleanup: a fetch removes its partial output, the demo its node processes, instead of dying
    with them left behind. Both arrive here, in a task of their own, rather than as an
    exception wherever the program happens to be (which could leave a task made and never
    started). Only the main thread may handle signals (tests call main() from others)."""
    import trio

    async with trio.open_nursery() as nursery:
        if threading.current_thread() is threading.main_thread():
            await nursery.start(_on_signals)
        code = await work()
        nursery.cancel_scope.cancel()
        return code


def _on_node(args: argparse.Namespace, body: Callable[[Client], Awaitable[int]]) -> int:
    """Run ``body`` with a client of the node ``--node`` names, until it ends or a signal
    stops it."""
    import trio

    return trio.run(_with_client, args, body)


async def _with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[int]]) -> int:
    from ccn.client import connect

    if args.node == "":
        raise LocalError("--node needs an address: tcp://HOST:PORT or unix:///PATH")

    async def work() -> int:
        async with connect(args.node) as client:
            try:
                return await body(client)
            finally:
                for note in client.notes:
                    print(f"ccn: note: {note}", file=sys.stderr)

    return await _stopped_by_signals(work)


def _sendable(path: str) -> None:
    """Paths travel to the node as text: refuse one that is not valid UTF-8."""
    full = str(Path(path).resolve())
    try:
        full.encode()
    except UnicodeEncodeError:
        shown = os.fsencode(full).decode(errors="backslashreplace")
        raise LocalError(f"{shown}: the path is not UTF-8 (paths go to the node as text)") from None


def cmd_put(args: argparse.Namespace) -> int:
    if not args.path:
        raise LocalError("give the path of a file or directory to publish")
    path = Path(args.path)
    try:
        path.stat()
    except OSError as e:  # missing, a loop of symbolic links, a directory we may not enter
        raise LocalError(f"{args.path}: {(e.strerror or str(e)).lower()}") from None
    if not (path.is_file() or path.is_dir()):
        # the node would block on a fifo, read a device forever, fail on a socket
        raise LocalError(f"{args.path}: not a regular file or directory")
    _sendable(args.path)
    name = Name.parse(args.name)

    key = None
    if args.key is not None:
        from ccn.keys import key_path, load_key

        load_key(args.key)  # fail here, with one line, if the key is missing or unreadable
        key = args.key if os.sep in args.key else str(key_path(args.key))
        _sendable(key)

    async def body(client: Client) -> int:
        reply = await client.publish(path, name, key=key)
        print(f"{reply['name']} {reply['id']}")
        return 0

    return _on_node(args, body)


def cmd_get(args: argparse.Namespace) -> int:
    from ccn.client import output_path
    from ccn.fetch import fetch_to_stream, fetch_version
    from ccn.ndn.names import is_typed, ndn_uri, shown

    name = Name.parse(args.name)
    out = args.output
    if out is None:
        unversioned = name.unversioned()
        if not len(unversioned):
            raise LocalError("give -o OUT for the root name")
        last = unversioned[-1]
        if b"/" in last or b"\0" in last or last in (b".", b"..") or is_typed(last):
            raise LocalError(
                f"{shown(name)}: the last component is not a plain file name; give -o OUT"
            )
        out = os.fsdecode(last)
    if out == "":
        raise LocalError("-o needs a path ('-' for stdout)")
    stdout: BinaryIO | None = None
    if out != "-":
        _check_output(Path(out))
    elif sys.stdout is None:  # started with stdout closed (ccn get -o - >&-)
        raise LocalError("stdout is closed; give -o OUT, or open it (-o - > FILE)")
    else:
        stdout = sys.stdout.buffer

    from ccn.trust import Anchors, UntrustedVersion

    anchors = Anchors.load()

    async def body(client: Client) -> int:
        client.trust = anchors
        # An NDN producer answers /n/v=N only with longer names (/n/v=N/seg=0), never the exact
        # Interest a ccn version is asked for by: a version written the NDN way (v=N) is asked
        # the NDN way first. Written vN it is not: that would cost every ccn fetch of a version
        # a round trip more, and one with no answer the probe's timeout more.
        ndn_spelled = any(part.startswith("v=") for part in args.name.split("/"))
        if ndn_spelled and name.version is not None:
            from ccn.ndngw import is_ndn_content  # the NDN gateway: loaded for NDN names only

            if await is_ndn_content(client, name) and await ndn_body(client):
                return 0
        try:
            return await ccn_body(client)
        except (UntrustedVersion, Refused):
            raise
        except VerificationError:
            # Not a ccn version: it may be NDN content (e.g. from an NDN producer), segmented.
            if await ndn_body(client):
                return 0
            raise

    async def ndn_body(client: Client) -> bool:
        anchor = anchors.covering(name)
        if anchor is not None:  # whose signatures ccn does not check: not under an anchor
            raise UntrustedVersion(
                f"{ndn_uri(name)} is not a ccn version signed for {anchor[0]}, which the "
                "trust file anchors (NDN content is not accepted there: ccn does not verify "
                "NDN signatures)"
            ) from None
        from ccn.ndngw import get_ndn

        if not await get_ndn(client, name, out):
            return False
        print(
            f"ccn: note: {ndn_uri(name)} is NDN content: its publisher is not verified "
            "(ccn checks DigestSha256 signatures only)",
            file=sys.stderr,
        )
        return True

    async def ccn_body(client: Client) -> int:
        if stdout is not None:
            versioned = await fetch_to_stream(client, name, _Interruptible(stdout))
        else:
            bar = ProgressBar() if sys.stderr.isatty() else None
            into = out.endswith(("/", os.sep))
            dest = Path(out) if into else output_path(Path(out))
            versioned, _v, _stats = await fetch_version(
                client, name, dest, progress=bar, into_directory=into
            )
            if bar is not None:
                bar.finish()
                print(f"{versioned} -> {out}", file=sys.stderr)
        if anchors.covering(versioned) is None:
            print(
                f"ccn: note: publisher of {versioned} not verified here (no trust anchor in "
                "your trust file covers it; a node on the way with trust anchors of its own "
                "checks them itself); content checked against its hashes",
                file=sys.stderr,
            )
        return 0

    return _on_node(args, body)


class _Interruptible:
    """Stdout for a fetch, whose writes Ctrl-C and SIGTERM interrupt. trio handles both by a
    task of its own (:func:`_stopped_by_signals`), which cannot run while a write blocks on a
    pipe whose reader has stopped reading (``ccn get -o - | less``, paused): the signal's
    handler would only queue it, and the write be resumed. While writing, the handlers raise
    at once instead (``KeyboardInterrupt``, :class:`_Terminated`); the fetch stops through its
    cleanup as it does for a signal at any other moment."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.main = threading.current_thread() is threading.main_thread()

    def write(self, data: bytes | memoryview) -> int:
        if not self.main:
            return self.out.write(data)
        before = signal.signal(signal.SIGINT, _raise_interrupted)
        also = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return self.out.write(data)
        finally:
            signal.signal(signal.SIGINT, before)
            signal.signal(signal.SIGTERM, also)

    def flush(self) -> None:
        self.out.flush()


def _raise_interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise _Terminated


def _check_output(dest: Path) -> None:
    """Refuse, before fetching, an output path that cannot be written or must not be replaced."""
    if not dest.name:  # ".", "/": an existing directory
        raise LocalError(f"{dest} is a directory; give a new path to write to")
    parent = dest.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise LocalError(f"cannot write {dest}: {parent} {why}")
    if dest.exists() and not (dest.is_file() or dest.is_dir()):
        # a device or fifo would be replaced by a regular file (as root: /dev/null!)
        raise LocalError(f"{dest} is not a regular file; write to it with -o - > {dest}")


def cmd_key(args: argparse.Namespace) -> int:
    from ccn.keys import generate_key, key_path, list_keys, load_key, short_id

    if args.action == "gen":
        key = generate_key(args.name)
        print(f"{key.public}")
        print(f"key {args.name}: private key {key_path(args.name)} (0600), id {key.id.hex()}")
        print(f"trust it with: ccn trust add /PREFIX {key.public}", file=sys.stderr)
    elif args.action == "show":
        print(load_key(args.name).public)
    else:
        keys, errors = list_keys()
        for name, public in keys:
            print(f"{name}  {public}  id {short_id(public.id)}")
        for error in errors:
            print(f"ccn: error: {error}", file=sys.stderr)
        return 1 if errors else 0
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    from ccn.keys import short_id
    from ccn.trust import Anchors, editing

    if args.action == "list":
        for prefix, key in Anchors.load():
            print(f"{prefix}  {key}  id {short_id(key.id)}")
        return 0
    with editing():
        return _edit_trust(args, Anchors.load())


def _edit_trust(args: argparse.Namespace, anchors: Anchors) -> int:
    """``trust add`` / ``trust remove`` on ``anchors`` (the file's, its lock held)."""
    from ccn.keys import PublicKey, short_id
    from ccn.trust import TrustFileError, default_trust_file

    prefix = Name.parse(args.prefix)
    if args.action == "add":
        key = PublicKey.parse(args.key)
        if not anchors.add(prefix, key):
            print(f"{prefix} already trusts {key}")
            return 0
        anchors.save()
        print(f"trusting {key} (id {short_id(key.id)}) for {prefix} ({default_trust_file()})")
        return 0
    which = PublicKey.parse(args.key) if args.key else None
    if not anchors.remove(prefix, which):
        raise TrustFileError(f"no trust anchor for {prefix}" + (f" with {which}" if which else ""))
    anchors.save()
    print(f"removed trust anchor(s) for {prefix}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    prefix = Name.parse(args.prefix)

    async def body(client: Client) -> int:
        async for names in client.list_pages(prefix):
            lines = []
            for entry in names:
                versions = " ".join(f"v{v}" for v in entry["versions"])
                earlier = entry.get("versions_total", 0) - len(entry["versions"])
                if earlier > 0:
                    versions = f"({earlier:,} earlier; ccn log lists them) {versions}"
                if "error" in entry:
                    versions = f"(its versions cannot be read: {entry['error']}; see ccn fsck)"
                lines.append(f"{_named(entry['name'])}  {versions}")
            if lines:  # a page at a time, as route list prints
                print("\n".join(lines))
        return 0

    return _on_node(args, body)


def _show(args: argparse.Namespace, value: Any, as_text: Callable[[Any], None]) -> int:
    """Print ``value`` as JSON (``--json``) or as text."""
    if args.json:
        print(json.dumps(value, indent=2, sort_keys=True))
    else:
        as_text(value)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        return _show(args, await client.status(), _print_status)

    return _on_node(args, body)


def cmd_face(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        return _show(args, await client.faces(), _print_faces)

    return _on_node(args, body)


def _print_faces(faces: list[dict[str, Any]]) -> None:
    for f in faces:
        print(_face_text(f))


def _face_text(f: dict[str, Any]) -> str:
    unreachable = f.get("unreachable")  # UDP: ICMP errors for what was sent to the peer
    # UDP: requests for lost fragments this face sent its peer, and fragments it sent again
    asked = f.get("reassembly", {}).get("asked", 0)
    resent = f.get("resend", {}).get("resent", 0)
    return (
        f"{f['id']:>4} {f['remote']:<36} in {f['in_interests']}i/{f['in_data']}d/"
        f"{f['in_nacks']}n out {f['out_interests']}i/{f['out_data']}d/{f['out_nacks']}n "
        f"dropped {f['dropped']}"
        + (f" unreachable {unreachable} ({f['unreachable_error']})" if unreachable else "")
        + (f" fragments asked {asked} resent {resent}" if asked or resent else "")
        + _size_text(f.get("size_fallback"))
    )


def _size_text(fallback: list[int] | None) -> str:
    """A UDP face that fell back to smaller datagrams (its peer did not receive the path's)."""
    if not fallback:
        return ""
    before, after = fallback
    return f" datagrams {after} bytes ({before} did not reach the peer)"


def _down_text(d: dict[str, Any]) -> str:
    """A configured route whose neighbour is not connected (so not in the FIB)."""
    why = f": {d['error']}" if d["error"] else ""
    return f"{d['uri']} is down, retrying{why}"


def _trouble(cache: dict[str, Any]) -> str:
    """What went wrong with the cache tier's files, if anything did (a full or read-only disk
    costs only what would have been cached, so the node goes on; this is where it shows)."""
    errors = cache.get("write_errors", 0) + cache.get("versions_write_errors", 0)
    parts = [f"{errors} write errors"] if errors else []
    if cache.get("corrupt"):
        parts.append(f"{cache['corrupt']} corrupt objects dropped")
    return f"; {', '.join(parts)}" if parts else ""


def _packs(s: dict[str, Any]) -> str:
    """The store's files and what the node's automatic merge of small packs did (nothing
    from a node older than that)."""
    store = s["store"]
    auto = store.get("auto_merge")
    if auto is None:
        return ""
    text = (
        f" in {_count(store['packs'], 'pack')} and {_count(store['loose'], 'loose object')}; "
        "automatic merge "
    )
    if not auto["at"]:
        return text + "off"
    if auto["running"]:
        text += "running now"
    elif auto["last_time"] is None:
        text += "not run yet"
    else:
        ago = max(0.0, time.time() - auto["last_time"])
        text += (
            f"{ago:.0f} s ago: {_count(auto['packs_merged'], 'pack')} and "
            f"{_count(auto['loose_merged'], 'loose object')} into {auto['packs_written']}"
        )
    text += f" (at more than {auto['at']} older than {auto['age']} s)"
    if auto["error"]:
        text += f"; last one failed: {auto['error']}"
    return text


#: Routes (and routes down) the text of ``ccn status`` shows; ``--json`` has what the node sent.
STATUS_SHOWN_ROUTES = 20


def _print_status(s: dict[str, Any]) -> None:
    cs = s["cs"]
    lookups = cs["hits"] + cs["misses"]
    ratio = f"{100 * cs['hits'] / lookups:.1f}%" if lookups else "n/a"
    print(f"listening: {', '.join(s.get('listen', []))}")
    if s.get("ndn"):
        print(f"listening for NDN apps: {', '.join(s['ndn'])}")
    print(f"store: {s['store']['objects']} objects, {_human(s['store']['bytes'])}" + _packs(s))
    if "cache" in s:
        c = s["cache"]
        print(
            f"cache tier: {c['objects']} objects, {_human(c['bytes'])} of "
            f"{_human(c['max_bytes'])}, hits {c['hits']}, evictions {c['evictions']}, "
            f"dropped {c['dropped']}, versions of others seen {c.get('versions', 0)}" + _trouble(c)
        )
    print(
        f"content store: {cs['entries']} entries, {_human(cs['bytes'])}, "
        f"hits {cs['hits']}, misses {cs['misses']} (hit ratio {ratio})"
    )
    print(f"pit: {s['pit']['entries']} entries")
    p = s["producer"]
    print(f"producer: {p['interests']} interests, {p['data']} data")
    print("faces:")
    for f in s["faces"]:
        print(f"  {_face_text(f)}")
    _print_discovery(s.get("discovery"))
    # The first routes only: a node routes each name it publishes (tens of thousands, say),
    # and a person reading status wants its faces and counters; route list has them all.
    fib = s["fib"][:STATUS_SHOWN_ROUTES]
    down = s.get("down_routes", [])[:STATUS_SHOWN_ROUTES]
    print(f"routes: {s.get('fib_total', len(s['fib'])):,}")
    for e in fib:
        print(f"  {_route_text(e)}")
    more = s.get("fib_total", len(s["fib"])) - len(fib)
    if more > 0:
        print(f"  ... and {more:,} more (ccn route list)")
    for d in down:
        print(f"  {_named(d['prefix'])}  {_down_text(d)}")
    more = len(s.get("down_routes", [])) - len(down)
    if more > 0:
        print(f"  ... and {more:,} more down (ccn route list)")
    if "drops" in s:
        print("drops: " + ", ".join(f"{k} {v}" for k, v in s["drops"].items()))
    if "limits" in s:
        lim = s["limits"]
        print("limits (docs/limits.md):")
        print(
            f"  packet {_human(lim['max_packet'])}, frame {_human(lim['max_frame'])}, "
            f"reassembly/face {_human(lim['reassembly_per_face'])}, "
            f"send queue/face {lim['send_queue_packets']} packets "
            f"{_human(lim['send_queue_bytes'])}"
        )
        print(
            f"  faces {lim['faces']}/{lim['max_faces']}, pit {s['pit']['entries']}/"
            f"{lim['pit_max_entries']} ({lim['pit_max_per_face']} per face), "
            f"cs {_human(lim['cs_bytes'])} / {lim['cs_max_entries']} entries, "
            f"cache tier {_human(lim['cache_bytes'])} / {lim.get('cache_max_entries', '?')} "
            f"entries, trust anchors {lim['trust_anchors']}"
        )


def cmd_log(args: argparse.Namespace) -> int:
    name = Name.parse(args.name)
    if not len(name):
        raise LocalError("give a published name: / itself has no versions")

    async def body(client: Client) -> int:
        versions, total = await client.history(name)
        if total > len(versions):
            print(f"({total - len(versions):,} earlier versions; ccn log NAME/vN shows one)")
        signers = _signers() if any(v.get("publisher") for v in versions) else {}
        versioned = name.unversioned()
        for v in versions:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v["time_ns"] / 1e9))
            pin = "  pinned" if v.get("pinned") else ""
            if "error" in v:  # the ref names it, its record cannot be read: say so, last
                print(f"v{v['number']}  {when}Z  {v['id']}{pin}  (record unreadable: {v['error']})")
                continue
            size = f"{v['size']} bytes" if "size" in v else "?"
            prev = v.get("previous") or "-"
            signed = ""
            if "publisher" in v:  # a record that could be read
                key = signers.get(v["publisher"])
                good = None
                if key is not None:  # one of this user's keys: check that it signed it
                    good = await _signature_good(
                        client, versioned.with_version(v["number"]), v, key[1]
                    )
                signed = "  " + _signed_by(v["publisher"], signers, good)
            print(f"v{v['number']}  {when}Z  {size}  {v['id']}{signed}  previous {prev}{pin}")
        return 0

    return _on_node(args, body)


def _signers() -> dict[str, tuple[str, PublicKey]]:
    """Key id (hex) -> (name, key), for this user's keys (``ccn key list``); unreadable ones
    are left out (``ccn key list`` reports them)."""
    from ccn.keys import list_keys

    try:
        keys, _errors = list_keys()
    except OSError:
        return {}
    return {public.id.hex(): (name, public) for name, public in keys}


async def _signature_good(
    client: Client, versioned: Name, row: dict[str, Any], key: PublicKey
) -> bool | None:
    """Whether the record of ``versioned`` (the ``ccn log`` row ``row``) carries a good
    signature by ``key``: the log only says which key a record names. None: the record could
    not be had to check."""
    from ccn.client import new_nonce
    from ccn.packet import Interest
    from ccn.store.objects import Version, decode, object_id

    try:
        data = await client.express(Interest(versioned, new_nonce()), retries=0)
        if object_id(data.content).hex() != row["id"]:
            return None
        version = decode(data.content)
    except CcnError:
        return None
    return type(version) is Version and key.verify(version)


def _signed_by(
    publisher: object, signers: dict[str, tuple[str, PublicKey]], good: bool | None = None
) -> str:
    """``ccn log``'s signer column: who signed a version, as far as this user's keys tell
    (``good``: whether its signature was checked against one of them, and held)."""
    from ccn.keys import short_id

    if not isinstance(publisher, str):
        return "unsigned"
    try:
        shown_id = short_id(bytes.fromhex(publisher))
    except ValueError:
        return "signed by key ?"
    mine = signers.get(publisher)
    if mine is None:
        return f"signed by key {shown_id}"
    if good is False:
        return f"BAD SIGNATURE (names {mine[0]}'s key {shown_id}: forged or altered)"
    checked = "" if good else ", not checked"
    return f"signed by {mine[0]} (key {shown_id}{checked})"


def cmd_pin(args: argparse.Namespace) -> int:
    from ccn.trust import Anchors

    name = Name.parse(args.name)
    # A version published elsewhere is fetched to be pinned: the trust file decides as for get.
    anchors = Anchors.load() if args.command == "pin" else None

    async def body(client: Client) -> int:
        if args.command == "pin":
            client.trust = anchors
            print(f"pinned {await client.pin(name)}")
        else:
            n = await client.unpin(name)
            print(f"unpinned {name}" + (f" ({n} pins)" if n > 1 else ""))
        return 0

    return _on_node(args, body)


def cmd_pins(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        for p in await client.pins():
            which = "latest" if p["number"] is None else f"v{p['number']}"
            where = "" if p["id"] is None else f"  {p['id']} (fetched from elsewhere)"
            print(f"{_named(p['name'])}  {which}{where}")
        return 0

    return _on_node(args, body)


def _count(n: int, thing: str) -> str:
    """``1 pack``, ``2 packs``."""
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _merged(r: dict[str, Any], dry_run: bool) -> str:
    """What gc's reply says it merged (or would), or "" if nothing (or an older node)."""
    packs, loose = r.get("packs_merged", 0), r.get("loose_merged", 0)
    if not packs and not loose:
        return ""
    what = [_count(packs, "pack")] if packs else []
    if loose:
        what.append(_count(loose, "loose object"))
    size = f" ({_human(r['merge_bytes'])})" if "merge_bytes" in r else ""
    return (
        f"; {'would merge' if dry_run else 'merged'} {' and '.join(what)}{size} "
        f"into {r['packs_written']}"
    )


def cmd_gc(args: argparse.Namespace) -> int:
    if args.grace is not None and not args.grace >= 0:  # also refuses nan
        raise LocalError("--grace must be a number of seconds >= 0")

    async def body(client: Client) -> int:
        r = await client.gc(dry_run=args.dry_run, grace=args.grace)
        verb = "would remove" if args.dry_run else "removed"
        if args.dry_run or args.verbose:  # a real run says what it did in one line
            for oid, size in r["removed"]:
                print(f"{verb} {oid} {size}")
            if r["count"] > len(r["removed"]):
                print(f"... and {r['count'] - len(r['removed'])} more")
        for w in r["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        print(
            f"gc: {verb} {r['count']} objects, {_human(r['bytes'])}; {r['live']} live, "
            f"{r['young']} unreachable but younger than the grace period" + _merged(r, args.dry_run)
        )
        return 0

    return _on_node(args, body)


def cmd_fsck(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        r = await client.fsck(repair=args.repair)
        for line in r["problems"]:
            print(line)
        if r["count"] > len(r["problems"]):
            print(f"... and {r['count'] - len(r['problems'])} more problems")
        c = r["checked"]
        print(
            f"fsck: {c['objects']} objects, {c['versions']} versions, {c['cache_objects']} cached "
            f"objects checked; {r['count']} problem{'' if r['count'] == 1 else 's'}, "
            f"{r['unrepaired']} not repaired",
            file=sys.stderr,
        )
        return 1 if r["unrepaired"] else 0

    return _on_node(args, body)


def _route_text(entry: dict[str, Any]) -> str:
    """One FIB entry as ``ccn status`` and ``ccn route list`` show it."""
    return f"{_named(entry['prefix'])}  " + ", ".join(_hop_text(h) for h in entry["nexthops"])


def _hop_text(hop: dict[str, Any]) -> str:
    origin = f" ({hop['origin']})" if hop.get("origin") else ""
    return f"face {hop['face']} cost {hop['cost']}{origin}"


def _print_discovery(d: dict[str, Any] | None) -> None:
    if not d:
        return
    print(f"discovery: node {d['id']}, table v{d['seq']}, multicast on {len(d['multicast'])}")
    for nb in d["neighbours"]:
        print(f"  neighbour {nb['id']} {nb['uri']} face {nb['face']} routes {nb['routes']}")


#: Route costs travel as msgpack unsigned integers.
MAX_COST = (1 << 64) - 1


def cmd_route(args: argparse.Namespace) -> int:
    if args.action == "add" and not 0 <= args.cost <= MAX_COST:
        raise LocalError(f"--cost must be an integer from 0 to {MAX_COST}")

    async def body(client: Client) -> int:
        if args.action == "add":
            await client.route_add(Name.parse(args.prefix), args.uri, args.cost)
            print(f"route {args.prefix} -> {args.uri} added")
        elif args.action == "remove":
            await client.route_remove(Name.parse(args.prefix), args.face)
            print(f"route {args.prefix} via {args.face} removed")
        else:
            under = Name.parse(args.prefix) if args.prefix else None
            down: list[dict[str, Any]] = []
            listed = total = 0
            async for fib, page_total, page_down in client.route_pages(under):
                total = page_total
                down += page_down
                listed += len(fib)
                if fib:  # a page at a time: 66,000 print calls took longer than the node
                    print("\n".join(_route_text(e) for e in fib))
            if total > listed:  # a node that does not page
                print(f"... {listed} of {total} routes shown (give a prefix to see others)")
            for d in down:
                print(f"{_named(d['prefix'])}  {_down_text(d)}")
        return 0

    return _on_node(args, body)


def cmd_node(args: argparse.Namespace) -> int:
    import trio

    from ccn.config import ConfigError, NodeConfig, parse_route
    from ccn.faces.uri import FaceUri
    from ccn.node import Node, raise_descriptor_limit

    # The cache tier writes on a worker thread; hand the GIL back to the event loop sooner
    # than the default 5 ms so forwarding latency does not wait on disk writes.
    sys.setswitchinterval(0.0005)

    if args.config == "" or args.store == "":
        raise LocalError(f"--{'config' if args.config == '' else 'store'} needs a path")
    config = NodeConfig.from_file(Path(args.config)) if args.config else NodeConfig()
    if args.store:
        config.store = Path(args.store)
    if args.listen:
        config.listen = list(args.listen)
    if args.route:
        config.routes = [parse_route(r) for r in args.route]
    if args.ndn:
        config.ndn = list(args.ndn)
    if args.no_discovery:
        config.discovery = False
    config.validate()
    for uri in config.ndn:
        if FaceUri.parse(uri).scheme not in ("tcp", "unix"):
            raise ConfigError(f"ndn: {uri}: NDN apps connect over tcp:// or unix://")

    raise_descriptor_limit(config)

    async def main() -> int:
        node = Node(config)
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                bound = await nursery.start(node.run)
                ndn = "".join(f", ndn {b}" for b in node.bound_ndn)
                print(
                    f"ccn node: store {config.store}; listening on "
                    + ", ".join(str(b) for b in bound)
                    + ndn,
                    flush=True,
                )
                for name in [] if node.discovery is None else node.discovery.missing_interfaces():
                    print(
                        f"ccn node: interface {name} is not up with an IPv4 or IPv6"
                        " link-local address; discovery will use it when it is",
                        file=sys.stderr,
                    )
                async for _sig in signals:
                    nursery.cancel_scope.cancel()
                    break
        print("ccn node: stopped", flush=True)
        return 0

    return trio.run(main)


def cmd_demo(args: argparse.Namespace) -> int:
    import trio

    from ccn.demo import run_demo

    if args.size_mib < 1:
        raise LocalError("--size-mib must be at least 1")
    if not (args.delay_ms >= 0 and math.isfinite(args.delay_ms)):
        raise LocalError("--delay-ms must be a number of milliseconds >= 0")
    return trio.run(_stopped_by_signals, partial(run_demo, args.size_mib, args.delay_ms))


# -- parser ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake told in one line (argparse prints the usage too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Subcommands are parsed by their own _Parser, whose defaults override the parent's:
        # after parsing, this names the innermost command given.
        self.set_defaults(_cli_parser=self)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args_one_line(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """``parse_args``, with arguments left over blamed on the (sub)command that was
        given them: ``ccn status --bogus`` points to ``ccn status --help``, not ``ccn --help``."""
        args, extra = self.parse_known_args(argv)
        if extra:
            leaf: argparse.ArgumentParser = getattr(args, "_cli_parser", self)
            leaf.error(f"unrecognized arguments: {' '.join(extra)}")
        return args


def build_parser() -> _Parser:
    p = _Parser(
        prog="ccn",
        description="Content-centric networking: fetch content by name.",
        epilog="Names are written /a/b/v3 (percent-escape other bytes); NDN URI spellings "
        "(v=3, seg=0, 32=metadata) mean what they mean in NDN (docs/ndn.md).",
    )
    p.add_argument(
        "--node",
        default=None,
        help=f"node to talk to (default: $CCN_NODE or {default_socket()})",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("node", help="run a node")
    s.add_argument("--config", help="TOML file with the same settings as the flags")
    s.add_argument("--store", help=f"store directory (default {default_store()})")
    s.add_argument(
        "--listen",
        action="append",
        metavar="URI",
        help="tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH (in a directory that exists; "
        f"{ccn_home()} is made if need be); may be repeated; given, it replaces the defaults "
        f"({' and '.join(default_listen())})",
    )
    s.add_argument(
        "--route",
        action="append",
        metavar="PREFIX=URI",
        help="route a prefix to a neighbour (tcp://, udp://HOST:PORT or unix:///PATH); "
        "may be repeated",
    )
    s.add_argument(
        "--ndn",
        action="append",
        metavar="URI",
        help="listen for NDN apps (tcp://127.0.0.1:6363 or unix:///PATH); may be repeated",
    )
    s.add_argument(
        "--no-discovery",
        action="store_true",
        help="no LAN discovery (multicast hellos, neighbours, prefix announcements)",
    )
    s.set_defaults(func=cmd_node)

    s = sub.add_parser("put", help="publish a file or directory as the next version of NAME")
    s.add_argument("path")
    s.add_argument("name")
    s.add_argument("--key", metavar="NAME", help="sign the version with key NAME (ccn key gen)")
    s.set_defaults(func=cmd_put)

    s = sub.add_parser(
        "get",
        help="fetch NAME (/name/vN or /name for the latest)",
        epilog="NAME may use NDN URI spellings: v=N is the version vN, seg=N and T=VALUE are "
        "NDN typed components (docs/ndn.md); write %3D for a plain '=' in a component.",
    )
    s.add_argument("name")
    s.add_argument("-o", "--output", help="output path, '-' for stdout (default: last component)")
    s.set_defaults(func=cmd_get)

    s = sub.add_parser("key", help="publisher keys: gen NAME, show NAME, list")
    ksub = s.add_subparsers(dest="action", required=True)
    ksub.add_parser("gen").add_argument("name")
    ksub.add_parser("show").add_argument("name")
    ksub.add_parser("list")
    s.set_defaults(func=cmd_key)

    s = sub.add_parser("trust", help="trust anchors: add PREFIX KEY, remove PREFIX [KEY], list")
    tsub = s.add_subparsers(dest="action", required=True)
    t = tsub.add_parser("add")
    t.add_argument("prefix")
    t.add_argument("key", help="ed25519:<64 hex> (ccn key show NAME)")
    t = tsub.add_parser("remove")
    t.add_argument("prefix")
    t.add_argument("key", nargs="?")
    tsub.add_parser("list")
    s.set_defaults(func=cmd_trust)

    s = sub.add_parser("ls", help="names and versions published on the node")
    s.add_argument("prefix", nargs="?", default="/")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("status", help="faces, routes, tables and counters of the node")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("log", help="versions of NAME (or just NAME/vN) published on the node")
    s.add_argument("name")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("pin", help="keep NAME[/vN] on the node (never evicted or collected)")
    s.add_argument("name")
    s.set_defaults(func=cmd_pin)

    s = sub.add_parser("unpin", help="drop the pin of NAME/vN (or every pin of NAME)")
    s.add_argument("name")
    s.set_defaults(func=cmd_pin)

    s = sub.add_parser("pins", help="list the node's pins")
    s.set_defaults(func=cmd_pins)

    s = sub.add_parser(
        "gc", help="remove objects that no published version or pin reaches; merge small packs"
    )
    s.add_argument(
        "--dry-run", action="store_true", help="only list what would be removed and merged"
    )
    s.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep unreachable objects younger than this (default 3600)",
    )
    s.add_argument(
        "-v", "--verbose", action="store_true", help="also list each object removed (id, size)"
    )
    s.set_defaults(func=cmd_gc)

    s = sub.add_parser("fsck", help="verify every object, ref and cached object")
    s.add_argument(
        "--repair", action="store_true", help="drop damaged cache objects (fetched again later)"
    )
    s.set_defaults(func=cmd_fsck)

    s = sub.add_parser("face", help="list the node's faces")
    fsub = s.add_subparsers(dest="action", required=True)
    fsub.add_parser("list").add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_face)

    s = sub.add_parser("route", help="add, remove or list routes")
    rsub = s.add_subparsers(dest="action", required=True)
    r = rsub.add_parser("add")
    r.add_argument("prefix")
    r.add_argument("uri")
    r.add_argument("--cost", type=int, default=0)
    r = rsub.add_parser("remove")
    r.add_argument("prefix")
    r.add_argument("face", help="face id or neighbour uri")
    rsub.add_parser("list").add_argument(
        "prefix", nargs="?", help="only routes under this prefix (default: all)"
    )
    s.set_defaults(func=cmd_route)

    s = sub.add_parser("demo", help="a small topology on this machine: cache hits vs direct fetch")
    s.add_argument("--size-mib", type=int, default=16)
    s.add_argument("--delay-ms", type=float, default=20.0)
    s.set_defaults(func=cmd_demo)
    return p


def _tolerant_output() -> None:
    """A path that is not valid in the locale's encoding (a non-UTF-8 ``$CCN_HOME``) is
    printed escaped, not a traceback after the command has done its work."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError):  # (closed)
                stream.reconfigure(errors="backslashreplace")


def _stopped(args: argparse.Namespace, how: str) -> str:
    """The line for a command stopped by a signal. The node stops a put whose client left,
    unless the import had already ended, so whether it was published is for ``ls`` to say."""
    if getattr(args, "command", None) == "put":
        return f"ccn: {how}; published only if the node had finished (ccn ls {args.name} shows)"
    return f"ccn: {how}"


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    args = argparse.Namespace()
    try:
        # (inside: Ctrl-C while the parser is built is no traceback either)
        args = build_parser().parse_args_one_line(argv)
        code: int = args.func(args)
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except (CcnError, OSError) as e:
        print(f"ccn: error: {_first_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(_stopped(args, "interrupted"), file=sys.stderr)
        return 130
    except BaseExceptionGroup as group:
        # Ctrl-C inside trio arrives wrapped in the nursery's group, next to the task's error.
        if group.subgroup(KeyboardInterrupt) is not None:
            print(_stopped(args, "interrupted"), file=sys.stderr)
            return 130
        if group.subgroup(_Terminated) is not None:
            print(_stopped(args, "terminated"), file=sys.stderr)
            return 128 + signal.SIGTERM
        leaf = _first_leaf(group)
        if isinstance(leaf, BrokenPipeError):
            return _stdout_gone()
        if isinstance(leaf, CcnError | OSError):
            print(f"ccn: error: {_first_line(leaf)}", file=sys.stderr)
            return 1
        raise


def _stdout_gone() -> int:
    """The reader of stdout closed it (``| head``): not an error to report. Writes to the
    node's socket never get here (a face turns them into a closed connection)."""
    # what is still buffered would fail again, with a traceback, when Python flushes at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    e: BaseException = group
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e


def _first_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:  # "path: No such file", not "[Errno 2] ..."
        return os_error_text(e)
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
