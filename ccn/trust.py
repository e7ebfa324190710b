"""Trust anchors: which publisher keys may sign versions under which name prefixes.

This module owns the policy, :mod:`ccn.keys` the crypto. An anchor is ``(prefix, public key)``;
a version ``/n/vN`` is *covered* when some anchored prefix is a prefix of ``/n``, and then the
**longest** such prefix decides: the version must be signed by one of that prefix's keys, or it
is refused (:class:`UntrustedVersion`). A version no anchor covers is not checked here — its bytes
are still checked against their hashes by the fetcher, but its publisher is unknown, and the
CLI says so.

Anchors live in two places:

* the consumer's trust file ``<ccn home>/trust`` (``ccn trust add|remove|list``), read by
  ``ccn get``: the consumer verifies what it receives;
* a node's config (``trust = ["/prefix=ed25519:..."]``): the node then drops version records
  under those prefixes that fail the check, so forged versions are neither cached nor forwarded.

The file format is one anchor per line, ``<prefix URI> ed25519:<64 hex>``; ``#`` starts a
comment. Writes replace the file atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ccn.defaults import ccn_home
from ccn.errors import CcnError, LocalError, VerificationError
from ccn.keys import PublicKey, short_id
from ccn.name import Name
from ccn.regular import read_regular
from ccn.store.objects import Version


class UntrustedVersion(VerificationError):
    """A version under a trusted prefix is unsigned, signed by another key, or badly signed."""


class TrustFileError(LocalError):
    """The trust file or an anchor given by the user is malformed."""


def _anchor_of(line: str) -> tuple[Name, PublicKey] | None:
    """The anchor a line of the trust file gives, if any (None for a comment or blank)."""
    body = line.split("#", 1)[0].strip()
    return Anchors.parse_line(body) if body else None


def default_trust_file() -> Path:
    return ccn_home() / "trust"


class Anchors:
    """Public keys trusted per name prefix; longest prefix match decides."""

    def __init__(self, anchors: Iterable[tuple[Name, PublicKey]] = ()) -> None:
        self._by_prefix: dict[Name, list[PublicKey]] = {}
        #: The lines of the file this was loaded from, kept by :meth:`save` (comments too)
        self._lines: list[str] = []
        for prefix, key in anchors:
            self.add(prefix, key)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._by_prefix.values())

    def __bool__(self) -> bool:
        # The node asks this for every Data it receives: no count needed.
        return bool(self._by_prefix)

    def __iter__(self) -> Iterator[tuple[Name, PublicKey]]:
        for prefix in sorted(self._by_prefix):
            for key in self._by_prefix[prefix]:
                yield prefix, key

    def add(self, prefix: Name, key: PublicKey) -> bool:
        """Trust ``key`` for names under ``prefix``; False if it already was."""
        if prefix.version is not None:
            raise TrustFileError(f"a trust prefix carries no version: {prefix}")
        keys = self._by_prefix.setdefault(prefix, [])
        if key in keys:
            return False
        keys.append(key)
        return True

    def remove(self, prefix: Name, key: PublicKey | None = None) -> int:
        """Forget ``key`` (or every key) for ``prefix``; return how many anchors went."""
        keys = self._by_prefix.get(prefix, [])
        gone = [k for k in keys if key is None or k == key]
        for k in gone:
            keys.remove(k)
        if not keys:
            self._by_prefix.pop(prefix, None)
        return len(gone)

    def covering(self, name: Name) -> tuple[Name, list[PublicKey]] | None:
        """The longest anchored prefix of ``name`` (unversioned) and its keys, or None."""
        if not self._by_prefix:
            return None
        for prefix in name.unversioned().prefixes():  # longest first
            keys = self._by_prefix.get(prefix)
            if keys:
                return prefix, keys
        return None

    def check(self, version: Version) -> Name | None:
        """Check ``version`` against the anchors.

        Returns the anchored prefix whose key signed it, or None if no anchor covers its name.
        Raises :class:`UntrustedVersion` (one line, naming the version) if it is covered but not
        signed by one of that prefix's keys.
        """
        found = self.covering(version.name)
        if found is None:
            return None
        prefix, keys = found
        full = version.full_name
        if version.signature is None or version.publisher is None:
            raise UntrustedVersion(f"{full} is not signed, but {prefix} requires a trusted key")
        for key in keys:
            if key.id == version.publisher:
                if key.verify(version):
                    return prefix
                raise UntrustedVersion(f"{full}: bad signature (forged or altered version)")
        trusted = ", ".join(short_id(key.id) for key in keys)
        raise UntrustedVersion(
            f"{full} is signed by key {short_id(version.publisher)}, not trusted for {prefix} "
            f"(which trusts key {trusted}; see ccn trust list)"
        )

    # -- files -----------------------------------------------------------------------------

    @classmethod
    def parse_line(cls, text: str, *, sep: str | None = None) -> tuple[Name, PublicKey]:
        """``<prefix> <key>`` (or ``<prefix>=<key>`` with ``sep='='``, the config form)."""
        parts = text.split(sep, 1) if sep else text.split()
        if len(parts) != 2:
            raise TrustFileError(f"anchor {text.strip()!r} must be PREFIX and ed25519:<hex> key")
        try:
            return Name.parse(parts[0].strip()), PublicKey.parse(parts[1])
        except CcnError as e:
            raise TrustFileError(f"anchor {text.strip()!r}: {e}") from None

    @classmethod
    def load(cls, path: Path | None = None) -> Anchors:
        """Read a trust file; a missing file is no anchors."""
        path = path or default_trust_file()
        try:
            text = read_regular(path).decode()
        except FileNotFoundError:
            return cls()
        except OSError as e:
            raise TrustFileError(f"cannot read trust file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise TrustFileError(f"trust file {path} is not UTF-8 text") from None
        anchors = cls()
        anchors._lines = text.splitlines()
        for number, line in enumerate(anchors._lines, 1):
            body = line.split("#", 1)[0].strip()
            if body:
                try:
                    anchors.add(*cls.parse_line(body))
                except TrustFileError as e:
                    raise TrustFileError(f"{path}:{number}: {e}") from None
        return anchors

    def _kept_lines(self) -> list[str]:
        """The loaded file's lines, comments and blank lines too, but for the anchors removed
        since (the user's notes survive ``ccn trust add`` and ``remove``)."""
        kept = []
        for line in self._lines:
            anchor = _anchor_of(line)
            if anchor is None or anchor[1] in self._by_prefix.get(anchor[0], []):
                kept.append(line)
        return kept

    def save(self, path: Path | None = None) -> None:
        path = path or default_trust_file()
        if path.is_symlink():
            # written through, as an editor does: a trust file kept in a dotfiles repository
            # and linked into ~/.ccn stayed behind while a file replaced the link (helper-54)
            path = Path(os.path.realpath(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = self._kept_lines()
        if not lines:
            lines = ["# ccn trust anchors: <prefix> <public key>; see SECURITY.md"]
        written = {anchor for line in lines if (anchor := _anchor_of(line)) is not None}
        lines += [f"{prefix} {key}" for prefix, key in self if (prefix, key) not in written]
        tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
        try:
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                # renamed over the old file, unwritten bytes would empty it in a power loss
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            # a full disk: the old file stays as it was, and no temporary file beside it
            tmp.unlink(missing_ok=True)
            raise TrustFileError(f"cannot write trust file {path}: {e.strerror or e}") from None


@contextlib.contextmanager
def editing(path: Path | None = None) -> Iterator[None]:
    """Hold the trust file's lock (``.<name>.lock`` beside it) while it is read, changed and
    saved: two ``ccn trust add`` at once each read the old file, and the last to save lost
    the other's anchor."""
    path = path or default_trust_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
