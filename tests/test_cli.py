"""The ``ccn`` command as a user runs it: real processes, one-line errors, exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import trio

from ccn.cli import _face_text, _stopped, build_parser, main
from ccn.config import check_store_dir
from ccn.name import Name
from ccn.testing import free_port, no_ipv6_loopback, node_in_process, store_with_a_newer_index

CCN = [sys.executable, "-m", "ccn"]
#: The NDN listener port of each node the ``node`` fixture runs, by its socket URI.
NDN_PORTS: dict[str, int] = {}


def run(
    *args: str, node: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if node:
        env["CCN_NODE"] = node
    return subprocess.run(
        [*CCN, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("cli")
    sock = f"unix://{tmp}/n.sock"
    proc = subprocess.Popen(
        [
            *CCN,
            "node",
            "--store",
            str(tmp / "store"),
            "--listen",
            sock,
            "--ndn",
            "tcp://127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        NDN_PORTS[sock] = int(line.rsplit(":", 1)[1])
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0  # SIGTERM is a clean shutdown


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ccn: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_get_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    # -o a link into a dotfiles repository replaced the link with a file, and the file it
    # pointed at kept its old content; cp writes through (helper-54).
    sock = f"unix://{tmp_path}/n.sock"
    node_proc = _node_process(tmp_path / "store", "--listen", sock)
    try:
        src = tmp_path / "in.bin"
        src.write_bytes(b"new content")
        assert run("put", str(src), "/symlinked/rc", node=sock).returncode == 0
        (tmp_path / "dotfiles").mkdir()
        target = tmp_path / "dotfiles" / "rc"
        target.write_bytes(b"old")
        (tmp_path / "rc").symlink_to(target)
        got = run("get", "/symlinked/rc", "-o", str(tmp_path / "rc"), node=sock)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "rc").is_symlink() and target.read_bytes() == b"new content"
    finally:
        node_proc.terminate()
        node_proc.wait(timeout=10)
        assert node_proc.stdout is not None
        node_proc.stdout.close()


def test_put_get_ls_status(node: str, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(100_000))
    put = run("put", str(src), "/cli/file", node=node)
    assert put.returncode == 0, put.stderr
    name, oid = put.stdout.split()
    assert name == "/cli/file/v1" and len(oid) == 64
    got = run("get", "/cli/file", "-o", str(tmp_path / "out.bin"), node=node)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    stdout = subprocess.run(
        [*CCN, "--node", node, "get", "/cli/file/v1", "-o", "-"], capture_output=True, timeout=60
    )
    assert stdout.returncode == 0 and stdout.stdout == src.read_bytes()
    default_out = run("get", "/cli/file", node=node, cwd=tmp_path)
    assert default_out.returncode == 0 and (tmp_path / "file").read_bytes() == src.read_bytes()
    # (under /cli/file: the module's node is shared, and other tests publish under /cli first
    # when the workers happen to run them first)
    ls = run("ls", "/cli/file", node=node)
    assert ls.stdout.strip() == "/cli/file  v1"
    status = run("status", "--json", node=node)
    assert '"cs"' in status.stdout and '"faces"' in status.stdout
    text = run("status", node=node).stdout
    assert "content store" in text
    assert re.search(  # the store's files, and the node's own merging of them
        r"^store: \d+ objects, [0-9.]+ KiB in \d+ packs? and 0 loose objects; automatic merge "
        r"not run yet \(at more than 50 older than 3600 s\)$",
        text,
        re.M,
    ), text
    assert "listening for NDN apps: tcp://127.0.0.1:" in text  # was only in --json
    faces = json.loads(run("face", "list", "--json", node=node).stdout)
    assert faces and all({"id", "remote", "in_interests", "dropped"} <= f.keys() for f in faces)
    lines = run("face", "list", node=node).stdout.splitlines()
    # each run of ccn is a face of its own: the rest are the same
    assert [int(line.split()[0]) for line in lines][:-1] == [f["id"] for f in faces][:-1]


def test_no_node_running(tmp_path: Path) -> None:
    one_line_error(run("status", node=f"unix://{tmp_path}/none.sock"), "cannot reach")
    one_line_error(run("get", "/a", node="tcp://127.0.0.1:1"), "cannot reach")


def test_malformed_name(node: str) -> None:
    one_line_error(run("get", "no-slash", node=node), "must start with '/'")
    one_line_error(run("get", "/a//b", node=node), "empty component")


def test_no_route_fails_fast(node: str) -> None:
    one_line_error(run("get", "/nowhere/x", node=node), "no route")


def test_not_found(node: str, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    assert run("put", str(src), "/cli/nf", node=node).returncode == 0
    one_line_error(run("get", "/cli/nf/v7", node=node), "not found")


def test_unwritable_output(node: str, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    assert run("put", str(src), "/cli/uw", node=node).returncode == 0
    one_line_error(run("get", "/cli/uw", "-o", "/proc/version/nope", node=node))


def test_put_missing_file(node: str, tmp_path: Path) -> None:
    one_line_error(run("put", "/no/such/file", "/cli/x", node=node), "no such file")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # said "no such file or directory"
    one_line_error(run("put", str(loop), "/cli/x", node=node), "too many levels of symbolic")


@pytest.mark.parametrize(
    ("args", "prog", "fragment"),
    [
        (("get",), "ccn get", "required: name"),
        (("route", "add", "/x"), "ccn route add", "required: uri"),
        (("bogus",), "ccn", "invalid choice"),
        (("demo", "--size-mib", "x"), "ccn demo", "invalid int value"),
        (("status", "--json", "--bogus"), "ccn status", "unrecognized arguments: --bogus"),
        (("route", "list", "/a", "/b"), "ccn route list", "unrecognized arguments: /b"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    args: tuple[str, ...], prog: str, fragment: str
) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: ") and fragment in lines[0]
    assert lines[0].endswith(f"(see '{prog} --help')")


def test_help_states_the_defaults_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--node`` defaults to $CCN_NODE, else the socket under $CCN_HOME: the help names that
    socket, not $CCN_NODE's value a second time; ``--store`` names the store $CCN_HOME gives."""
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CCN_NODE", "tcp://192.0.2.7:6464")
    monkeypatch.setenv("COLUMNS", "200")

    def help_of(*args: str) -> str:
        with pytest.raises(SystemExit):
            main([*args, "--help"])
        return " ".join(capsys.readouterr().out.split())

    top = help_of()
    assert f"$CCN_NODE or unix://{tmp_path}/home/node.sock" in top
    assert "192.0.2.7" not in top
    node_help = help_of("node")
    assert f"store directory (default {tmp_path}/home/store)" in node_help
    assert "route a prefix to a neighbour (tcp://, udp://HOST:PORT or unix:///PATH)" in node_help


