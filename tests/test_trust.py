"""Trust anchors: which keys may sign under which prefixes, the trust file and CLI, signed put
and verified get, a node dropping forgeries."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from ccn.cli import main
from ccn.client import connect
from ccn.errors import NoRoute, VerificationError
from ccn.fetch import LATEST_FRESHNESS_RETRIES
from ccn.keys import SigningKey, generate_key, key_path, load_key, short_id
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.store.objects import Version, decode, encode
from ccn.testing import NodeProcess, free_port, node_in_process, stop_all, wait_ready
from ccn.trust import Anchors, TrustFileError, UntrustedVersion

# -- anchors ---------------------------------------------------------------------------------


def test_anchors_longest_prefix_decides(version: Callable[..., Version]) -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    anchors = Anchors([(Name.parse("/pub"), alice.public), (Name.parse("/pub/bob"), bob.public)])
    assert anchors.check(alice.sign(version("/pub/doc"))) == Name.parse("/pub")
    assert anchors.check(bob.sign(version("/pub/bob/x"))) == Name.parse("/pub/bob")
    assert anchors.check(version("/elsewhere")) is None  # not covered: not checked
    with pytest.raises(UntrustedVersion) as refused:
        anchors.check(alice.sign(version("/pub/bob/x")))
    assert str(refused.value) == (  # the signer and the key expected, as ccn trust list shows
        f"/pub/bob/x/v1 is signed by key {short_id(alice.id)}, not trusted for /pub/bob "
        f"(which trusts key {short_id(bob.id)}; see ccn trust list)"
    )
    with pytest.raises(UntrustedVersion, match="is not signed"):
        anchors.check(version("/pub/doc"))
    signed = alice.sign(version("/pub/doc"))
    with pytest.raises(UntrustedVersion, match="bad signature"):
        anchors.check(replace(signed, size=6))
    assert issubclass(UntrustedVersion, VerificationError)


def test_a_linked_trust_file_is_written_through(tmp_path: Path) -> None:
    # A trust file kept in a dotfiles repository, linked into ~/.ccn: 'ccn trust add'
    # replaced the link with a file (helper-54).
    (tmp_path / "dotfiles").mkdir()
    (tmp_path / "dotfiles" / "trust").write_text("# mine\n")
    (tmp_path / "trust").symlink_to(tmp_path / "dotfiles" / "trust")
    key = SigningKey.generate()
    anchors = Anchors.load(tmp_path / "trust")
    anchors.add(Name.parse("/a"), key.public)
    anchors.save(tmp_path / "trust")
    assert (tmp_path / "trust").is_symlink()
    assert list(Anchors.load(tmp_path / "dotfiles" / "trust")) == [(Name.parse("/a"), key.public)]


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


def test_saving_keeps_the_users_comments_and_drops_only_removed_anchors(tmp_path: Path) -> None:
    """`ccn trust add` and `remove` rewrote the file from the anchors alone: the user's notes
    went."""
    a, b, c = (SigningKey.generate().public for _ in range(3))
    path = tmp_path / "trust"
    path.write_text(f"# my anchors\n\n/a {a}  # the lab's key\n# b is the old one\n/b {b}\n")
    anchors = Anchors.load(path)
    assert anchors.remove(Name.parse("/b")) == 1
    assert anchors.add(Name.parse("/c"), c)
    anchors.save(path)
    assert path.read_text() == (
        f"# my anchors\n\n/a {a}  # the lab's key\n# b is the old one\n/c {c}\n"
    )
    assert list(Anchors.load(path)) == [(Name.parse("/a"), a), (Name.parse("/c"), c)]


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
    async with node_in_process(tmp_path) as (node, uri):

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
        me = short_id(load_key("me").id)
        # ccn log says who signed each version, by the name of this user's key if it is one
        code, out, _err = await trio.to_thread.run_sync(run, "log", "/m/s")
        assert code == 0 and f"  signed by me (key {me})  previous -" in out
        # A record that names my key but whose signature does not hold (a store written to
        # behind the node's back) said "signed by me" all the same: log now checks it.
        s = Name.parse("/m/s")
        v1_id = node.refs.get(s, 1)
        assert v1_id is not None
        v1 = decode(node.store.get(v1_id))
        assert isinstance(v1, Version)
        forged = replace(v1, name=Name.parse("/m/forged"))  # the signature is /m/s's
        node.refs.compare_and_swap(forged.name, None, 1, node.store.put_object(forged))
        node.on_published(forged.name)
        code, out, _err = await trio.to_thread.run_sync(run, "log", "/m/forged")
        assert code == 0 and f"  BAD SIGNATURE (names me's key {me}: forged or altered)" in out
        assert "  unsigned  previous -" in (await trio.to_thread.run_sync(run, "log", "/m/u"))[1]
        assert run("trust", "add", "/m", public)[0] == 0
        assert run("trust", "list")[1] == f"/m  {public}  id {me}\n"
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


async def test_cli_pin_checks_the_trust_file_as_get_does(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ccn pin of a version published elsewhere fetches it: under a trusted prefix it must be
    validly signed, or nothing is pinned (one error line); a trusted one is pinned."""
    key = generate_key("me")
    src = tmp_path / "f.txt"
    src.write_bytes(b"pinned content\n" * 100)
    async with node_in_process(tmp_path, "P", tcp=True) as (p_node, p_uri):
        async with connect(p_uri) as c:
            await c.publish(src, "/m/u")
            await c.publish(src, "/m/s", key=key_path("me"))
        routes = [(Name.parse("/m"), str(p_node.bound[1]))]
        async with node_in_process(tmp_path, "C", routes=routes) as (c_node, c_uri):

            def run(*args: str) -> tuple[int, str, str]:
                code = _cli(c_uri, *args)
                out, err = capsys.readouterr()
                return code, out, err

            assert run("trust", "add", "/m", str(key.public))[0] == 0
            code, _out, err = await trio.to_thread.run_sync(run, "pin", "/m/u/v1")
            assert code == 1
            assert err == "ccn: error: /m/u/v1 is not signed, but /m requires a trusted key\n"
            code, out, err = await trio.to_thread.run_sync(run, "pin", "/m/s")
            assert (code, out, err) == (0, "pinned /m/s/v1\n", "")
            assert [p.name for p in c_node.refs.pins()] == [Name.parse("/m/s")]


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.01)


