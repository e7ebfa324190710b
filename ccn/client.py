"""The client library: talk to a node over one face, ask for Data, run commands.

``async with ccn.connect() as node:`` opens a face to a node (``uri``, else ``$CCN_NODE``, else the
default Unix socket) and runs its receive task in the context manager's nursery. Pending
Interests are matched to Data by digest, exact name or prefix, and to Nacks by nonce.
Fetching whole objects lives in :mod:`ccn.fetch`; this module owns the connection.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ccn.defaults import default_node_uri
from ccn.errors import (
    CcnError,
    ConnectError,
    InvalidName,
    LocalError,
    NackError,
    NoAnswer,
    NoRoute,
    NotFound,
    Refused,
    RemoteError,
)
from ccn.faces.base import Face
from ccn.faces.liveness import heard, probe_stream
from ccn.faces.transport import dial
from ccn.faces.uri import FaceUri
from ccn.mgmt_proto import command_name, decode_reply
from ccn.name import Name
from ccn.ndn.names import shown
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.pending import Answer, Pending
from ccn.pending import new_nonce as new_nonce  # re-exported: part of the client API

if TYPE_CHECKING:
    from ccn.trust import Anchors


DEFAULT_TIMEOUT = 4.0
COMMAND_TIMEOUT = 10.0
#: How long a command that may take minutes (publish, pin, gc, fsck) is waited for.
LONG_COMMAND_TIMEOUT = 600.0
#: A connection that has Interests outstanding and has brought nothing for this long is probed
#: (docs/protocol.md §7); a probe unanswered for as long closes it. A stopped or frozen node
#: keeps its connection open: a get or a put waiting on it fails in seconds, not when its
#: retries or LONG_COMMAND_TIMEOUT run out.
QUIET = 3.0
#: How often the connection's counters are looked at for that (nothing on each packet's path).
WATCH_TICK = 1.0
NOTES_KEPT = 16


class CommandError(CcnError):
    """The node refused a management command; the message is the node's one-line reason."""


def nack_error(nack: Nack, name: Name, trust: Anchors | None = None) -> CcnError:
    """The error a Nack for ``name`` means. ``trust``: the user's anchors, which a "refused"
    may come from too (see below)."""
    what = shown(name)
    reason = nack.reason
    if reason == NackReason.NO_ROUTE:
        return NoRoute(f"no route to {what}")
    if reason == NackReason.NOT_FOUND:
        return NotFound(f"{what} not found")
    if reason == NackReason.REFUSED:
        anchor = trust.covering(name) if trust is not None else None
        if anchor is not None:
            # The user's node refuses, for a while, a record that a fetch with this trust
            # file refused (Node.refuse): then the refusal is the user's own, and "a node's
            # anchors" alone would send them looking for anchors that no node has.
            return Refused(
                f"{what}: the answer was refused: a version record that your trust file "
                f"rejects for {anchor[0]} (your node refuses, for a minute, one that a get "
                "refused with it; see ccn trust list), or that a node on the way rejects by "
                "its own trust anchors (forged, or signed by a key not trusted for the name)"
            )
        return Refused(
            f"{what}: the answer was refused by a node on the way: a version record that its "
            "trust anchors reject (forged, or signed by a key not trusted for the name)"
        )
    if reason == NackReason.DUPLICATE:
        # what the user sees of a routing loop over streams (over UDP the loop ends in a
        # "no route" first): "network answered duplicate" said nothing they could act on
        return NackError(
            f"{what}: the request came back to a node it had passed (a routing loop? see "
            "ccn route list on the nodes on the way)",
            reason,
        )
    return NackError(f"{what}: network answered {reason.name.lower().replace('_', '-')}", reason)


