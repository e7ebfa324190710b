"""Management: commands under ``/localhost/ccn/...``, answered through an internal face.

Verbs: ``status``, ``list``, ``publish``, ``route-add``, ``route-remove``, ``route-list``,
``face-list``, and the store maintenance verbs ``log``, ``pin``, ``unpin``, ``pins``, ``gc``,
``fsck`` (carried out by :mod:`ccn.maintenance`). Parameters and replies follow
:mod:`ccn.mgmt_proto`. Long commands (publish, gc, fsck) run in a worker thread and answer
when done; the Interest's lifetime covers the wait.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ccn.config import check_routable
from ccn.errors import CcnError, DecodeError, StoreError, os_error_text
from ccn.faces.internal import InternalFace
from ccn.faces.uri import FaceUri, is_own_address, own_address_error
from ccn.keys import SigningKey
from ccn.logline import say_traceback
from ccn.maintenance import Maintenance, Wanted, stoppable
from ccn.mgmt_proto import MAX_REPLY_BYTES, encode_reply, parse_command
from ccn.name import Name
from ccn.packet import DIGEST_SIZE, Data, Interest, Packet
from ccn.store.files import publish
from ccn.store.gc import GRACE_S
from ccn.store.objects import Version

if TYPE_CHECKING:
    from ccn.node import Node


#: Commands stopped when their client goes away (see :func:`~ccn.maintenance.stoppable`).
_ABANDONED_WITH_THEIR_CLIENT = frozenset({"publish", "pin", "gc", "fsck"})
#: How many abandoned commands are remembered (see Management.cmd_abandon).
MAX_ABANDONED = 1024
#: ``list`` gives at most this many names a page, and of each its last LIST_MAX_VERSIONS
#: version numbers (a reply is one packet); the totals of versions are complete.
LIST_MAX_NAMES = 2000
LIST_MAX_VERSIONS = 100
#: Write errors that say the store's file system cannot take more (see _os_error_text).
_STORE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class CommandFailed(CcnError):
    """A command that cannot be carried out; its message goes back to the client."""


class Management:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.face = InternalFace("internal://management", self._on_packet)
        self.maintenance = Maintenance(node)
        #: ``req`` of long commands their clients abandoned (Client.long_command), newest last
        self._abandoned: OrderedDict[object, None] = OrderedDict()

    def _on_packet(self, packet: Packet) -> None:
        if type(packet) is Interest:
            self.node.nursery.start_soon(self._serve, packet)

    async def _serve(self, interest: Interest) -> None:
        verb = "?"
        asked: Wanted = None
        try:
            verb, params = parse_command(interest.name)
            handler = getattr(self, "cmd_" + verb.replace("-", "_"), None)
            if handler is None:
                raise CommandFailed(f"unknown command {verb!r}")
            if verb in _ABANDONED_WITH_THEIR_CLIENT:
                # the Interest's PIT entry goes when the client's face closes (a Ctrl-C'd put)
                # ... or when the client abandons it (cmd_abandon: a cancelled long command)
                pit, abandoned, req = self.node.forwarder.pit, self._abandoned, params.get("req")
                asked = lambda: pit.find(interest) is not None and req not in abandoned  # noqa: E731
                result = await handler(params, asked)
            else:
                result = await handler(params)
            reply = {"ok": True, **result}
        except (CcnError, DecodeError) as e:
            reply = {"ok": False, "error": str(e)}
        except OSError as e:  # e.g. a directory being published that the node cannot read
            reply = {"ok": False, "error": self._os_error_text(e)}
        except Exception as e:
            # A bug in a command must not take down the node and every face on it: the
            # client is told, and the traceback goes to the node's stderr to be reported.
            say_traceback(f"ccn node: internal error in {interest.name}:")
            reply = {"ok": False, "error": f"internal error in the node: {type(e).__name__}: {e}"}
        if asked is not None and not asked():
            return  # its client left: nobody waits for the answer
        content = encode_reply(reply)
        if len(content) > MAX_REPLY_BYTES:  # the net under a command that lists too much
            too_big = f"the reply to {verb!r} is too large ({len(content):,} bytes)"
            content = encode_reply({"ok": False, "error": too_big})
        self.node.inject(self.face.id, Data(interest.name, content, 0))

    def _os_error_text(self, e: OSError) -> str:
        """The line for an OSError of a command. A full, over-quota or read-only store is
        named as such: the file it was writing (a pack, a ref's temporary file), or none at
        all, means nothing to the user. Anything else (a file being published that the
        node cannot read) is shown with its path."""
        if e.errno not in _STORE_FULL:
            return os_error_text(e)
        store = os.path.realpath(self.node.config.store)
        where = None if not e.filename else os.path.realpath(os.fsdecode(e.filename))
        if where is not None and os.path.commonpath([where, store]) != store:
            return os_error_text(e)
        return f"the node's store {store}: {e.strerror}"

    # -- commands --------------------------------------------------------------------------

    async def cmd_ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def cmd_abandon(self, params: dict[str, Any]) -> dict[str, Any]:
        """The client of the long command ``req`` (publish, pin, gc, fsck) no longer waits for
        it (cancelled): it stops as if the client had closed its connection."""
        req = params.get("req")
        if not isinstance(req, int):
            raise CommandFailed("abandon needs the req of a command")
        self._abandoned[req] = None
        while len(self._abandoned) > MAX_ABANDONED:
            self._abandoned.popitem(last=False)
        return {}

    async def cmd_status(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.node.status()}

    async def cmd_refuse(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _name(params.get("name"))
        vid = params.get("id")
        if name.version is None or type(vid) is not bytes or len(vid) != DIGEST_SIZE:
            raise CommandFailed("refuse needs a version's name (/n/vN) and its record's id")
        self.node.refuse(name, vid)
        return {}

    async def cmd_face_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"faces": self.node.status()["faces"]}

    async def cmd_route_list(self, params: dict[str, Any]) -> dict[str, Any]:
        under = _name(params["prefix"]) if "prefix" in params else None
        # A page after the first (``after``: the last prefix of the one before) has the FIB
        # entries only; the routes that are down came with the first.
        after = _name(params["after"]) if "after" in params else None
        fib, total, more = self.node.routes(under, after)
        if after is not None:  # the first page gave the total, and the routes that are down
            return {"fib": fib, "down": [], "more": more}
        down = self.node.down_routes(under)
        return {"fib": fib, "fib_total": total, "down": down, "more": more}

    async def cmd_list(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = _name(params.get("prefix", "/"))
        # A page after the first: ``after`` is the last name of the one before.
        after = _name(params["after"]) if "after" in params else None
        # A walk of the refs directory: in a worker thread, so a big store does not hold up
        # every face of the node while it runs.
        return await trio.to_thread.run_sync(self._list, prefix, after)

    def _list(self, prefix: Name, after: Name | None) -> dict[str, Any]:
        refs = self.node.refs
        # One more than a page, to know whether more follow: only these are read.
        found = list(itertools.islice(refs.iter_names(prefix, after), LIST_MAX_NAMES + 1))
        names = []
        for n in found[:LIST_MAX_NAMES]:
            entry: dict[str, Any] = {"name": str(n)}
            try:
                numbers = [v for v, _id in refs.versions(n)]
            except StoreError as e:  # one damaged ref file: this name says so, the rest list
                numbers = []
                entry["error"] = str(e)
            entry["versions"] = numbers[-LIST_MAX_VERSIONS:]
            entry["versions_total"] = len(numbers)
            names.append(entry)
        return {"names": names, "more": len(found) > LIST_MAX_NAMES}

    async def cmd_publish(self, params: dict[str, Any], asked: Wanted = None) -> dict[str, Any]:
        name = _name(params.get("name"))
        if name.version is not None or name.is_localhost or name.is_localhop or not len(name):
            raise CommandFailed(f"cannot publish under {name}")
        path = params.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise CommandFailed("publish needs an absolute path")
        if not os.access(path, os.R_OK):
            raise CommandFailed(f"{path}: the node cannot read it")
        if not (os.path.isfile(path) or os.path.isdir(path)):
            # a fifo would block a worker thread, a device be read forever, a socket fail
            raise CommandFailed(f"{path}: not a regular file or directory")
        # The import would read the pack it is writing (a 20 MB store grew by ~900 MB).
        store, real = os.path.realpath(self.node.config.store), os.path.realpath(path)
        common = os.path.commonpath([real, store])
        if common == store:
            raise CommandFailed(f"{path} is inside the node's own store; it cannot be published")
        if common == real:
            raise CommandFailed(f"{path} holds the node's own store ({store}): not published")
        key = params.get("key")
        if key is not None and (not isinstance(key, str) or not os.path.isabs(key)):
            raise CommandFailed("publish needs an absolute key path")
        node = self.node

        def work(stop: threading.Event) -> Version:
            signer = None if key is None else SigningKey.load(key)
            sign = None if signer is None else signer.sign
            return publish(node.store, node.refs, name, Path(path), sign=sign, stop=stop)

        async with self.maintenance.publishing():  # no GC meanwhile: see ccn.maintenance
            version = await stoppable(work, asked, cleanup=node.store.remove_aborted)
        node.on_published(name)
        full = name.with_version(version.number)
        from ccn.store.objects import id_of

        return {"name": str(full), "id": id_of(version).hex(), "size": version.size}

    async def cmd_route_add(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = _routable(params.get("prefix"))
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise CommandFailed("route-add needs a uri")
        try:
            target = FaceUri.parse(uri)
        except CcnError as e:
            raise CommandFailed(str(e)) from None
        if is_own_address(target, self.node.bound):
            raise CommandFailed(own_address_error(uri))
        cost = params.get("cost", 0)
        if type(cost) is not int or cost < 0:
            raise CommandFailed("cost must be a non-negative integer")
        await self.node.add_route(prefix, uri, cost)
        return {"prefix": str(prefix), "uri": uri}

    async def cmd_route_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = _routable(params.get("prefix"))
        face = params.get("face")
        if not isinstance(face, str):
            raise CommandFailed("route-remove needs a face id or uri")
        own = {self.node.producer.face.id, self.face.id}
        if face.isdigit() and int(face) in own:
            raise CommandFailed(
                f"face {face} is the node's own (its producer or management): its routes follow "
                "what is published and cannot be removed"
            )
        removed = self.node.remove_route(prefix, face)
        if not removed:
            raise CommandFailed(f"no route for {prefix} via {face}")
        return {"removed": removed}

    async def cmd_log(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.maintenance.log(_name(params.get("name")))

    async def cmd_pin(self, params: dict[str, Any], asked: Wanted = None) -> dict[str, Any]:
        raw = params.get("version")
        if raw is not None and not isinstance(raw, bytes):
            raise CommandFailed("version must be the version record's bytes")
        return await self.maintenance.pin(_name(params.get("name")), raw, asked)

    async def cmd_unpin(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.maintenance.unpin(_name(params.get("name")))

    async def cmd_pins(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"pins": self.maintenance.pins()}

    async def cmd_gc(self, params: dict[str, Any], asked: Wanted = None) -> dict[str, Any]:
        grace = params.get("grace")
        if grace is not None and (
            type(grace) not in (int, float) or not grace >= 0  # (NaN is not)
        ):
            raise CommandFailed("grace must be a number of seconds >= 0")
        dry_run = params.get("dry_run", False) is True
        grace_s = GRACE_S if grace is None else float(grace)
        return await self.maintenance.gc(dry_run, grace_s, asked)

    async def cmd_fsck(self, params: dict[str, Any], asked: Wanted = None) -> dict[str, Any]:
        return await self.maintenance.fsck(params.get("repair", False) is True, asked)


def _name(value: object) -> Name:
    if not isinstance(value, str):
        raise CommandFailed("a name parameter is missing")
    try:
        return Name.parse(value)
    except CcnError as e:
        raise CommandFailed(str(e)) from None


def _routable(value: object) -> Name:
    """A prefix routes may be added for or removed from (see :func:`check_routable`)."""
    return check_routable(_name(value))