async def test_node_anchor_drops_forged_versions(
    tmp_path: Path, version: Callable[..., Version]
) -> None:
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
            good = key.sign(version("/f/doc", 1))
            forged = replace(good, size=99)
            unsigned = version("/f/doc", 2)
            pit = node.forwarder.pit
            for nonce, (record, ok) in enumerate(
                ((forged, False), (unsigned, False), (good, True))
            ):
                name = record.full_name
                interest = Interest(name, nonce)  # a nonce each: a Nacked one is a dead nonce
                got: list[object] = []
                untrusted = node.drops["untrusted"]
                consumer.send(interest, got.append)

                def forwarded(interest: Interest = interest) -> bool:
                    entry = pit.find(interest)
                    return entry is not None and fake_id in entry.out_records

                def handled(got: list[object] = got, untrusted: int = untrusted) -> bool:
                    return bool(got) or node.drops["untrusted"] > untrusted

                await _until(forwarded)  # the answer is not unsolicited
                fake.face.send(Data(name, encode(record), 1000))
                await _until(handled)  # delivered, or dropped as untrusted

                def answered(got: list[object] = got) -> bool:
                    return bool(got)

                await _until(answered)  # and then Nacked "refused"
                (answer,) = got
                assert (type(answer) is Data) is ok, name
                if not ok:
                    assert type(answer) is Nack and answer.reason is NackReason.REFUSED
                consumer.forget(interest)
            status = node.status()
            assert status["drops"]["untrusted"] == 2
            cs = node.forwarder.cs
            cached = cs.lookup(Interest(Name.parse("/f/doc"), 1, can_be_prefix=True), 0.0)
            assert cached is not None and cached.content == encode(good)
            assert cs.lookup(Interest(unsigned.full_name, 1), 0.0) is None
            assert status["limits"]["trust_anchors"] == 1