class Client:
    """A connection to one node. Build it with :func:`connect`."""

    def __init__(self, face: Face, trust: Anchors | None = None) -> None:
        self.face = face
        #: Publisher trust anchors checked on every version a fetch resolves (see ccn.trust).
        self.trust = trust
        #: Things a person should know about what was fetched (e.g. a version that came from a
        #: cache because no producer answered); the CLI prints them. The last few are kept.
        self.notes: deque[str] = deque(maxlen=NOTES_KEPT)
        #: The Interests sent and not yet answered (compiled: ccn/pending.py). Code that sends
        #: an Interest per packet may call its ``send``/``forget`` straight, as ccn.fetch does.
        self.pending = Pending(face)
        #: Hands each packet from the node to what awaits it (the face's deliver callback).
        self._deliver = self.pending.deliver
        self._closed = trio.Event()
        self._waiters: set[trio.Event] = set()
        self._woken_by_close: set[trio.Event] = set()
        #: Why :meth:`watch` closed the connection (the node stopped answering), if it did.
        self._silent: str | None = None

    # -- low level: express Interests ------------------------------------------------------

    def send(self, interest: Interest, answer: Answer) -> None:
        """Send ``interest``; ``answer`` is called once with the matching Data or Nack.

        Registration is by digest (if set), else prefix (can-be-prefix) or exact name; Data
        for a key answers every Interest outstanding under it (several tasks may fetch the
        same name at once). :meth:`forget` removes the registration.
        """
        self.pending.send(interest, answer)

    def forget(self, interest: Interest) -> None:
        """Remove the registration of ``interest`` (its answer will not be called)."""
        self.pending.forget(interest)

    async def express(
        self, interest: Interest, *, timeout: float | None = None, retries: int = 2
    ) -> Data:
        """Send an Interest and wait for its Data, retransmitting with fresh nonces.

        Raises :class:`NoRoute`/:class:`NotFound`/:class:`NackError` on a Nack and
        :class:`NoAnswer` (a :class:`NotFound`) when every attempt timed out.
        """
        wait = timeout if timeout is not None else interest.lifetime_ms / 1000
        for _attempt in range(retries + 1):
            done = trio.Event()
            result: list[Data | Nack] = []

            def answer(
                p: Data | Nack, done: trio.Event = done, result: list[Data | Nack] = result
            ) -> None:
                result.append(p)
                done.set()

            self.send(interest, answer)
            try:
                with trio.move_on_after(wait):
                    await self._wait(done)
            finally:
                # also when the caller's scope is cancelled (a get under move_on_after): the
                # registration stayed behind, one per cancelled call, for the connection's life
                self.forget(interest)
            if result:
                got = result[0]
                if type(got) is Nack:
                    raise nack_error(got, interest.name, self.trust)
                assert type(got) is Data
                return got
            interest = Interest(
                interest.name,
                new_nonce(),
                interest.lifetime_ms,
                interest.hop_limit,
                interest.can_be_prefix,
                interest.must_be_fresh,
                interest.digest,
            )
        raise NoAnswer(f"{shown(interest.name)}: no answer (timed out)")

    async def _wait(self, done: trio.Event) -> None:
        """Wait for ``done``; fail at once (ConnectError) if the connection drops meanwhile."""
        if self.face.closed:
            raise self._closed_error()
        self._waiters.add(done)
        try:
            await done.wait()
        finally:
            self._waiters.discard(done)
        if self.face.closed and not self._answered(done):
            raise self._closed_error()

    def _closed_error(self) -> ConnectError:
        if self._silent is not None:
            return ConnectError(self._silent)
        reason = getattr(self.face, "close_reason", None) or ""
        if reason.startswith("not a ccn stream"):  # what it sent was not ccn frames
            return ConnectError(f"{self.face.remote} is not a ccn node ({reason})")
        return ConnectError("the node closed the connection")

    def _answered(self, done: trio.Event) -> bool:
        return done not in self._woken_by_close

    async def serve(self) -> None:
        """Run the connection until it closes: hand what the node sends to what awaits it,
        and :meth:`watch` it (:func:`connect` runs this)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch)
            try:
                await self.face.run(self._deliver)
            finally:
                self._on_closed()
                nursery.cancel_scope.cancel()

    async def watch(self) -> None:
        """Watch the connection while it is open (:meth:`serve` runs this): when Interests
        are outstanding and nothing has come from the node for :data:`QUIET`, probe it; a
        probe unanswered for as long closes the connection, and what waits on it fails with
        a :class:`ConnectError` that says so. A node answers a probe at once, however busy its
        routes, so a node only waiting on the network upstream is not taken for a stopped one."""
        face = self.face
        signs = heard(face)
        quiet_since = trio.current_time()
        while not face.closed:
            await trio.sleep(WATCH_TICK)
            now = trio.current_time()
            if heard(face) != signs or not self.pending.by_nonce:
                signs, quiet_since = heard(face), now
                continue
            if now - quiet_since < QUIET:
                continue
            if await probe_stream(face, QUIET):
                signs, quiet_since = heard(face), trio.current_time()
                continue
            if face.closed:
                return
            probe = f"no answer to a probe within {QUIET:g} s"
            if signs:
                why = f"stopped answering ({probe}: is it stopped or frozen?)"
            else:
                why = f"does not answer ({probe}: is a ccn node listening there, and not stopped?)"
            self._silent = f"{face.remote} {why}"
            face.close()
            return

    def _on_closed(self) -> None:
        self._closed.set()
        for waiter in list(self._waiters):
            self._woken_by_close.add(waiter)
            waiter.set()

    # -- management ------------------------------------------------------------------------

    async def command(
        self, verb: str, params: dict[str, Any] | None = None, *, timeout: float = COMMAND_TIMEOUT
    ) -> dict[str, Any]:
        name = command_name(verb, params)
        lifetime = min(int(timeout * 1000), 600_000)
        try:
            data = await self.express(
                Interest(name, new_nonce(), lifetime_ms=lifetime, must_be_fresh=True),
                timeout=timeout,
                retries=0,
            )
        except NoAnswer:
            # a ccn node always answers a command: say where we asked, not "/localhost/ccn/..."
            why = "is a ccn node listening there?"
            if not self.face.local:
                # A node drops /localhost Interests from other hosts without a word (as NFD
                # does), so a command to another host's node ends here -- and one to this
                # host's node at its LAN address too: only loopback and Unix peers are local.
                why = (
                    "a node takes commands only from its own host, over its Unix socket or a "
                    "loopback address (tcp://127.0.0.1:PORT, not its LAN address): run this "
                    "there; ccn get works from here"
                )
            raise NoAnswer(
                f"{self.face.remote} did not answer '{verb}' within {timeout:g} s ({why})"
            ) from None
        try:
            reply = decode_reply(data.content)
        except RemoteError as e:
            raise CommandError(f"bad reply from node: {e}") from None
        if not reply["ok"]:
            raise CommandError(str(reply.get("error", "command failed")))
        return reply

    async def long_command(self, verb: str, params: dict[str, Any]) -> dict[str, Any]:
        """A command that may take minutes: a ``ping`` first, within :data:`COMMAND_TIMEOUT`,
        so that a peer that is no ccn node (it never answers) fails in seconds, not after
        :data:`LONG_COMMAND_TIMEOUT`. It carries a random ``req`` parameter, so that it is a
        command of its own: the same one sent by another client, or again after a Ctrl-C, is
        not aggregated with it in the node's PIT (and answered with its reply).

        Cancelled while it waits (a ``move_on_after``, a nursery closing), it tells the node to
        stop the command (``abandon``), as the node does when its client's connection closes:
        a put stopped before the node has published publishes nothing. A node that stops
        answering meanwhile (stopped, frozen) is found out by the connection's :meth:`watch`
        within seconds, not after :data:`LONG_COMMAND_TIMEOUT`."""
        await self.command("ping")
        req = new_nonce()
        unique = {**params, "req": req}
        try:
            return await self.command(verb, unique, timeout=LONG_COMMAND_TIMEOUT)
        except BaseException:
            # Cancelled, the node stopped answering, ...: nobody waits for the answer any more.
            if not self.face.closed:
                abandon = Interest(command_name("abandon", {"req": req}), new_nonce())
                self.send(abandon, _ignore)
            raise

    async def status(self) -> dict[str, Any]:
        reply = await self.command("status")
        status: dict[str, Any] = reply["status"]
        return status

    async def faces(self) -> list[dict[str, Any]]:
        """The node's faces, each with its counters (as in :meth:`status`)."""
        reply = await self.command("face-list")
        faces: list[dict[str, Any]] = reply["faces"]
        return faces

    async def ls(self, prefix: Name | str = "/") -> list[dict[str, Any]]:
        """Every name published on this node under ``prefix``, in name order, with its
        versions: ``{"name", "versions": [N...], "versions_total"}`` each (the last 100
        versions of each; :meth:`history` gives all). Asked a page at a time
        (:meth:`list_pages`)."""
        return [entry async for page in self.list_pages(prefix) for entry in page]

    async def list_pages(self, prefix: Name | str = "/") -> AsyncIterator[list[dict[str, Any]]]:
        """:meth:`ls`, a page of at most 2000 names at a time, in name order. Names published
        meanwhile may be missed; none is given twice."""
        p = Name.parse(prefix) if isinstance(prefix, str) else prefix
        params = {"prefix": str(p)}
        while True:
            reply = await self.command("list", params)
            names: list[dict[str, Any]] = reply["names"]
            total = reply.get("names_total")
            if "more" not in reply and isinstance(total, int) and total > len(names):
                # a node from before paging: it gives its first page and how many there are
                self.notes.append(
                    f"the node listed {len(names):,} of {total:,} names under {p} (it runs an "
                    "older ccn, which does not page: ccn ls PREFIX lists fewer)"
                )
            yield names
            if not reply.get("more") or not names or names[-1]["name"] == params.get("after"):
                return
            params["after"] = names[-1]["name"]

    async def publish(
        self,
        path: str | os.PathLike[str],
        name: Name | str,
        *,
        key: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Publish a file or directory the node can read as the next version of ``name``.

        Returns the node's reply: ``{"name": "/n/vN", "id": hex, "size": bytes}``. The node reads
        the path itself (it must share this file system) and streams it into its store. ``key``
        is the path of a private key file (:mod:`ccn.keys`) the node signs the version with; it
        travels as a path, never as key bytes.
        """
        n = _name(name)
        if n.version is not None:
            raise LocalError(f"publish to a name without a version, not {n}")
        full = Path(path).resolve()
        if not full.exists():
            raise LocalError(f"{path}: no such file or directory")
        params = {"path": str(full), "name": str(n)}
        if key is not None:
            params["key"] = str(Path(key).resolve())
        return await self.long_command("publish", params)

    async def put(self, path: str | os.PathLike[str], name: Name | str) -> Name:
        """Publish ``path`` as the next version of ``name``; return the versioned name."""
        reply = await self.publish(path, name)
        return Name.parse(reply["name"])

    async def route_add(self, prefix: Name | str, uri: str, cost: int = 0) -> dict[str, Any]:
        return await self.command("route-add", {"prefix": str(prefix), "uri": uri, "cost": cost})

    async def route_remove(self, prefix: Name | str, uri_or_face: str) -> dict[str, Any]:
        return await self.command("route-remove", {"prefix": str(prefix), "face": uri_or_face})

    async def routes(self, prefix: Name | str | None = None) -> list[dict[str, Any]]:
        """The node's routes (those under ``prefix``), at most 2000 of them: see
        :meth:`route_table` for how many there are."""
        fib, _total = await self.route_table(prefix)
        return fib

    async def route_table(
        self, prefix: Name | str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Routes (under ``prefix``), at most 2000 of them, and how many match in all."""
        fib, total, _down = await self.route_state(prefix)
        return fib, total

    async def route_state(
        self, prefix: Name | str | None = None
    ) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
        """:meth:`route_table`, and the configured routes whose neighbour is down
        (``{"prefix", "uri", "error"}``: not in the FIB until it is up again)."""
        fib, total, down, _more = await self._route_page(_route_params(prefix))
        return fib, len(fib) if total is None else total, down

    async def _route_page(
        self, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], int | None, list[dict[str, Any]], bool]:
        """One ``route-list`` reply: ``(fib, total, down, more after it)``; the total is None
        on a page after the first (only the first counts the routes)."""
        reply = await self.command("route-list", params or None)
        fib: list[dict[str, Any]] = reply["fib"]
        total: int | None = reply.get("fib_total")
        down: list[dict[str, Any]] = reply.get("down", [])
        return fib, total, down, bool(reply.get("more"))

    async def route_pages(
        self, prefix: Name | str | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], int, list[dict[str, Any]]]]:
        """Every route (under ``prefix``), a page of at most 2000 at a time, in name order:
        ``(fib, total, down)`` as :meth:`route_state` gives them (the total as of the first
        page), ``down`` with the first page only. A node that does not page (an older one)
        gives the first page alone. Routes added or removed meanwhile may be missed; none
        is given twice."""
        params = _route_params(prefix)
        total = 0
        while True:
            fib, page_total, down, more = await self._route_page(params)
            if page_total is not None:
                total = page_total
            elif "after" not in params:
                total = len(fib)
            yield fib, total, down
            if not more or not fib or fib[-1]["prefix"] == params.get("after"):
                return
            params["after"] = fib[-1]["prefix"]

    # -- store maintenance -----------------------------------------------------------------

    async def log(self, name: Name | str) -> list[dict[str, Any]]:
        """Versions of a name published on this node, oldest first (of ``/name/vN``: that
        version only): number, id, time_ns, size, previous (hex id or None), pinned."""
        return (await self.history(name))[0]

    async def history(self, name: Name | str) -> tuple[list[dict[str, Any]], int]:
        """:meth:`log`, at most the last 2000 versions, and how many there are in all."""
        reply = await self.command("log", {"name": str(_name(name))})
        versions: list[dict[str, Any]] = reply["versions"]
        return versions, int(reply.get("versions_total", len(versions)))

    async def pin(self, name: Name | str) -> Name:
        """Keep ``/name/vN`` (or the latest version of ``/name``) on this node; return what was
        pinned. A version not published on the node is first fetched through it (so its objects
        pass the node), checked against :attr:`trust` as a fetch is, and then copied into the
        node's store."""
        n = _name(name)
        reply = await self.command("pin", {"name": str(n)})  # quick: it copies nothing
        if reply.get("need") is None:
            return Name.parse(reply["pinned"])
        from ccn.fetch import fetch_through, resolve
        from ccn.store.objects import encode

        versioned, version = await resolve(self, n)
        params = {"name": str(versioned), "version": encode(version)}
        reply = await self.long_command("pin", params)
        errors_before = reply.get("cache_write_errors", 0)
        if reply.get("need") == "content":
            await fetch_through(self, versioned, version)
            reply = await self.long_command("pin", params)
        if reply.get("need") is not None:
            missing = reply.get("missing", "some")
            why = ""
            if reply.get("cache_write_errors", 0) > errors_before:
                why = "; its cache tier could not write them (is its disk full? see ccn status)"
            raise CommandError(
                f"cannot pin {versioned}: {missing} objects did not reach the node{why}"
            )
        return Name.parse(reply["pinned"])

    async def unpin(self, name: Name | str) -> int:
        """Drop the pin(s) of ``/name/vN`` (or every pin of ``/name``); return how many."""
        reply = await self.command("unpin", {"name": str(_name(name))})
        removed: int = reply["removed"]
        return removed

    async def pins(self) -> list[dict[str, Any]]:
        """The node's pins: ``{"name", "number" (None: the latest), "id" (hex, or None for a
        name published on the node)}`` each."""
        reply = await self.command("pins")
        pins: list[dict[str, Any]] = reply["pins"]
        return pins

    async def gc(self, *, dry_run: bool = False, grace: float | None = None) -> dict[str, Any]:
        """Remove objects no published version or pin reaches (older than ``grace`` seconds;
        default one hour) and merge small packs. Reply: removed [[hex id, size]...], count, bytes,
        live, young, packs_merged, packs_written, loose_merged, merge_bytes (in a dry run:
        what it would merge)."""
        params: dict[str, Any] = {"dry_run": dry_run}
        if grace is not None:
            params["grace"] = grace
        return await self.long_command("gc", params)

    async def fsck(self, *, repair: bool = False) -> dict[str, Any]:
        """Check the node's store and cache tier. Reply: problems (lines), count, unrepaired,
        checked."""
        return await self.long_command("fsck", {"repair": repair})

    # -- whole objects ---------------------------------------------------------------------

    async def get(self, name: Name | str) -> bytes:
        """Fetch a file version by name (``/n`` for the latest, ``/n/vN`` for that one) into
        memory; use :meth:`fetch` for large content or a directory (:class:`LocalError`).
        Every byte is verified. Raises a :class:`FetchError` (:class:`NoRoute`,
        :class:`NotFound`, :class:`VerificationError`) when the fetch fails."""
        from ccn.fetch import fetch_bytes

        return await fetch_bytes(self, _name(name))

    async def fetch(self, name: Name | str, path: str | os.PathLike[str]) -> Name:
        """Fetch a file or directory version to ``path``; return the versioned name.

        It is written beside ``path`` (``<path>.ccn-partial-<pid>-<n>``, this fetch's own)
        and renamed when every byte is
        verified: a fetch that fails or is cancelled leaves nothing. A file replaces an existing
        file at ``path``; a directory is never merged into an existing path
        (:class:`LocalError`). A ``path`` that ends with a slash names a directory, as ``cp``
        has it: a file version is then an error (:class:`LocalError`), never written there."""
        from ccn.fetch import fetch_to_path

        text = os.fspath(path)
        into = isinstance(text, str) and text.endswith(("/", os.sep))
        dest = Path(text) if into else output_path(Path(text))
        return await fetch_to_path(self, _name(name), dest, into_directory=into)


