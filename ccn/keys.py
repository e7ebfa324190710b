"""Publisher keys: Ed25519 key pairs, their files, key ids, signing and verifying version records.

This module owns the crypto of ccn and nothing else: which algorithm (Ed25519, through the
``cryptography`` package), how a public key is written (``ed25519:<64 hex>``), what a key id is
(``blake3(b"ccn key ed25519" + raw public key)``, 32 bytes — what a signed
:class:`~ccn.store.objects.Version` carries as its ``publisher``), and where keys live:
``<ccn home>/keys/NAME.key`` (PKCS#8 PEM, mode 0600, in a 0700 directory) and ``NAME.pub``.

A signature covers :meth:`~ccn.store.objects.Version.signing_bytes` — the name, the number, the
root id and the content hash among them — so it covers every byte of the content through the hash
tree, and a version replayed under another name or number fails verification. Which keys are
trusted for which names is :mod:`ccn.trust`'s business.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from blake3 import blake3

from ccn.defaults import ccn_home
from ccn.errors import LocalError
from ccn.regular import read_regular
from ccn.store.objects import Version

# cryptography is imported where a key is made, read, signs or verifies, not here: parsing a
# public key and its id need none of it, and ``ccn get`` (the trust file) and the node (its
# config) parse keys whether or not they verify anything; cryptography takes tens of ms to load.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PUBLIC_PREFIX: Final = "ed25519:"
PUBLIC_SIZE: Final = 32
_KEY_ID_DOMAIN: Final = b"ccn key ed25519"
_KEY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


class KeyFileError(LocalError):
    """A key cannot be made, found or read (bad name, missing or unreadable file)."""


def keys_dir(home: Path | None = None) -> Path:
    return (home or ccn_home()) / "keys"


def key_id(public: bytes) -> bytes:
    """The 32-byte id of a raw Ed25519 public key (the ``publisher`` of what it signs)."""
    digest: bytes = blake3(_KEY_ID_DOMAIN + public).digest()
    return digest


def short_id(key_id: bytes) -> str:
    """A key id as ccn shows it: its first 16 hex digits (``ccn key list``, ``ccn trust list``,
    ``ccn log`` and the errors of a refused version all show this form)."""
    return key_id.hex()[:16]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A raw 32-byte Ed25519 public key; text form ``ed25519:<64 hex>``."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != PUBLIC_SIZE:
            raise KeyFileError("an Ed25519 public key is 32 bytes")

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        body = text.strip()
        shape = f"public key must look like {PUBLIC_PREFIX}<64 hex digits>"
        if not body.startswith(PUBLIC_PREFIX):
            raise KeyFileError(shape)
        try:
            raw = bytes.fromhex(body[len(PUBLIC_PREFIX) :])
        except ValueError:
            raise KeyFileError(shape) from None
        if len(raw) != PUBLIC_SIZE:
            raise KeyFileError(shape)
        return cls(raw)

    def __str__(self) -> str:
        return PUBLIC_PREFIX + self.raw.hex()

    @property
    def id(self) -> bytes:
        return key_id(self.raw)

    def verify(self, version: Version) -> bool:
        """True if ``version`` is signed by this key (publisher = this key's id, good signature)."""
        if version.publisher != self.id or version.signature is None:
            return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(
                version.signature, version.signing_bytes()
            )
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """An Ed25519 private key. :meth:`sign` returns a signed copy of a version."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        from cryptography.hazmat.primitives import serialization

        self._private = private
        self.public = PublicKey(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @property
    def id(self) -> bytes:
        return self.public.id

    def signature(self, signing_bytes: bytes) -> bytes:
        out: bytes = self._private.sign(signing_bytes)
        return out

    def sign(self, version: Version) -> Version:
        """``version`` with this key's id as publisher and a signature over its signing bytes."""
        unsigned = Version(
            version.name,
            version.number,
            version.root,
            version.root_kind,
            version.size,
            version.content_hash,
            version.created_ns,
            version.previous,
            self.id,
        )
        return unsigned.with_signature(self.signature(unsigned.signing_bytes()))

    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        out: bytes = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read a private key file (PKCS#8 PEM, Ed25519)."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            data = read_regular(path, 64 * 1024)
        except OSError as e:
            raise KeyFileError(f"cannot read key {path}: {e.strerror or e}") from None
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except TypeError:  # what cryptography raises for a key that needs a password
            raise KeyFileError(f"{path}: the key is encrypted (ccn needs it unencrypted)") from None
        except (ValueError, UnsupportedAlgorithm):
            # cryptography's own text points to a FAQ URL; say what ccn expects instead
            private = None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key (PEM, as ccn key gen writes)")
        return cls(private)


def check_key_name(name: str) -> str:
    if not _KEY_NAME.fullmatch(name):
        raise KeyFileError(
            f"bad key name {name!r}: 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -"
        )
    return name


def key_path(name: str, home: Path | None = None) -> Path:
    """The private key file of key ``name`` (which must exist to be used)."""
    return keys_dir(home) / f"{check_key_name(name)}.key"


def generate_key(name: str, home: Path | None = None) -> SigningKey:
    """Make key ``name``: ``NAME.key`` (0600) and ``NAME.pub`` under ``<home>/keys`` (0700).

    Refuses to overwrite an existing key. The private key is written with mode 0600 from the
    start (``O_CREAT | O_EXCL``), never widened afterwards.
    """
    check_key_name(name)
    d = keys_dir(home)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    key = SigningKey.generate()
    path = d / f"{name}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key {name!r} already exists ({path})") from None
    public = d / f"{name}.pub"
    try:
        pem = key.pem()
        if os.write(fd, pem) != len(pem):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)
        public.write_text(f"{key.public}\n")
    except BaseException as e:
        # a key cut short or without its .pub (a full disk) must not stay: it would block
        # making it again
        os.close(fd)
        path.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise KeyFileError(f"cannot write key {path}: {e.strerror or e}") from None
        raise
    os.close(fd)
    return key


def load_key(name_or_path: str, home: Path | None = None) -> SigningKey:
    """Key ``NAME`` from the key directory, or a key file if given a path (contains ``/``)."""
    if os.sep in name_or_path:
        return SigningKey.load(name_or_path)
    path = key_path(name_or_path, home)
    if not path.exists():
        raise KeyFileError(f"no key named {name_or_path!r} (make one with: ccn key gen NAME)")
    return SigningKey.load(path)


def list_keys(home: Path | None = None) -> tuple[list[tuple[str, PublicKey]], list[str]]:
    """The keys in the key directory, by name, and a line for each key file that cannot be
    read (one bad file does not hide the others)."""
    d = keys_dir(home)
    keys, errors = [], []
    if d.is_dir():
        for p in sorted(d.glob("*.key")):
            try:
                keys.append((p.stem, SigningKey.load(p).public))
            except KeyFileError as e:
                errors.append(str(e))
    return keys, errors
