"""Publisher keys and trust anchors: signing, verification, the CLI, a node dropping forgeries."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ccn.cli import main
from ccn.client import connect
from ccn.errors import CcnError, VerificationError
from ccn.keys import KeyFileError, PublicKey, SigningKey, generate_key, key_path, load_key
from ccn.name import Name
from ccn.packet import Data, Interest
from ccn.store.objects import Kind, Version, encode
from ccn.testing import node_in_process
from ccn.trust import Anchors, TrustFileError, UntrustedVersion

ROOT_ID = bytes(range(32))


def _version(name: str = "/pub/doc", number: int = 1) -> Version:
    return Version(Name.parse(name), number, ROOT_ID, Kind.BLOB, 5, bytes(32), 1, None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# -- keys ------------------------------------------------------------------------------------


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
    assert out == f"alice  {alice.public}\n"
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


def test_signature_covers_name_number_and_content() -> None:
    key = SigningKey.generate()
    signed = key.sign(_version())
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
    assert not key.public.verify(_version())


# -- anchors ---------------------------------------------------------------------------------


def test_anchors_longest_prefix_decides() -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    anchors = Anchors([(Name.parse("/pub"), alice.public), (Name.parse("/pub/bob"), bob.public)])
    assert anchors.check(alice.sign(_version("/pub/doc"))) == Name.parse("/pub")
    assert anchors.check(bob.sign(_version("/pub/bob/x"))) == Name.parse("/pub/bob")
    assert anchors.check(_version("/elsewhere")) is None  # not covered: not checked
    with pytest.raises(UntrustedVersion, match="not trusted for /pub/bob"):
        anchors.check(alice.sign(_version("/pub/bob/x")))
    with pytest.raises(UntrustedVersion, match="is not signed"):
        anchors.check(_version("/pub/doc"))
    signed = alice.sign(_version("/pub/doc"))
    with pytest.raises(UntrustedVersion, match="bad signature"):
        anchors.check(replace(signed, size=6))
    assert issubclass(UntrustedVersion, VerificationError)


def test_trust_file_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    anchors = Anchors()
    assert anchors.add(Name.parse("/a"), key.public)
    assert not anchors.add(Name.parse("/a"), key.public)
    anchors.save(tmp_path / "trust")
    again = Anchors.load(tmp_path / "trust")
    assert list(again) == [(Name.parse("/a"), key.public)]
    assert again.remove(Name.parse("/a")) == 1 and len(again) == 0
    (tmp_path / "bad").write_text("/a not-a-key\n")
    with pytest.raises(TrustFileError, match="bad:1"):
        Anchors.load(tmp_path / "bad")
    assert len(Anchors.load(tmp_path / "missing")) == 0


# -- end to end through a node ---------------------------------------------------------------


async def test_signed_put_and_verified_get(home: Path, tmp_path: Path) -> None:
    key = generate_key("pub")
    other = SigningKey.generate()
    src = tmp_path / "f.txt"
    src.write_bytes(b"signed content\n" * 1000)
    async with node_in_process(tmp_path) as (_node, uri):
        async with connect(uri) as c:
            await c.publish(src, "/t/signed", key=key_path("pub"))
            await c.publish(src, "/t/plain")
        trusted = Anchors([(Name.parse("/t"), key.public)])
        async with connect(uri, trust=trusted) as c:
            assert await c.get("/t/signed") == src.read_bytes()
            with pytest.raises(UntrustedVersion, match="not signed"):
                await c.get("/t/plain")
        wrong = Anchors([(Name.parse("/t"), other.public)])
        async with connect(uri, trust=wrong) as c:
            with pytest.raises(UntrustedVersion, match="not trusted"):
                await c.get("/t/signed/v1")
        async with connect(uri) as c:  # no anchors: hashes only
            assert await c.get("/t/plain") == src.read_bytes()


def _cli(uri: str, *args: str) -> int:
    return main(["--node", uri, *args])


async def test_cli_key_trust_put_get(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    assert main(["key", "gen", "me"]) == 0
    public = capsys.readouterr().out.splitlines()[0]
    assert public.startswith("ed25519:")
    async with node_in_process(tmp_path) as (_node, uri):

        def run(*args: str) -> tuple[int, str, str]:
            code = _cli(uri, *args)
            out, err = capsys.readouterr()
            return code, out, err

        assert (await trio.to_thread.run_sync(run, "put", "--key", "me", str(src), "/m/s"))[0] == 0
        assert (await trio.to_thread.run_sync(run, "put", str(src), "/m/u"))[0] == 0
        # no anchor yet: fetched, verified by hash, with a note
        code, _out, err = await trio.to_thread.run_sync(
            run, "get", "/m/u", "-o", str(tmp_path / "o")
        )
        assert code == 0 and "not verified" in err
        assert run("trust", "add", "/m", public)[0] == 0
        assert public in run("trust", "list")[1]
        code, _out, err = await trio.to_thread.run_sync(
            run, "get", "/m/s", "-o", str(tmp_path / "s")
        )
        assert code == 0 and "not verified" not in err
        assert (tmp_path / "s").read_bytes() == b"hello"
        code, _out, err = await trio.to_thread.run_sync(
            run, "get", "/m/u", "-o", str(tmp_path / "u")
        )
        assert code == 1
        assert err.count("\n") == 1 and "ccn: error: /m/u/v1 is not signed" in err
        assert not (tmp_path / "u").exists()
        code, _out, err = await trio.to_thread.run_sync(
            run, "put", "--key", "nope", str(src), "/m/s"
        )
        assert code == 1 and "no key named 'nope'" in err
        assert run("trust", "remove", "/m")[0] == 0
        assert run("trust", "list")[1] == ""


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.01)


async def test_node_anchor_drops_forged_versions(tmp_path: Path) -> None:
    """A version record under a node-anchored prefix that is not validly signed never reaches the
    forwarder: not cached, not delivered; a valid one passes."""
    key = SigningKey.generate()
    async with (
        node_in_process(tmp_path, trust=[f"/f={key.public}"]) as (node, uri),
        connect(uri) as consumer,
    ):
        await consumer.status()
        before = set(node.faces)
        async with connect(uri) as fake:
            await fake.status()
            (fake_id,) = set(node.faces) - before
            node.forwarder.add_route(Name.parse("/f"), fake_id, 0)
            good = key.sign(_version("/f/doc", 1))
            forged = replace(good, size=99)
            unsigned = _version("/f/doc", 2)
            pit = node.forwarder.pit
            for version, ok in ((forged, False), (unsigned, False), (good, True)):
                name = version.full_name
                interest = Interest(name, 7 + version.number)
                got: list[object] = []
                untrusted = node.drops["untrusted"]
                consumer.send(interest, got.append)

                def forwarded(interest: Interest = interest) -> bool:
                    entry = pit.find(interest)
                    return entry is not None and fake_id in entry.out_records

                def handled(got: list[object] = got, untrusted: int = untrusted) -> bool:
                    return bool(got) or node.drops["untrusted"] > untrusted

                await _until(forwarded)  # the answer is not unsolicited
                fake.face.send(Data(name, encode(version), 1000))
                await _until(handled)  # delivered, or dropped as untrusted
                assert bool(got) is ok, name
                consumer.forget(Interest(name, 7 + version.number))
            status = node.status()
            assert status["drops"]["untrusted"] == 2
            cs = node.forwarder.cs
            cached = cs.lookup(Interest(Name.parse("/f/doc"), 1, can_be_prefix=True), 0.0)
            assert cached is not None and cached.content == encode(good)
            assert cs.lookup(Interest(unsigned.full_name, 1), 0.0) is None
            assert status["limits"]["trust_anchors"] == 1


def test_node_config_rejects_bad_anchor(tmp_path: Path) -> None:
    from ccn.config import ConfigError, NodeConfig

    with pytest.raises(ConfigError):
        NodeConfig.from_mapping({"trust": ["/a=ed25519:00"]})
    with pytest.raises(ConfigError, match="max_faces"):
        NodeConfig.from_mapping({"max_faces": 0})