async def test_a_node_given_anchors_does_not_answer_forgeries_it_saw_before(
    tmp_path: Path,
) -> None:
    """Node C, without anchors, fetches Mallory's /p/doc/v1 and remembers it (versions seen).
    Restarted with an anchor for Alice's key and a route to Alice, it must not answer /p/doc/v1
    (nor /p/doc, "newest seen") with Mallory's record from that memory: the Interest goes on to
    Alice, and a consumer that relies on the node's anchors gets Alice's version."""
    home = tmp_path / "home"
    alice = generate_key("alice", home)
    generate_key("mallory", home)
    honest, forged = tmp_path / "honest.bin", tmp_path / "forged.bin"
    honest.write_bytes(b"alice's talk\n" * 5000)
    forged.write_bytes(b"mallory's talk\n" * 5000)
    p = Name.parse("/p")
    trust = [f"/p={alice.public}"]
    with trio.fail_after(60):
        async with (
            node_in_process(tmp_path, "A", tcp=True) as (a_node, a_uri),
            node_in_process(tmp_path, "M", tcp=True) as (m_node, m_uri),
        ):
            async with connect(a_uri) as c:
                await c.publish(honest, "/p/doc", key=key_path("alice", home))
            async with connect(m_uri) as c:
                await c.publish(forged, "/p/doc", key=key_path("mallory", home))
            to_m = [(p, str(m_node.bound[1]))]
            async with (
                node_in_process(tmp_path, "C", routes=to_m) as (_c, c_uri),
                connect(c_uri) as c,
            ):
                assert await c.get("/p/doc/v1") == forged.read_bytes()
            to_a = [(p, str(a_node.bound[1]))]
            async with (
                node_in_process(tmp_path, "C", routes=to_a, trust=trust) as (c_node, c_uri),
                connect(c_uri) as c,
            ):
                assert c_node.status()["cache"]["versions"] == 1  # it remembers Mallory's
                assert await c.get("/p/doc/v1") == honest.read_bytes()
            async with (
                node_in_process(tmp_path, "C", trust=trust) as (c_node, c_uri),
                connect(c_uri) as c,
            ):
                with pytest.raises(NoRoute):  # no producer: only "newest seen" could answer
                    await c.get("/p/doc")


def test_node_config_rejects_bad_anchor(tmp_path: Path) -> None:
    from ccn.config import ConfigError, NodeConfig

    with pytest.raises(ConfigError):
        NodeConfig.from_mapping({"trust": ["/a=ed25519:00"]})
    with pytest.raises(ConfigError, match="max_faces"):
        NodeConfig.from_mapping({"max_faces": 0})


