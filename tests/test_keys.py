"""Publisher keys: key files (private, listed, one line when bad), the public key's text form,
and what a signature covers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ccn.cli import main
from ccn.client import connect
from ccn.errors import CcnError
from ccn.keys import KeyFileError, PublicKey, SigningKey, generate_key, key_path, load_key
from ccn.name import Name
from ccn.store.objects import Version
from ccn.testing import node_in_process

# -- key files ------------------------------------------------------------------------------------


def test_key_files_are_private_and_round_trip(home: Path) -> None:
    key = generate_key("alice")
    path = key_path("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_key("alice").public == key.public
    assert PublicKey.parse((path.parent / "alice.pub").read_text()) == key.public
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key("alice")
    with pytest.raises(KeyFileError, match="bad key name"):
        generate_key("../evil")
    with pytest.raises(KeyFileError, match="no key named"):
        load_key("bob")


def test_key_list_shows_the_good_keys_beside_a_bad_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = generate_key("alice")
    generate_key("bob")
    key_path("bob").write_bytes(b"not a key")
    capsys.readouterr()
    assert main(["key", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == f"alice  {alice.public}  id {alice.id.hex()[:16]}\n"
    assert err.count("\n") == 1 and err.startswith("ccn: error: ") and "bob.key" in err


#: A valid PKCS#8 key on a curve the ``cryptography`` package does not support (SM2): loading it
#: raises ``UnsupportedAlgorithm``, which is neither a ValueError nor a TypeError.
SM2_PEM = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgLtJnPBhKiHb5WbyA
NEGz71QD1wotYqnVPb4A1xqMBluhRANCAAS26ACGR5PI/PWEMSZjB9ljmMZ1ir/J
ynJnORLGcsFKxyfNY9P6ICsWaqHXJbiJdkV+DN6h/8rmbc1Tn6pd1JQm
-----END PRIVATE KEY-----
"""


async def test_a_file_that_is_not_an_ed25519_key_is_one_line(tmp_path: Path) -> None:
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    x25519 = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    not_ed25519 = "not an Ed25519 private key (PEM, as ccn key gen writes)"
    cases = {
        "garbage": (b"not a key\n", not_ed25519),
        "sm2": (SM2_PEM, not_ed25519),
        "x25519": (x25519, not_ed25519),
        "encrypted": (encrypted, "the key is encrypted (ccn needs it unencrypted)"),
    }
    for label, (data, why) in cases.items():
        path = tmp_path / f"{label}.pem"
        path.write_bytes(data)
        with pytest.raises(KeyFileError) as e:
            SigningKey.load(path)
        assert str(e.value) == f"{path}: {why}"
    # The node loads the key itself: a client handing it such a file gets an error, and the
    # node lives on (an UnsupportedAlgorithm used to escape and stop it).
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    async with node_in_process(tmp_path) as (_node, uri):
        async with connect(uri) as c:
            with pytest.raises(CcnError, match="not an Ed25519 private key"):
                await c.publish(src, "/k/sm2", key=tmp_path / "sm2.pem")
        async with connect(uri) as c:
            assert (await c.publish(src, "/k/plain"))["name"] == "/k/plain/v1"


def test_public_key_text_form() -> None:
    key = SigningKey.generate()
    assert PublicKey.parse(str(key.public)) == key.public
    for bad in ("", "ed25519:zz", "ed25519:" + "00" * 31, "rsa:" + "00" * 32):
        with pytest.raises(KeyFileError):
            PublicKey.parse(bad)


def test_signature_covers_name_number_and_content(version: Callable[..., Version]) -> None:
    key = SigningKey.generate()
    signed = key.sign(version())
    assert signed.publisher == key.id
    assert key.public.verify(signed)
    # replayed under another name or number, or pointing at other content: fails
    for forged in (
        replace(signed, name=Name.parse("/pub/other")),
        replace(signed, number=2),
        replace(signed, root=bytes(32)),
        replace(signed, content_hash=bytes(range(32))),
    ):
        assert not key.public.verify(forged)
    assert not SigningKey.generate().public.verify(signed)
    assert not key.public.verify(version())


def test_a_key_cut_short_by_a_full_disk_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A partial NAME.key used to stay after a failed write, and `ccn key gen NAME` then said
    # the key already exists (and no key could be loaded from it).
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ccn.keys.os.fsync", full)
    with pytest.raises(KeyFileError, match=r"cannot write key .*alice\.key: No space left"):
        generate_key("alice", tmp_path)
    assert not key_path("alice", tmp_path).exists()
    monkeypatch.undo()
    key = generate_key("alice", tmp_path)
    assert load_key("alice", tmp_path).public == key.public


def test_key_gen_on_a_full_disk_is_one_line_and_leaves_no_half_key(
    small_disk: Callable[[int], Path],
) -> None:
    # Room for the private key but not for its .pub: NAME.key stayed without NAME.pub (and
    # 'ccn key gen NAME' again said it exists), and the error was a bare "No space left on
    # device", naming no file.
    home = small_disk(1)
    env = {**os.environ, "CCN_HOME": str(home)}
    gen = [sys.executable, "-m", "ccn", "key", "gen", "k"]
    failed = subprocess.run(gen, capture_output=True, text=True, env=env, timeout=30)
    assert failed.returncode == 1
    assert failed.stderr == (
        f"ccn: error: cannot write key {home}/keys/k.key: No space left on device\n"
    )
    assert list((home / "keys").iterdir()) == []
    (home / "filler").unlink()
    made = subprocess.run(gen, capture_output=True, text=True, env=env, timeout=30)
    assert made.returncode == 0, made.stderr
    assert load_key("k", home).public.id.hex() in made.stdout
