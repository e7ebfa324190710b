"""The one error tree of ccn.

Every exception ccn raises on purpose derives from :class:`CcnError`. The split follows h11:
a :class:`LocalError` is a mistake made here (bad argument, misuse of an API, a user typo), a
:class:`RemoteError` is something a peer or a file on disk handed us that is invalid. The CLI turns
any ``CcnError`` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threading import Event


class CcnError(Exception):
    """Base of every error ccn raises on purpose."""


class LocalError(CcnError):
    """A local mistake: invalid argument, API misuse, bad user input."""


class RemoteError(CcnError):
    """Something received from outside (a peer, a file) is invalid."""


class InvalidName(LocalError, ValueError):
    """A name (text or components) does not follow the rules of ``docs/protocol.md``."""


class InvalidPacket(LocalError, ValueError):
    """A packet value was built with fields that break its invariants."""


class DecodeError(RemoteError):
    """Bytes could not be decoded into a packet or object. The only error a decoder raises."""


class FrameError(DecodeError):
    """The byte stream is not a valid frame sequence (e.g. a frame longer than allowed).

    Unlike a single malformed frame, this leaves the stream unusable: close it.
    """


class StoreError(CcnError):
    """Base for object-store and ref failures."""


class NewerFormat(StoreError):
    """A store file carries a format version this ccn does not read: a newer ccn wrote it.
    Refused whole, never guessed at or removed (docs/store.md, "Format versions")."""

    def __init__(self, path: str, what: str, found: int | str, reads: int) -> None:
        super().__init__(
            f"{path} is {what} format {found}, written by a newer ccn; this ccn reads format "
            f"{reads}: run a ccn that reads it (the store is left as it is)"
        )


class ObjectNotFound(StoreError, KeyError):
    """The store holds no object with that id."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class CorruptObject(StoreError, RemoteError):
    """Stored bytes do not hash to their id or do not parse; never served."""


class InvalidObject(StoreError, DecodeError):
    """Object bytes are not a well-formed object of a known kind."""


class RefConflict(StoreError):
    """A compare-and-swap on a ref lost a race: the ref no longer holds the expected value."""


class FetchError(CcnError):
    """A fetch by name failed; subclasses say why."""


class NoRoute(FetchError):
    """The network answered with a no-route Nack."""


class NotFound(FetchError):
    """No node answered (timeouts) or the producer has no such name."""


class NoAnswer(NotFound):
    """Nothing answered: every attempt timed out."""


class NackError(FetchError):
    """The network answered with a Nack other than no-route."""

    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


class VerificationError(FetchError, RemoteError):
    """Received content does not match its id, hash or signature."""


class Refused(VerificationError):
    """A node on the way refused the answer (a ``refused`` Nack): a version record that its trust
    anchors reject, a forgery or another publisher's version."""


class ConnectError(CcnError):
    """Could not reach a node at the given address."""


class Stopped(StoreError):
    """A long store job (an import, publish, pin, gc or fsck) was told to stop before its end:
    its client left, or the node is shutting down. What it left is consistent."""


class ImportStopped(Stopped):
    """An import or publish was stopped half way: nothing of it was published, and what it had
    written is discarded."""


def stop_if_asked(stop: Event | None, what: str, error: type[Stopped] = Stopped) -> None:
    """Raise ``error(what)`` if ``stop`` is set: the check long jobs make."""
    if stop is not None and stop.is_set():
        raise error(what)


class StoreUsageError(StoreError, LocalError, ValueError):
    """A store API was called wrongly: a malformed id, an impossible version number, or content
    that cannot be imported (a symlink, a device, a directory with too many entries)."""


def os_error_text(e: OSError) -> str:
    """``path: reason`` (or ``reason``) for an OSError, without the ``[Errno N]`` prefix."""
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"