def test_trust_adds_at_the_same_time_keep_every_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two `ccn trust add` at once each read the file, added theirs and saved: the last to
    # save lost the other's anchor. Here each reads, then dawdles before saving.
    import threading
    import time

    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    real_load = Anchors.load.__func__  # type: ignore[attr-defined]

    def slow_load(cls: type[Anchors], path: Path | None = None) -> Anchors:
        anchors: Anchors = real_load(cls, path)
        time.sleep(0.2)
        return anchors

    monkeypatch.setattr(Anchors, "load", classmethod(slow_load))
    keys = [SigningKey.generate().public for _ in range(4)]
    codes: list[int] = []
    threads = [
        threading.Thread(
            target=lambda argv: codes.append(main(argv)),
            args=(["trust", "add", f"/p{i}", str(k)],),
        )
        for i, k in enumerate(keys)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert codes == [0, 0, 0, 0]
    monkeypatch.undo()
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    assert sorted(str(p) for p, _k in Anchors.load()) == ["/p0", "/p1", "/p2", "/p3"]


# -- refusals, with real node processes ------------------------------------------------------


def _ccn(*args: str) -> list[str]:
    return [sys.executable, "-m", "ccn", *args]


async def _node(label: str, work: Path, *args: str, config: str = "") -> NodeProcess:
    cmd = _ccn("node", "--no-discovery", "--store", str(work / label))
    cmd += ["--listen", f"unix://{work}/{label}.sock", *args]
    if config:
        (work / f"{label}.toml").write_text(config)
        cmd += ["--config", str(work / f"{label}.toml")]
    log = open(work / f"{label}.log", "wb")  # noqa: SIM115 - owned by the child
    proc = await trio.lowlevel.open_process(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    node = NodeProcess(label, f"unix://{work}/{label}.sock", proc)
    await wait_ready(node, work)
    return node


async def _ccn_run(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        _ccn("--node", node.uri, *args), capture_stdout=True, capture_stderr=True, check=False
    )


async def test_a_node_that_refuses_an_answer_says_so_downstream(home: Path, tmp_path: Path) -> None:
    """Node C trusts Alice for /p and its only route for /p is Mallory, who publishes /p/doc
    under his own key. C refuses Mallory's version record and answers its consumer with a
    "refused" Nack at once: ``ccn get`` says the answer was refused (one line, exit 1), not
    "no answer in time" after its retries; nothing is cached or delivered."""
    alice = generate_key("alice")
    generate_key("mallory")
    src = tmp_path / "forged.bin"
    src.write_bytes(b"mallory's talk\n" * 5000)
    port = free_port()
    nodes: list[NodeProcess] = []
    try:
        with trio.fail_after(60):
            m = await _node("M", tmp_path, "--listen", f"tcp://127.0.0.1:{port}")
            nodes.append(m)
            c = await _node(
                "C",
                tmp_path,
                "--route",
                f"/p=tcp://127.0.0.1:{port}",
                config=f'trust = ["/p={alice.public}"]\n',
            )
            nodes.append(c)
            put = await _ccn_run(m, "put", "--key", "mallory", str(src), "/p/doc")
            assert put.returncode == 0, put.stderr
            for name in ("/p/doc", "/p/doc/v1"):
                # at most one retransmission's wait: the Nack comes at once, a timeout does not
                with trio.fail_after(LATEST_FRESHNESS_RETRIES * 4 + 2):
                    got = await _ccn_run(c, "get", name, "-o", str(tmp_path / "out"))
                err = got.stderr.decode()
                assert got.returncode == 1, err
                assert err.count("\n") == 1, err
                assert err.startswith(f"ccn: error: {name}: the answer was refused by a node"), err
                assert "trust anchors reject" in err and "no answer" not in err
                assert not (tmp_path / "out").exists()
            async with connect(c.uri) as client:
                status = await client.status()
            assert status["drops"]["untrusted"] >= 2
            assert status["forwarder"]["refused"] >= 2
            assert status["cs"]["entries"] == 0  # nothing of Mallory's was cached
    finally:
        await stop_all(nodes)


async def test_a_refused_latest_falls_back_to_the_trusted_publishers_newest(
    home: Path, tmp_path: Path
) -> None:
    """Only the user's trust file anchors /p (to Alice); node C has no anchors, and its first
    next hop for /p is Mallory, who publishes /p/doc v1..v3 under his own key (Alice has v1
    and v2). ``ccn get /p/doc`` used to fail on Mallory's v3 (C answered it again from its
    CS at every retry); now the client tells C it refused that record, C refuses it from
    Mallory and asks Alice, and the get takes Alice's v2 with a note naming the refusal."""
    alice = generate_key("alice")
    generate_key("mallory")
    honest, forged = tmp_path / "honest.bin", tmp_path / "forged.bin"
    honest.write_bytes(b"alice's talk\n" * 5000)
    forged.write_bytes(b"mallory's talk\n" * 5000)
    a_port, m_port = free_port(), free_port()
    nodes: list[NodeProcess] = []
    try:
        with trio.fail_after(90):
            a = await _node("A", tmp_path, "--listen", f"tcp://127.0.0.1:{a_port}")
            nodes.append(a)
            m = await _node("M", tmp_path, "--listen", f"tcp://127.0.0.1:{m_port}")
            nodes.append(m)
            for node, key, src, times in ((a, "alice", honest, 2), (m, "mallory", forged, 3)):
                for _ in range(times):
                    put = await _ccn_run(node, "put", "--key", key, str(src), "/p/doc")
                    assert put.returncode == 0, put.stderr
            c = await _node(
                "C",
                tmp_path,
                "--route",
                f"/p=tcp://127.0.0.1:{m_port}",
                config='strategy = "best-route"\n',
            )
            nodes.append(c)
            # Alice second: best-route asks Mallory first
            added = await _ccn_run(
                c, "route", "add", "/p", f"tcp://127.0.0.1:{a_port}", "--cost", "10"
            )
            assert added.returncode == 0, added.stderr
            assert (await _ccn_run(c, "trust", "add", "/p", str(alice.public))).returncode == 0
            got = await _ccn_run(c, "get", "/p/doc", "-o", str(tmp_path / "out"))
            err = got.stderr.decode()
            assert got.returncode == 0, err
            assert (tmp_path / "out").read_bytes() == honest.read_bytes()
            assert "/p/doc/v3 is signed by key" in err and "refused; /p/doc/v2 is the newest" in err
            async with connect(c.uri) as client:
                status = await client.status()
            assert status["refused_versions"] == 1
            assert status["limits"]["refused_versions"] == 1024
            assert status["forwarder"]["refused"] >= 1  # Mallory's answer, refused from upstream
            # asked for by its number now, v3 is refused by C, for the user's trust file: the
            # error used to blame "a node on the way" and "its trust anchors" (C has none)
            v3 = await _ccn_run(c, "get", "/p/doc/v3", "-o", str(tmp_path / "v3"))
            assert v3.returncode == 1
            (line,) = v3.stderr.decode().splitlines()
            assert line.startswith("ccn: error: /p/doc/v3: the answer was refused: "), line
            assert "your trust file rejects for /p" in line, line
            # and a user without the anchor is not held to it beyond the refused record
            (home / "trust").unlink()
            exact = await _ccn_run(c, "get", "/p/doc/v1", "-o", str(tmp_path / "v1"))
            assert exact.returncode == 0, exact.stderr
    finally:
        await stop_all(nodes)


def test_trust_add_on_a_full_disk_is_one_line_and_leaves_the_file_as_it_was(
    small_disk: Callable[[int], Path],
) -> None:
    # The temporary file the new trust file is written to stayed behind, and the error named
    # no file ("No space left on device").
    home = small_disk(12)  # room to set up
    env = {**os.environ, "CCN_HOME": str(home)}
    first = generate_key("a", home).public
    Anchors([(Name.parse("/a"), first)]).save(home / "trust")
    before = (home / "trust").read_bytes()
    (home / "filler").unlink()
    small_disk(0)
    add = [sys.executable, "-m", "ccn", "trust", "add", "/b", str(SigningKey.generate().public)]
    failed = subprocess.run(add, capture_output=True, text=True, env=env, timeout=30)
    assert failed.returncode == 1
    assert failed.stderr == (
        f"ccn: error: cannot write trust file {home}/trust: No space left on device\n"
    )
    assert (home / "trust").read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == [".trust.lock", "filler", "keys", "trust"]