def output_path(path: Path) -> Path:
    """Where a fetch to the file ``path`` writes: through a symbolic link, to the file it
    points at, as ``cp`` does (the link itself was replaced by a file: a link into a
    dotfiles repository stopped being one; helper-54). An existing file its user may not
    write is refused, as ``cp`` refuses it, not replaced."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_file() and not os.access(path, os.W_OK):
        raise LocalError(f"{path}: permission denied (the file is not writable)")
    return path


def _route_params(prefix: Name | str | None) -> dict[str, str]:
    return {} if prefix is None else {"prefix": str(_name(prefix))}


def _ignore(_packet: Data | Nack) -> None:
    return None


def _name(name: Name | str) -> Name:
    if isinstance(name, str):
        return Name.parse(name)
    if not isinstance(name, Name):
        raise InvalidName(f"a name is a str or a ccn.Name, not {type(name).__name__}")
    return name


@asynccontextmanager
async def connect(uri: str | None = None, *, trust: Anchors | None = None) -> AsyncIterator[Client]:
    """Connect to a node at ``uri`` (``unix:///path`` or ``tcp://host:port``; else
    ``$CCN_NODE``, else the default Unix socket); the connection closes when the block exits.
    Raises :class:`ConnectError` when no node is there; a call in flight when the node goes
    away, and any later one, raises it too. Several tasks may use one connection at once. An
    error raised in the block comes out as raised (not in an exception group). With
    ``trust``, every version fetched under an anchored prefix must be signed by a trusted
    key."""
    face = await dial(FaceUri.parse(uri or default_node_uri()))
    client = Client(face, trust)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.serve)
            try:
                yield client
            finally:
                face.close()
    except BaseExceptionGroup as group:
        # The nursery wraps what the caller's block raised; give it back as it was raised, so
        # that ``except NotFound`` around ``async with connect()`` works.
        _raise_alone(group)
        raise


def _raise_alone(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the group's exception if it holds just one (and no nested group) besides
    ``trio.Cancelled``: the caller's deadline passing as the block raised cancelled the
    connection's own task too, and the block's error is still the one to raise (the scope
    stays cancelled: its next checkpoint raises Cancelled again)."""
    _cancelled, rest = group.split(trio.Cancelled)  # (nested groups of) Cancelled go
    if rest is None or len(rest.exceptions) != 1:
        return
    alone = rest.exceptions[0]
    if isinstance(alone, BaseExceptionGroup):
        return
    context = alone.__context__
    try:
        raise alone
    finally:
        alone.__context__ = context  # not "during handling of the group"
        del alone