def loaded_by(home: Path, *args: str, node: str | None = None) -> set[str]:
    """The modules a fresh ``ccn ARGS`` process has loaded when its command has run (its own
    interpreter, as a user's: what the pytest process has imported does not count)."""
    out = home / "modules.json"
    script = (
        "import json, sys\n"
        "from ccn.launch import main\n"
        "out, sys.argv = sys.argv[1], ['ccn', *sys.argv[2:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "open(out, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, CCN_HOME=str(home))
    env.pop("CCN_NODE", None)
    if node:
        env["CCN_NODE"] = node
    subprocess.run(
        [sys.executable, "-c", script, str(out), *args],
        env=env,
        cwd=home,
        capture_output=True,
        timeout=60,
        check=True,
    )
    loaded: set[str] = set(json.loads(out.read_text()))
    return loaded


def test_each_command_loads_only_what_it_uses(node: str, tmp_path: Path) -> None:
    # Every ccn command pays at start-up for each module it imports: trio and the client were
    # half of it, cryptography and the whole store a fetch's more, for --help too. They are
    # imported by the commands that use them (ccn/cli.py); this keeps it so.
    home = tmp_path / "home"
    home.mkdir()
    anchor = "ed25519:" + "ab" * 32  # parsing an anchor needs no crypto, verifying one does
    (home / "trust").write_text(f"/elsewhere {anchor}\n")
    node_side = {"trio", "ccn.client"}
    store = {"ccn.store.objstore", "ccn.store.chunker", "ccn.store.files", "pyfastcdc"}
    never = {"ccn.node", "ccn.ndngw", "ccn.demo", "ccn.netlab", "ccn.discovery", "tomllib"}
    never |= {"cryptography", *store}

    for args in (["--help"], ["get", "--help"], ["status", "--bogus"], ["trust", "list"]):
        loaded = loaded_by(home, *args)
        assert "ccn.cli" in loaded, args
        assert loaded & (never | node_side | {"ccn.config", "ccn.fetch"}) == set(), args

    assert loaded_by(home, "key", "list") & (never | node_side) == set()  # no key files

    loaded = loaded_by(home, "status", node=node)
    assert node_side <= loaded
    assert loaded & (never | {"ccn.fetch", "ccn.trust", "ccn.config"}) == set()

    src = tmp_path / "small.txt"
    src.write_text("small")
    assert run("put", str(src), "/cli/light/small", node=node).returncode == 0
    loaded = loaded_by(home, "get", "/cli/light/small", "-o", "got.txt", node=node)
    assert (home / "got.txt").read_text() == "small"  # fetched, not failed early
    assert {"ccn.fetch", "ccn.trust", "ccn.store.objects"} <= loaded
    assert loaded & never == set()

    # a node loads the store, never the NDN gateway or discovery it is not asked for
    loaded = loaded_by(home, "node", "--config", "")
    assert loaded & {"ccn.ndngw", "ccn.discovery", "cryptography", "tomllib"} == set()


def test_bad_address_and_route_errors(node: str) -> None:
    one_line_error(run("status", node="http://x"), "scheme")
    one_line_error(
        run("route", "add", "/far", "tcp://127.0.0.1:1", node=node), "cannot reach", "refused"
    )
    one_line_error(run("route", "remove", "/far", "tcp://127.0.0.1:1", node=node), "no route")


def _spawn_node(store: Path, *flags: str) -> subprocess.Popen[str]:
    """A ``ccn node`` process with its stdout and stderr piped, as text."""
    return subprocess.Popen(
        [*CCN, "node", "--store", str(store), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_node_refuses_a_store_with_a_pack_index_of_a_newer_format(tmp_path: Path) -> None:
    # The node started and served the store with that pack's objects missing; only fsck
    # named the index. Now the start is refused in one line naming it, and nothing goes.
    store = tmp_path / "s"
    idx = store_with_a_newer_index(store)
    raw = idx.read_bytes()
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    proc = _spawn_node(store, "--listen", f"unix://{tmp_path}/n.sock", "--no-discovery")
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # it started: stop it
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0 and "listening" not in out
    assert err.splitlines() == [
        f"ccn: error: {idx} is pack index format 2, written by a newer ccn; this ccn reads "
        "format 1: run a ccn that reads it (the store is left as it is)"
    ]
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert idx.read_bytes() == bytes(raw)


def test_a_route_to_a_node_that_is_down_is_reported_at_start(tmp_path: Path) -> None:
    flags = ["--listen", f"unix://{tmp_path}/n.sock", "--no-discovery"]
    proc = _spawn_node(tmp_path / "s", *flags, "--route", "/far=tcp://127.0.0.1:1")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "listening on" in proc.stdout.readline()
        warning = proc.stderr.readline()
        assert warning.startswith("ccn node: cannot reach a ccn node at tcp://127.0.0.1:1: ")
        assert "retrying in the background" in warning
        listed = run("route", "list", node=f"unix://{tmp_path}/n.sock")
        assert "/far  tcp://127.0.0.1:1 is down, retrying: cannot reach" in listed.stdout
        status = run("status", node=f"unix://{tmp_path}/n.sock")  # status says so too
        assert "  /far  tcp://127.0.0.1:1 is down, retrying: cannot reach" in status.stdout
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    assert proc.returncode == 0


def test_a_udp_route_nobody_listens_for_is_reported_and_fails_fast(tmp_path: Path) -> None:
    # The UDP twin of the test above: the kernel's "port unreachable" takes the route down.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        far = f"udp://127.0.0.1:{s.getsockname()[1]}"
    sock = f"unix://{tmp_path}/n.sock"
    flags = ["--listen", sock, "--no-discovery", "--route", f"/far={far}"]
    proc = _spawn_node(tmp_path / "s", *flags)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "listening on" in proc.stdout.readline()
        refused = f"cannot reach a ccn node at {far}: Connection refused"
        assert select.select([proc.stderr], [], [], 10)[0], "the node said nothing"
        assert proc.stderr.readline() == f"ccn node: {refused}; retrying in the background\n"
        env = dict(os.environ, CCN_NODE=sock)
        for name in ("/far/x", "/far/x/v1"):  # the latest version, and one version
            # it used to wait out three Interest lifetimes (12 s; 24 s for the latest)
            got = subprocess.run(
                [*CCN, "get", name, "-o", str(tmp_path / "out")],
                capture_output=True,
                text=True,
                timeout=8,
                env=env,
            )
            one_line_error(got, f"no route to {name}")
        listed = run("route", "list", node=sock)
        assert f"/far  {far} is down, retrying: {refused}" in listed.stdout
        faces = run("face", "list", node=sock)
        assert "unreachable" in faces.stdout and "(Connection refused)" in faces.stdout
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    assert proc.returncode == 0


def test_an_interface_discovery_cannot_use_is_reported_at_start(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('interfaces = ["ccn-nosuch0"]\n')
    flags = ["--config", str(config), "--listen", f"unix://{tmp_path}/n.sock"]
    proc = _spawn_node(tmp_path / "s", *flags)
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
    finally:
        proc.terminate()  # the warnings are printed before the node waits for signals
        _, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert err == (
        "ccn node: interface ccn-nosuch0 is not up with an IPv4 or IPv6 link-local"
        " address; discovery will use it when it is\n"
    )


def test_route_add_list_remove(node: str, tmp_path: Path) -> None:
    # route to the node's own listener: a real neighbour, reachable
    other = tmp_path / "o.sock"
    proc = subprocess.Popen(
        [*CCN, "node", "--store", str(tmp_path / "s"), "--listen", f"unix://{other}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        added = run("route", "add", "/peer", f"unix://{other}", node=node)
        assert added.returncode == 0, added.stderr
        assert "/peer" in run("route", "list", node=node).stdout
        assert "/peer" in run("route", "list", "/peer", node=node).stdout
        assert "/peer" not in run("route", "list", "/elsewhere", node=node).stdout
        removed = run("route", "remove", "/peer", f"unix://{other}", node=node)
        assert removed.returncode == 0, removed.stderr
        assert "/peer" not in run("route", "list", node=node).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_node_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("listen = 5\n")
    one_line_error(run("node", "--config", str(bad)), "listen")
    one_line_error(run("node", "--config", str(tmp_path / "missing.toml")), "cannot read config")
    one_line_error(run("node", "--store", str(tmp_path), "--route", "nope"), "route")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(
            run("node", "--store", str(tmp_path / "s"), "--listen", f"tcp://127.0.0.1:{port}"),
            f"cannot listen on tcp://127.0.0.1:{port}: Address already in use",
        )


@pytest.mark.parametrize(
    ("listen", "route"),
    [
        ("tcp://127.0.0.1:{port}", "tcp://localhost:{port}"),
        ("tcp://0.0.0.0:{port}", "tcp://127.0.0.1:{port}"),
        ("unix://{tmp}/n.sock", "unix://{tmp}/./n.sock"),
    ],
)
def test_a_node_started_with_a_route_to_itself_says_so(
    tmp_path: Path, listen: str, route: str
) -> None:
    # It started, and every fetch under the prefix failed with "the network answered
    # duplicate": its Interests came back to it.
    port = free_port()
    listen, route = (u.format(port=port, tmp=tmp_path) for u in (listen, route))
    started = run(
        "node", "--store", str(tmp_path / "s"), "--listen", listen, "--route", f"/x={route}"
    )
    one_line_error(started, f"route /x: {route} is this node's own address", "loop")
    assert not (tmp_path / "s").exists()  # a start that failed leaves no new store


def test_progress_bar_shows_bytes_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from ccn.cli import ProgressBar

    bar = ProgressBar()
    bar(0, 10 * 1024 * 1024)
    bar(10 * 1024 * 1024, 10 * 1024 * 1024)
    bar.finish()
    err = capsys.readouterr().err
    assert "\r" in err and "100.0%" in err and "10.0 MiB / 10.0 MiB" in err
    assert "/s" in err and "ETA" in err


def test_interrupt_during_get_is_one_line(tmp_path: Path) -> None:
    # A node that accepts and never answers: Ctrl-C lands while the fetch waits inside trio.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [*CCN, "--node", f"tcp://127.0.0.1:{port}", "get", "/big", "-o", str(tmp_path / "o")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        conn, _ = silent.accept()
        with conn:
            conn.recv(4096)  # the Interest: the client is waiting for its answer
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "ccn: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_put_refuses_paths_the_node_cannot_take(node: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # the node would block opening it
    one_line_error(run("put", str(fifo), "/cli/fifo", node=node), "not a regular file")
    one_line_error(run("put", "/dev/zero", "/cli/zero", node=node), "not a regular file")
    one_line_error(run("put", "", "/cli/empty", node=node), "give the path")
    bad = tmp_path / os.fsdecode(b"bad\xff")
    bad.write_bytes(b"x")
    one_line_error(run("put", str(bad), "/cli/bad", node=node), "path is not UTF-8")
    assert "/cli/fifo" not in run("ls", "/cli", node=node).stdout  # and the node still answers


def test_get_checks_the_output_path_first(node: str, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    assert run("put", str(src), "/cli/out", node=node).returncode == 0
    one_line_error(run("get", "/cli/out", "-o", "", node=node), "-o needs a path")
    one_line_error(run("get", "/cli/out", "-o", ".", node=node, cwd=tmp_path), "is a directory")
    one_line_error(run("get", "/cli/out", "-o", f"{src}/y", node=node), "is not a directory")
    one_line_error(run("get", "/cli/out", "-o", f"{tmp_path}/no/y", node=node), "does not exist")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_error(run("get", "/cli/out", "-o", str(fifo), node=node), "not a regular file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # not replaced by a regular file
    long_name = "n" * 250  # a valid name, too long to take ".ccn-partial": fetched all the same
    assert run("get", "/cli/out", "-o", str(tmp_path / long_name), node=node).returncode == 0
    assert (tmp_path / long_name).read_bytes() == src.read_bytes()
    assert not list(tmp_path.glob("*.ccn-partial*"))
    one_line_error(  # an OSError inside trio: "path: reason", no "[Errno 36]"
        run("get", "/cli/out", "-o", str(tmp_path / ("n" * 256)), node=node),
        "File name too long",
    )


def test_default_output_name_stays_in_the_directory(node: str, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    assert run("put", str(src), "/cli/%2E%2E%2Fescaped", node=node).returncode == 0
    (tmp_path / "sub").mkdir()
    one_line_error(
        run("get", "/cli/%2E%2E%2Fescaped", node=node, cwd=tmp_path / "sub"),
        "not a plain file name",
    )
    assert not (tmp_path / "escaped").exists()
    one_line_error(run("get", "/cli/%2E%2E", node=node, cwd=tmp_path / "sub"), "plain file name")


def test_bad_values_are_refused_before_use(node: str) -> None:
    big = str(1 << 64)
    one_line_error(run("route", "add", "/r", "tcp://127.0.0.1:1", "--cost", big, node=node), "cost")
    one_line_error(run("route", "add", "/r", "tcp://127.0.0.1:1", "--cost", "-1", node=node))
    one_line_error(run("gc", "--grace", "nan", node=node), "--grace")
    one_line_error(run("demo", "--size-mib", "-1"), "--size-mib")
    one_line_error(run("demo", "--delay-ms", "-5"), "--delay-ms")
    one_line_error(run("log", "/", node=node), "no versions")
    one_line_error(run("--node", "", "status"), "--node needs an address")
    one_line_error(run("get", "/localhost/ccn/status", "-o", "-", node=node), "not a ccn version")


def test_node_flag_and_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listen = ("--listen", f"unix://{tmp_path}/n.sock", "--no-discovery")
    one_line_error(run("node", "--store", "", *listen), "--store needs a path")
    one_line_error(run("node", "--config", "", *listen), "--config needs a path")
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(run("node", "--store", str(afile), *listen), "not a directory")
    store = str(tmp_path / "s")
    one_line_error(run("node", "--store", store, "--ndn", "udp://127.0.0.1:0", *listen), "ndn")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'store = "caf\xe9"\n')
    one_line_error(run("node", "--config", str(latin1)), "not UTF-8")
    routes = tmp_path / "routes.toml"
    routes.write_text('routes = "/a=tcp://127.0.0.1:1"\n')
    one_line_error(run("node", "--config", str(routes)), "routes must be list")
    monkeypatch.setenv("CCN_HOME", str(tmp_path))
    (tmp_path / "trust").write_bytes(b"\xff\n")
    one_line_error(run("trust", "list"), "not UTF-8")


def test_node_refuses_a_directory_that_is_not_a_store(node: str, tmp_path: Path) -> None:
    # Opened as a store, ~ (say) lost the files in its tmp/ older than an hour: a store
    # removes those as crash debris.
    listen = ("--listen", f"unix://{tmp_path}/n.sock", "--no-discovery")
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "docs").mkdir()
    notes = home / "tmp" / "notes.txt"
    notes.write_text("mine")
    old = time.time() - 7200
    os.utime(notes, (old, old))
    one_line_error(run("node", "--store", str(home), *listen), "not a ccn store", "'docs'")
    one_line_error(run("node", "--store", str(home / "tmp"), *listen), "'notes.txt'")
    (home / "docs").rmdir()  # only a tmp/ of the user's: still not a store
    one_line_error(run("node", "--store", str(home), *listen), "not a ccn store", "'tmp'")
    assert notes.read_text() == "mine" and sorted(os.listdir(home)) == ["tmp"]
    # a running node's own store, and a new file system's lost+found, are fine
    check_store_dir(Path(node.removeprefix("unix://")).parent / "store")
    (tmp_path / "fs" / "lost+found").mkdir(parents=True)
    check_store_dir(tmp_path / "fs")
    # and so is a socket in it: the node's own, left there by a kill (it could not start
    # again: "not a ccn store (it holds 'node.sock')"; helper-54)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "fs" / "node.sock"))
    check_store_dir(tmp_path / "fs")


def test_interrupt_while_the_command_is_still_loading_is_one_line(tmp_path: Path) -> None:
    # Loading the command line (trio, the client) takes a few hundred ms; Ctrl-C then used to
    # print a traceback from inside an import. If the machine loads faster than the signal
    # comes, the command has failed on its own (no node there): one line either way.
    # The signal is sent once the command's own code runs (an import that follows ccn.launch,
    # seen by -X importtime): a fixed delay could land in the interpreter's start-up (a
    # "Fatal Python error" from site on a loaded machine), which no program can handle.
    proc = subprocess.Popen(
        [*CCN, "--node", f"unix://{tmp_path}/none.sock", "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert proc.stderr is not None
    early = ""  # the command's own output, if it got that far before the signal
    launched = False
    while select.select([proc.stderr], [], [], 30)[0]:
        line = proc.stderr.readline()
        if not line.startswith("import time:"):
            early = line  # it has loaded (and failed on its own), or ended
            break
        if launched:
            proc.send_signal(signal.SIGINT)
            break
        launched = line.rstrip().endswith("| ccn.launch")
    else:
        raise AssertionError("no output from the command in 30 s")
    _out, rest = proc.communicate(timeout=30)
    lines = (early + rest).splitlines(keepends=True)
    err = "".join(x for x in lines if not x.startswith("import time:"))
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert proc.returncode in (1, 130)


def _get_to_a_pipe(node: str, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """Publish 4 MiB, far more than a pipe holds, as ``name``; start ``ccn get NAME/v1 -o -``
    with its stdout and stderr on pipes."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(4 << 20))
    assert run("put", str(src), name, node=node).returncode == 0
    return subprocess.Popen(
        [*CCN, "--node", node, "get", f"{name}/v1", "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_stdout_closed_by_its_reader_is_not_an_error(node: str, tmp_path: Path) -> None:
    # 'ccn get NAME -o - | head -c 10' printed 'ccn: error: Broken pipe' and exited 1
    proc = _get_to_a_pipe(node, tmp_path, "/cli/pipe")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "error" not in err and "Traceback" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("size", [100, 300_000])  # within stdout's buffer, and beyond it
def test_stdout_on_a_full_disk_is_named_in_one_line(node: str, tmp_path: Path, size: int) -> None:
    # 'ccn get NAME -o - > file' on a full disk said only "No space left on device", not
    # what was full (-o FILE names the file).
    src = tmp_path / "f"
    src.write_bytes(os.urandom(size))
    assert run("put", str(src), f"/cli/full{size}", node=node).returncode == 0
    with open("/dev/full", "wb") as full:  # every write fails with ENOSPC, as a full disk's
        got = subprocess.run(
            [*CCN, "--node", node, "get", f"/cli/full{size}/v1", "-o", "-"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    one_line_error(got, "cannot write to stdout: No space left on device")


def test_a_second_node_on_the_same_store_is_refused(node: str, tmp_path: Path) -> None:
    store = Path(node.removeprefix("unix://")).parent / "store"
    other = f"unix://{tmp_path}/other.sock"
    result = run("node", "--store", str(store), "--listen", other, "--no-discovery")
    one_line_error(result, "in use by another process")


def _read_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def test_sigterm_during_a_big_put_stops_the_import_and_publishes_nothing(tmp_path: Path) -> None:
    # The node used to finish the import (seconds per GiB) before it exited, and then published
    # it, though the client had been told the node closed the connection.
    from ccn.name import Name
    from ccn.store.refs import DiskRefStore

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # sparse zeros: seconds to import, no disk used (one blob, deduped)
    sock = f"unix://{tmp_path}/n.sock"
    node = subprocess.Popen(
        [*CCN, "node", "--no-discovery", "--store", str(tmp_path / "store"), "--listen", sock],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    put: subprocess.Popen[str] | None = None
    try:
        assert node.stdout is not None and "listening on" in node.stdout.readline()
        start = _read_bytes(node.pid)
        put = subprocess.Popen(
            [*CCN, "--node", sock, "put", str(big), "/big"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while _read_bytes(node.pid) - start < 64 << 20:  # the import is under way
            assert time.monotonic() < deadline and put.poll() is None
            time.sleep(0.02)
        asked = time.monotonic()
        node.terminate()
        node.wait(timeout=30)
        took = time.monotonic() - asked
        _out, err = put.communicate(timeout=30)
    finally:
        for proc in (node, put):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if node.stdout is not None:
            node.stdout.close()
    assert node.returncode == 0
    assert took < 3.0, f"the node took {took:.1f} s to stop"
    assert put.returncode != 0 and len(err.strip().splitlines()) == 1, err
    assert DiskRefStore(tmp_path / "store").latest(Name.parse("/big")) is None


async def test_ls_lists_every_name_and_log_says_what_it_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ls gave the first 2000 names and said how many more there were; it asks page after
    # page now, so every name is listed.
    monkeypatch.setattr("ccn.mgmt.LIST_MAX_NAMES", 2)
    monkeypatch.setattr("ccn.mgmt.LIST_MAX_VERSIONS", 2)
    monkeypatch.setattr("ccn.maintenance.MAX_LINES", 2)
    async with node_in_process(tmp_path) as (node, uri):
        for name in ("/c/a", "/c/b", "/c/c"):
            for v in range(1, 4):
                node.refs.compare_and_swap(Name.parse(name), v - 1 or None, v, bytes(32))
        with trio.fail_after(20):
            capsys.readouterr()
            assert await trio.to_thread.run_sync(main, ["--node", uri, "ls", "/c"]) == 0
            assert capsys.readouterr().out.splitlines() == [
                "/c/a  (1 earlier; ccn log lists them) v2 v3",
                "/c/b  (1 earlier; ccn log lists them) v2 v3",
                "/c/c  (1 earlier; ccn log lists them) v2 v3",
            ]
            assert await trio.to_thread.run_sync(main, ["--node", uri, "log", "/c/a"]) == 0
            out = capsys.readouterr().out.splitlines()
            assert out[0] == "(1 earlier versions; ccn log NAME/vN shows one)"
            assert [line.split()[0] for line in out[1:]] == ["v2", "v3"]
            # Their records are not in the store: each line says so at its end, after the id,
            # not in the size column.
            assert out[1].split()[3] == bytes(32).hex()
            assert out[1].endswith(")") and "  (record unreadable: " in out[1]


def _get_under_way(node: str, name: str, out: Path) -> subprocess.Popen[str]:
    """A ``ccn get NAME -o OUT`` process, once it has begun writing its partial file."""
    get = subprocess.Popen(
        [*CCN, "--node", node, "get", name, "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    partials = f"{out.name}.ccn-partial-*"
    deadline = time.monotonic() + 30
    while (
        not list(out.parent.glob(partials)) and get.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.002)
    if not list(out.parent.glob(partials)):
        get.kill()
        get.communicate(timeout=5)
        raise AssertionError("the fetch never started writing")
    return get


@contextlib.contextmanager
def _get_from_a_stopped_node(
    tmp_path: Path, name: str
) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """A node holding 64 MiB as ``name``, a ``ccn get`` of it under way into ``out.bin``, and
    the node then stopped (SIGSTOP) until the block ends: yields the node's address, the get
    and its output path. Both processes are ended afterwards."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(64 * 1024 * 1024))
    sock = f"unix://{tmp_path}/n.sock"
    node_proc = _node_process(tmp_path / "store", "--listen", sock)
    get = None
    try:
        assert run("put", str(src), name, node=sock).returncode == 0
        out = tmp_path / "out.bin"
        get = _get_under_way(sock, name, out)
        node_proc.send_signal(signal.SIGSTOP)  # hold the fetch half way
        try:
            yield sock, get, out
        finally:
            node_proc.send_signal(signal.SIGCONT)
    finally:
        if get is not None and get.poll() is None:
            get.kill()
            get.wait(timeout=5)
        node_proc.terminate()
        node_proc.wait(timeout=10)
        assert node_proc.stdout is not None
        node_proc.stdout.close()


def test_sigterm_during_get_removes_the_partial_output(tmp_path: Path) -> None:
    # 'timeout 60 ccn get /big -o out' (SIGTERM) used to leave out.ccn-partial behind, as big
    # as what had arrived: only Ctrl-C went through the fetch's cleanup.
    with _get_from_a_stopped_node(tmp_path, "/cli/term") as (_sock, get, out):
        get.send_signal(signal.SIGTERM)
        _out, err = get.communicate(timeout=30)
    assert get.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "ccn: terminated"
    assert "Traceback" not in err
    assert not list(tmp_path.glob("out.bin.ccn-partial*"))
    assert not out.exists()


def test_a_get_from_a_node_that_stops_answering_fails_in_seconds(tmp_path: Path) -> None:
    # A node under kill -STOP keeps its connections open: a get waiting on it failed only
    # when its retries ran out (24-48 s), with "not received after 9 tries", as if the
    # content were missing. The client probes a quiet connection and says what happened.
    with _get_from_a_stopped_node(tmp_path, "/cli/frozen") as (sock, get, out):
        stopped = time.monotonic()
        _out, err = get.communicate(timeout=30)
        took = time.monotonic() - stopped
    assert get.returncode != 0
    assert err.strip().splitlines() == [
        f"ccn: error: {sock} stopped answering (no answer to a probe within 3 s: is it stopped "
        "or frozen?)"
    ]
    assert took < 12, took  # quiet 3 s (looked at every second), then the probe's 3 s
    assert not list(tmp_path.glob("out.bin.ccn-partial*"))
    assert not out.exists()


def test_a_node_whose_stderr_is_gone_keeps_running(tmp_path: Path) -> None:
    # 'ccn node 2>&1 | tee log' whose reader stopped: the node's next line on stderr (here:
    # its route's neighbour is reachable again) raised BrokenPipeError and ended the node
    # without a word (helper-54).
    sock = f"unix://{tmp_path}/n.sock"
    port = free_port()
    read_end, write_end = os.pipe()
    flags = ["--store", str(tmp_path / "s"), "--route", f"/far=tcp://127.0.0.1:{port}"]
    node_proc = subprocess.Popen(
        [*CCN, "node", "--no-discovery", "--listen", sock, *flags],
        stdout=subprocess.PIPE,
        stderr=write_end,
        text=True,
    )
    os.close(write_end)
    neighbour = None
    try:
        assert node_proc.stdout is not None
        assert "listening on" in node_proc.stdout.readline()
        os.close(read_end)  # the reader is gone
        far = (f"unix://{tmp_path}/far.sock", f"tcp://127.0.0.1:{port}")
        neighbour = _node_process(tmp_path / "far", "--listen", far[0], "--listen", far[1])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and node_proc.poll() is None:
            listed = run("route", "list", node=sock)
            if listed.returncode == 0 and "down" not in listed.stdout:
                break
            time.sleep(0.3)
        time.sleep(0.5)  # what it says on stderr about it, said
        assert node_proc.poll() is None, "the node ended"
        assert run("status", node=sock).returncode == 0
    finally:
        for proc in (node_proc, neighbour):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
                assert proc.stdout is not None
                proc.stdout.close()


def test_a_stopped_put_says_the_node_may_still_publish_it() -> None:
    # The node stops the import, unless it had ended just before (helper-19's walkthrough).
    put = build_parser().parse_args(["put", "f.bin", "/n/f"])
    assert _stopped(put, "interrupted") == (
        "ccn: interrupted; published only if the node had finished (ccn ls /n/f shows)"
    )
    assert _stopped(build_parser().parse_args(["status"]), "terminated") == "ccn: terminated"


def _node_process(store: Path, *flags: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*CCN, "node", "--store", str(store), "--no-discovery", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert "listening on" in proc.stdout.readline()
    return proc


def test_get_with_the_producer_gone_says_the_version_came_from_a_cache(tmp_path: Path) -> None:
    port = free_port()
    a_sock, b_sock = f"unix://{tmp_path}/a.sock", f"unix://{tmp_path}/b.sock"
    procs = [
        _node_process(tmp_path / "b", "--listen", b_sock, "--listen", f"tcp://127.0.0.1:{port}")
    ]
    try:
        procs.append(
            _node_process(
                tmp_path / "a", "--listen", a_sock, "--route", f"/=tcp://127.0.0.1:{port}"
            )
        )
        (tmp_path / "f").write_bytes(b"first")
        assert run("put", str(tmp_path / "f"), "/doc", node=b_sock).returncode == 0
        got = run("get", "/doc", "-o", str(tmp_path / "1"), node=a_sock)
        assert got.returncode == 0 and "could be reached" not in got.stderr
        procs[0].terminate()
        procs[0].communicate(timeout=5)
        time.sleep(1.1)  # A's cached "latest" record goes stale
        got = run("get", "/doc", "-o", str(tmp_path / "2"), node=a_sock)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "2").read_bytes() == b"first"
        assert (
            "ccn: note: no producer of /doc could be reached (no route to /doc); /doc/v1 is the "
            "newest version the nearest node that has one holds in full\n"
        ) in got.stderr
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=5)


def test_status_text_shows_cache_tier_trouble() -> None:
    from ccn.cli import _trouble

    assert _trouble({"write_errors": 0, "corrupt": 0, "versions_write_errors": 0}) == ""
    assert _trouble({"write_errors": 2, "corrupt": 1, "versions_write_errors": 1}) == (
        "; 3 write errors, 1 corrupt objects dropped"
    )


class _NdnProducer:
    """A raw NDN app on a node's NDN listener, answered from a thread: it registers ``prefixes``
    and answers every Interest ``/nd/WHAT/...`` with segment K (K from the Interest, else 0) of
    ``/nd/WHAT/v=7``, three segments of 1000 bytes, as NDN producers do (so an exact Interest
    for ``/nd/WHAT/v=7`` gets a Data it does not match). Segment 1 of ``bad`` has a broken
    signature; segments 1 and 2 of ``gap`` are Nacked (no route)."""

    def __init__(self, port: int, *prefixes: str) -> None:
        from ndn.app_support import nfd_mgmt
        from ndn.encoding import InterestParam, make_interest

        from ccn.ndn.tlv import TlvFramer

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.framer = TlvFramer()
        for i, prefix in enumerate(prefixes):
            command = nfd_mgmt.make_command("rib", "register", None, name=prefix)
            self.sock.sendall(bytes(make_interest(command, InterestParam(nonce=i + 1))))
            self._receive_one()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _receive_one(self) -> bytes:
        got: list[bytes] = []
        while not got:
            chunk = self.sock.recv(65536)
            assert chunk, "the node closed the connection"
            got += [bytes(u) for u in self.framer.feed(chunk)]
        return got[0]

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            for unit in self.framer.feed(chunk):
                self._answer(bytes(unit))

    def _answer(self, raw: bytes) -> None:
        from ccn.ndn import lp
        from ccn.ndn import packets as p

        if raw[0] == 100:  # LpPacket
            fragment = lp.decode_lp(raw).fragment
            assert fragment is not None
            raw = fragment
        interest = p.decode_interest(raw)
        name = interest.name
        last = name[-1]
        seg = p.component_number(last) if last[0] == p.C_SEGMENT else 0
        what = name[1][1]
        if what == b"gap" and seg > 0:
            self.sock.sendall(lp.encode_lp(interest.wire, nack_reason=lp.NACK_NO_ROUTE))
            return
        data = p.encode_data(
            (*name[:2], p.version(7), p.segment(seg)),
            b"%d" % seg * 1000,
            freshness_ms=10_000,
            final_block_id=p.segment(2),
        )
        if what == b"bad" and seg == 1:
            data = data[:-1] + bytes([data[-1] ^ 1])  # the SignatureValue's last byte
        self.sock.sendall(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def ndn_producer(node: str) -> Iterator[_NdnProducer]:
    producer = _NdnProducer(NDN_PORTS[node], "/nd", "/ndt/v=2/32=x")
    try:
        yield producer
    finally:
        producer.close()


def test_names_of_ndn_content_are_shown_as_ndn_writes_them(
    node: str, ndn_producer: _NdnProducer
) -> None:
    one_line_error(run("get", "/nd/bad", "-o", "-", node=node), "/nd/bad/v=7/seg=1: bad Digest")
    gap = run("get", "/nd/gap", "-o", "-", node=node)
    one_line_error(gap, "no route to /nd/gap/v=7/seg=")
    for result in (gap, run("get", "/nd/ok/v=7/seg=1", node=node)):
        assert "~" not in result.stderr, result.stderr  # never the ccn form ~50~%01
    assert "/nd/ok/v=7/seg=1: the last component is not a plain file name" in result.stderr
    # one segment asked for by name is that segment alone (as ndnpeek), not the content from 0
    got = run("get", "/nd/ok/v=7/seg=1", "-o", "-", node=node)
    assert got.returncode == 0 and got.stdout == "1" * 1000, got.stderr
    routes = run("route", "list", node=node).stdout
    assert "/ndt/v=2/32=x  face " in routes and "~" not in routes
    assert "/ndt/v=2/32=x" in run("route", "list", "/ndt/v=2/32=x", node=node).stdout


def test_names_beyond_ascii_are_taken_as_utf8(node: str, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"des vid\xc3\xa9os")
    put = run("put", str(src), "/cli/vidéos", node=node)
    assert put.returncode == 0 and put.stdout.startswith("/cli/vid%C3%A9os/v1 "), put.stderr
    got = run("get", "/cli/vid%C3%A9os", "-o", "-", node=node)
    assert got.returncode == 0 and got.stdout == "des vidéos", got.stderr
    got = run("get", "/cli/vidéos", cwd=tmp_path, node=node)  # the default output file: its name
    assert got.returncode == 0 and (tmp_path / "vidéos").read_text() == "des vidéos", got.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_ndn_content_to_a_full_stdout_is_named_in_one_line(
    node: str, ndn_producer: _NdnProducer
) -> None:
    with open("/dev/full", "wb") as full:
        got = subprocess.run(
            [*CCN, "--node", node, "get", "/nd/ok", "-o", "-"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    one_line_error(got, "cannot write to stdout: No space left on device")


def test_get_takes_ndn_versions(node: str, ndn_producer: _NdnProducer, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"ccn content")
    assert run("put", str(src), "/cli/ndnv", node=node).returncode == 0
    got = run("get", "/cli/ndnv/v=1", "-o", "-", node=node)
    assert got.returncode == 0 and got.stdout == "ccn content", got.stderr
    assert run("log", "/cli/ndnv/v=1", node=node).stdout.startswith("v1 ")
    # NDN content by version: its producer answers /nd/ok/v=7 only with longer names
    started = time.monotonic()
    got = run("get", "/nd/ok/v=7", "-o", "-", node=node)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "0" * 1000 + "1" * 1000 + "2" * 1000
    assert "ccn: note: /nd/ok/v=7 is NDN content" in got.stderr
    assert time.monotonic() - started < 4  # answered, not timed out and tried again
    one_line_error(run("get", "/nd/ok/v=x", node=node), "write v%3Dx for a plain component")


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with a file's bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in root.rglob("*")
    }


def test_a_failed_start_takes_back_only_the_store_directory_it_made(tmp_path: Path) -> None:
    # A `ccn node` whose listener fails (its port is taken) used to leave the new store
    # directory behind, an empty store layout in it. It now removes what it made of the path
    # (here a missing parent too), empties a directory that was empty before, and leaves an
    # existing store as it was.
    sock = f"unix://{tmp_path}/n.sock"
    existing = tmp_path / "existing"
    proc = _node_process(existing, "--listen", sock)
    try:
        (tmp_path / "f").write_text("kept")
        assert run("put", str(tmp_path / "f"), "/kept", node=sock).returncode == 0
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    before = _tree(existing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        tcp = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        for store in (tmp_path / "x" / "new", empty, existing):
            failed = run("node", "--store", str(store), "--listen", sock, "--listen", tcp)
            one_line_error(failed, f"cannot listen on {tcp}")
    assert not (tmp_path / "x").exists()
    assert empty.is_dir() and not list(empty.iterdir())
    assert _tree(existing) == before and before
    assert not (tmp_path / "n.sock").exists()


def test_a_unix_socket_needs_its_directory_except_ccns_own(tmp_path: Path) -> None:
    # A socket path in a directory that does not exist is a one-line error naming it (its
    # parents used to be made silently, and the failed start left its store behind); ccn's own
    # directory, the default socket's ($CCN_HOME here), is made when missing.
    missing = tmp_path / "no" / "such"
    store = tmp_path / "s"
    got = run("node", "--store", str(store), "--no-discovery", "--listen", f"unix://{missing}/n")
    one_line_error(got, f"cannot listen on unix://{missing}/n: directory {missing} does not exist")
    assert not (tmp_path / "no").exists() and not store.exists()

    home = tmp_path / "home"
    env = dict(os.environ, CCN_HOME=str(home))
    env.pop("CCN_NODE", None)
    default = f"unix://{home}/node.sock"
    proc = subprocess.Popen(
        [*CCN, "node", "--store", str(store), "--no-discovery", "--listen", default],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert f"listening on {default}" in proc.stdout.readline()
        status = subprocess.run(  # the default node address finds it
            [*CCN, "status"], capture_output=True, text=True, timeout=30, env=env
        )
        assert status.returncode == 0 and f"listening: {default}" in status.stdout
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    assert proc.returncode == 0 and home.is_dir()


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to mount a small tmpfs")
def test_a_put_that_does_not_fit_the_store_is_one_line_and_gives_the_space_back(
    tmp_path: Path,
) -> None:
    # Out of space (a file bigger than what is free) or out of inodes (the error used to name
    # the pack file being written), the put fails in one line naming the node's store; the
    # node keeps serving, the name is not published, the space is given back, and once there
    # is room again the same put works and fsck finds the store consistent.
    mnt, sock = tmp_path / "mnt", f"unix://{tmp_path}/n.sock"
    _mount_tmpfs(mnt, "size=4m,nr_inodes=40")
    proc = None
    try:
        proc = _node_process(mnt / "store", "--listen", sock)
        (tmp_path / "small").write_bytes(os.urandom(100_000))
        (tmp_path / "big").write_bytes(os.urandom(6_000_000))
        assert run("put", str(tmp_path / "small"), "/small", node=sock).returncode == 0
        free = _free_bytes(mnt)
        store = os.path.realpath(mnt / "store")
        one_line_error(
            run("put", str(tmp_path / "big"), "/big", node=sock),
            f"the node's store {store}: No space left on device",
        )
        assert _free_bytes(mnt) == free
        for i in range(40):  # bounded: each put takes a few inodes of 40
            got = run("put", str(tmp_path / "small"), f"/n{i}", node=sock)
            if got.returncode:
                break
        one_line_error(got, f"the node's store {store}: No space left on device")
        assert run("ls", "/big", node=sock).stdout == ""
        out = tmp_path / "out"
        assert run("get", "/small", "-o", str(out), node=sock).returncode == 0
        assert out.read_bytes() == (tmp_path / "small").read_bytes()
        subprocess.run(["mount", "-o", "remount,size=16m,nr_inodes=400", str(mnt)], check=True)
        assert run("put", str(tmp_path / "big"), "/big", node=sock).returncode == 0
        assert run("get", "/big", "-o", str(out), node=sock).returncode == 0
        assert out.read_bytes() == (tmp_path / "big").read_bytes()
        checked = run("fsck", node=sock)
        assert checked.returncode == 0 and "0 problems" in checked.stderr, checked.stderr
    finally:
        if proc is not None:
            proc.terminate()
            proc.communicate(timeout=5)
        subprocess.run(["umount", "-l", str(mnt)], check=True)
    assert proc.returncode == 0


def _status_with_routes(routes: int, shown: int, down: int = 0) -> dict[str, object]:
    """A status reply as a node with ``routes`` FIB entries sends it (``shown`` of them)."""
    face = {
        "id": 1,
        "remote": "internal://producer",
        **dict.fromkeys(
            ["in_interests", "in_data", "in_nacks", "out_interests", "out_data", "out_nacks"], 0
        ),
        "dropped": 0,
    }
    return {
        "listen": ["unix:///n.sock"],
        "store": {"objects": 2 * routes, "bytes": 1 << 20},
        "cs": {"entries": 0, "bytes": 0, "hits": 3, "misses": 1},
        "pit": {"entries": 0},
        "producer": {"interests": 7, "data": 7},
        "faces": [face],
        "fib": [
            {"prefix": f"/data/set{k // 1000}/item{k % 1000}", "nexthops": [{"face": 1, "cost": 0}]}
            for k in range(shown)
        ],
        "fib_total": routes,
        "down_routes": [
            {"prefix": f"/far/{k}", "uri": f"tcp://10.0.0.{k}:6464", "error": ""}
            for k in range(down)
        ],
    }


def test_status_text_summarises_thousands_of_routes(capsys: pytest.CaptureFixture[str]) -> None:
    # A node routes every name it publishes: status printed 2000 of 66,000 routes, and its
    # faces and counters were lost among them. The text shows the first 20 and says where
    # the rest are; --json (the node's reply as it is) keeps all it was sent.
    from ccn.cli import STATUS_SHOWN_ROUTES, _print_status

    _print_status(_status_with_routes(66_001, 2000, down=25))
    lines = capsys.readouterr().out.splitlines()
    routes = lines.index("routes: 66,001")
    assert lines[routes + 1] == "  /data/set0/item0  face 1 cost 0"
    assert lines[routes + STATUS_SHOWN_ROUTES] == "  /data/set0/item19  face 1 cost 0"
    assert lines[routes + STATUS_SHOWN_ROUTES + 1] == "  ... and 65,981 more (ccn route list)"
    down = lines[routes + STATUS_SHOWN_ROUTES + 2 : routes + 2 * STATUS_SHOWN_ROUTES + 2]
    assert down[0] == "  /far/0  tcp://10.0.0.0:6464 is down, retrying"
    assert lines[routes + 2 * STATUS_SHOWN_ROUTES + 2] == "  ... and 5 more down (ccn route list)"
    assert len(lines) < 60 and "faces:" in lines and "producer: 7 interests, 7 data" in lines

    _print_status(_status_with_routes(3, 3))
    lines = capsys.readouterr().out.splitlines()
    routes = lines.index("routes: 3")
    assert lines[routes + 1 :] == [f"  /data/set0/item{k}  face 1 cost 0" for k in range(3)]


def _store_with_names(root: Path, names: list[Name]) -> None:
    """Publish each of ``names`` (v1, a few bytes) straight through the store API: thousands
    of ``ccn put`` would take minutes."""
    from ccn.store import DiskObjectStore, DiskRefStore, Version
    from ccn.store.files import import_bytes
    from ccn.store.objects import id_of

    with DiskObjectStore(root, fsync=False) as store, DiskRefStore(root, fsync=False) as refs:
        with store.batch() as batch:
            versions = []
            for name in names:
                content = import_bytes(batch, str(name).encode())
                version = Version(
                    name=name,
                    number=1,
                    root=content.id,
                    root_kind=content.kind,
                    size=content.size,
                    content_hash=content.content_hash,
                    created_ns=1,
                    previous=None,
                    publisher=None,
                )
                batch.put_object(version)
                versions.append(id_of(version))
        for name, vid in zip(names, versions, strict=True):
            refs.compare_and_swap(name, None, 1, vid)


def test_a_node_with_thousands_of_names(tmp_path: Path) -> None:
    # What a user of a node publishing many names sees: status sums the routes up, route
    # list gives every one (in pages of 2000 under the hood), ls of a subtree gives that
    # subtree exactly, escaped and nested names included.
    names = [Name.parse(f"/data/set{k % 3}/item{k}") for k in range(2100)]
    names += [Name.parse(t) for t in ["/data/set1/item1/sub", "/data/set1/a%20b", "/data"]]
    _store_with_names(tmp_path / "store", names)
    sock = f"unix://{tmp_path}/n.sock"
    proc = _spawn_node(tmp_path / "store", "--listen", sock, "--no-discovery")
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        routes = len(names) + 1  # and the management prefix
        text = run("status", node=sock).stdout.splitlines()
        assert f"routes: {routes:,}" in text
        assert f"  ... and {routes - 20:,} more (ccn route list)" in text
        assert len(text) < 50
        status = json.loads(run("status", "--json", node=sock).stdout)
        assert len(status["fib"]) == 2000 and status["fib_total"] == routes
        listed = run("route", "list", node=sock).stdout.splitlines()
        prefixes = [line.split("  ")[0] for line in listed]
        assert len(prefixes) == routes and prefixes[0] == "/data"
        assert sorted(prefixes, key=Name.parse) == prefixes
        assert set(prefixes) == {str(n) for n in names} | {"/localhost/ccn"}
        assert run("ls", "/data/set1/item1", node=sock).stdout.splitlines() == [
            "/data/set1/item1  v1",
            "/data/set1/item1/sub  v1",
        ]
        set1 = run("ls", "/data/set1", node=sock).stdout.splitlines()
        assert len(set1) == 700 + 2 and "/data/set1/a%20b  v1" in set1
        # ls of everything gives every name (it stopped at 2000), in name order, each once
        listed = [line.split("  ")[0] for line in run("ls", "/", node=sock).stdout.splitlines()]
        assert len(listed) == len(names) and set(listed) == {str(n) for n in names}
        assert sorted(listed, key=Name.parse) == listed
        assert "/data/set1/item10  v1" in set1 and "/data/set2/item2  v1" not in set1
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes its stdout pipe


@pytest.mark.slow
def test_sigterm_during_a_big_fsync_put_stops_the_node_and_leaves_the_store_clean(
    tmp_path: Path,
) -> None:
    # A node with fsync = true told to stop during a big put used to wait for the commit's one
    # fsync of the whole pack (2.1 s for 1 GiB), and deleting a partly synced pack costs
    # about as much on a file system mounted with `discard`. The pack is now synced as it
    # grows and an abandoned one is set aside in tmp/ (the node's next start removes it).
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(8 << 20))  # 192 MiB: the put runs for about a second
    (tmp_path / "node.toml").write_text("fsync = true\ndiscovery = false\n")
    store = tmp_path / "store"
    sock = f"unix://{tmp_path}/n.sock"
    cmd = [*CCN, "node", "--config", str(tmp_path / "node.toml"), "--store", str(store)]
    cmd += ["--listen", sock]

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        return proc

    proc = start()
    env = dict(os.environ, CCN_NODE=sock)
    put = subprocess.Popen([*CCN, "put", str(src), "/big"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the pack being written is 3 steps long
            packs = list((store / "packs").glob("*.pack"))
            if packs and max(p.stat().st_size for p in packs) >= 48 << 20:
                break
            assert put.poll() is None, "the put ended before the node was stopped"
            time.sleep(0.005)
        proc.terminate()  # our child, by its pid
        assert proc.wait(timeout=10) == 0  # stopped, not hung
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        put.wait(timeout=10)
        assert put.stderr is not None
        put.stderr.close()
    assert put.returncode != 0  # the node went away: nothing was published
    assert not list((store / "packs").glob("*.pack"))
    aside = os.listdir(store / "tmp")
    assert len(aside) == 1 and aside[0].endswith(".aborted"), aside
    proc = start()  # removes what was set aside, and finds the store clean
    try:
        assert os.listdir(store / "tmp") == []
        checked = run("fsck", node=sock)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "/big" not in run("ls", "/", node=sock).stdout
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.skipif(no_ipv6_loopback() is not None, reason=no_ipv6_loopback() or "")
def test_ipv6_addresses_in_listen_route_ccn_node_and_status(tmp_path: Path) -> None:
    """``[::1]`` wherever the user writes or reads an address: ``--listen``, ``CCN_NODE``,
    ``--route``, ``ccn route add`` and what ``status`` and ``route list`` print."""
    (tmp_path / "f.txt").write_bytes(b"over ipv6\n")
    procs: list[subprocess.Popen[str]] = []

    def start(name: str, *args: str) -> list[str]:
        proc = subprocess.Popen(
            [*CCN, "node", "--store", str(tmp_path / name), "--no-discovery", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        return line.split("listening on ", 1)[1].strip().split(", ")

    try:
        tcp, udp = start("p", "--listen", "tcp://[::1]:0", "--listen", "udp://[::1]:0")
        assert tcp.startswith("tcp://[::1]:") and udp.startswith("udp://[::1]:")
        assert run("put", str(tmp_path / "f.txt"), "/six/f", node=tcp).returncode == 0
        (c_tcp,) = start("c", "--listen", "tcp://[::1]:0", "--route", f"/six={udp}")
        got = run("get", "/six/f", "-o", "-", node=c_tcp)
        assert got.returncode == 0 and got.stdout == "over ipv6\n", got.stderr
        added = run("route", "add", "/tcp6", tcp, node=c_tcp)
        assert added.returncode == 0 and tcp in added.stdout, added.stderr
        routes = run("route", "list", node=c_tcp).stdout
        assert f"static {udp}" in routes and f"static {tcp}" in routes, routes
        status = json.loads(run("status", "--json", node=c_tcp).stdout)
        remotes = {f["remote"] for f in status["faces"]}
        assert {tcp, udp} <= remotes, remotes
        assert any(r.startswith("tcp://[::1]:") and r != tcp for r in remotes)  # this command
        text = run("status", node=c_tcp).stdout
        assert udp in text and tcp in text, text
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=5)
            assert proc.stdout is not None
            proc.stdout.close()


# -- what an exploratory hunt found (stop 27) ------------------------------------------------


def test_two_gets_to_one_output_do_not_spoil_each_other(node: str, tmp_path: Path) -> None:
    """Both wrote <out>.ccn-partial: the first to finish renamed the other's half file into
    place and said it had succeeded; each fetch now writes a partial output of its own."""
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(24 << 20))
    assert run("put", str(src), "/cli/twice", node=node).returncode == 0
    out = tmp_path / "out.bin"
    gets = [
        subprocess.Popen(
            [*CCN, "--node", node, "get", "/cli/twice", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for g in gets:
        _o, err = g.communicate(timeout=60)
        assert g.returncode == 0, err
        assert out.read_bytes() == src.read_bytes()  # whole, whichever renamed last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "src.bin"]


def test_a_path_named_like_a_partial_output_is_not_touched(node: str, tmp_path: Path) -> None:
    """`ccn get -o precious` removed a directory tree `precious.ccn-partial` of the user's."""
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello\n")
    assert run("put", str(src), "/cli/precious", node=node).returncode == 0
    keep = tmp_path / "precious.ccn-partial" / "deep" / "thesis.txt"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"IMPORTANT")
    assert run("get", "/cli/precious", "-o", str(tmp_path / "precious"), node=node).returncode == 0
    assert keep.read_bytes() == b"IMPORTANT"
    assert (tmp_path / "precious").read_bytes() == b"hello\n"


def test_a_trailing_slash_asks_for_a_directory(node: str, tmp_path: Path) -> None:
    """As cp has it: a file version is not written over a file named `file1/`, nor as a file
    `nodir` for `nodir/`."""
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello\n")
    assert run("put", str(src), "/cli/slash", node=node).returncode == 0
    (tmp_path / "file1").write_bytes(b"keep")
    one_line_error(run("get", "/cli/slash", "-o", f"{tmp_path}/file1/", node=node))
    one_line_error(
        run("get", "/cli/slash", "-o", f"{tmp_path}/nodir/", node=node), "names a directory"
    )
    assert (tmp_path / "file1").read_bytes() == b"keep"
    assert not (tmp_path / "nodir").exists()


def test_get_to_a_closed_stdout_is_one_line(node: str) -> None:
    result = subprocess.run(
        [*CCN, "--node", node, "get", "/cli/anything", "-o", "-"],
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "ccn: error: stdout is closed; give -o OUT, or open it (-o - > FILE)"
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_get_blocked_on_a_reader_that_does_not_read(
    node: str, tmp_path: Path, sig: signal.Signals
) -> None:
    """`ccn get -o - | less`, paused: the write blocked, and Ctrl-C or SIGTERM were only
    queued for a loop that could not run; only SIGKILL ended it."""
    proc = _get_to_a_pipe(node, tmp_path, "/cli/stuck")
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.read(1)  # it writes; then nobody reads: the pipe fills
        time.sleep(2)
        assert proc.poll() is None
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 128 + sig
        err = proc.stderr.read().decode()
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1] in ("ccn: interrupted", "ccn: terminated")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_fifo_for_a_key_trust_file_or_config_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer: these commands hung for ever."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    home = tmp_path / "home"
    home.mkdir()
    os.mkfifo(home / "trust")
    env = {**os.environ, "CCN_HOME": str(home)}

    def ccn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CCN, *args], capture_output=True, text=True, timeout=30, env=env)

    one_line_error(ccn("trust", "list"), "not a regular file")
    one_line_error(ccn("node", "--config", str(fifo)), "not a regular file")
    content = tmp_path / "a.txt"
    content.write_bytes(b"a")
    one_line_error(
        ccn("--node", f"unix://{tmp_path}/none.sock", "put", "--key", str(fifo), str(content), "/k")
    )
    (home / "trust").unlink()
    (home / "keys").mkdir()
    os.mkfifo(home / "keys" / "x.key")
    one_line_error(ccn("key", "show", "x"), "not a regular file")


def test_a_home_whose_path_is_not_utf8_is_printed_escaped(tmp_path: Path) -> None:
    """Under a strict UTF-8 stdout, printing such a path was a traceback after the key had
    been written (so a retry said it existed)."""
    home = os.fsencode(tmp_path) + b"/h\xffome"
    env: dict[bytes, bytes] = {
        **os.environb,
        b"CCN_HOME": home,
        b"PYTHONIOENCODING": b"utf-8:strict",
    }
    result = subprocess.run(
        [*CCN, "key", "gen", "k"],
        capture_output=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert b"h\\udcffome" in result.stdout or b"h\\xffome" in result.stdout


def test_ctrl_c_while_the_parser_is_built_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ccn import cli

    def interrupted() -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["status"]) == 130
    assert capsys.readouterr().err == "ccn: interrupted\n"


def test_a_route_to_the_node_itself_or_off_its_own_faces_is_refused(
    node: str, tmp_path: Path
) -> None:
    """A route to the node's own socket was taken, and every fetch under it then failed with
    "the network answered duplicate"; removing the producer's route to a published name (by
    its face id) left the name listed and unreachable until it was published again."""
    one_line_error(run("route", "add", "/self", node, node=node), "own address", "loop")
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")
    assert run("put", str(src), "/cli/own", node=node).returncode == 0
    status = json.loads(run("status", "--json", node=node).stdout)
    producer = next(
        h["face"] for e in status["fib"] if e["prefix"] == "/cli/own" for h in e["nexthops"]
    )
    one_line_error(run("route", "remove", "/cli/own", str(producer), node=node), "own")
    assert run("get", "/cli/own", "-o", "-", node=node).stdout == "a"
    one_line_error(run("--node", "tcp://127.0.0.1:-1", "status"), "port must be a number")


def test_face_list_shows_a_udp_face_s_fragment_requests_only_when_there_were_some() -> None:
    face = {
        "id": 7, "remote": "udp://10.0.0.2:6464", "in_interests": 1, "in_data": 2,
        "in_nacks": 0, "out_interests": 3, "out_data": 4, "out_nacks": 0, "dropped": 0,
        "unreachable": 0, "reassembly": {"asked": 0}, "resend": {"resent": 0},
    }  # fmt: skip
    assert "fragments" not in _face_text(face)
    face["reassembly"] = {"asked": 3}
    face["resend"] = {"resent": 40}
    assert _face_text(face).endswith("dropped 0 fragments asked 3 resent 40")
    face["size_fallback"] = [8972, 1472]
    assert _face_text(face).endswith(
        "fragments asked 3 resent 40 datagrams 1472 bytes (8972 did not reach the peer)"
    )
    del face["reassembly"], face["resend"], face["unreachable"], face["size_fallback"]
    assert _face_text(face).endswith("dropped 0")  # a stream face
