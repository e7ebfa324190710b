"""The documented defaults: store, Unix socket and TCP port, and how the environment moves them
(README "Defaults")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccn import defaults
from ccn.faces.uri import FaceUri


@pytest.fixture
def no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ``$CCN_HOME`` or ``$CCN_NODE``; ``$HOME`` is a directory of the test's own."""
    monkeypatch.delenv("CCN_HOME", raising=False)
    monkeypatch.delenv("CCN_NODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_without_environment_everything_is_under_home_dot_ccn(no_env: Path) -> None:
    assert defaults.ccn_home() == no_env / ".ccn"
    assert defaults.default_store() == no_env / ".ccn" / "store"
    assert defaults.default_socket() == f"unix://{no_env}/.ccn/node.sock"
    assert defaults.default_node_uri() == defaults.default_socket()
    assert defaults.default_listen() == [f"unix://{no_env}/.ccn/node.sock", "tcp://0.0.0.0:6464"]


def test_ccn_home_moves_store_and_socket(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCN_HOME", str(no_env / "elsewhere"))
    assert defaults.default_store() == no_env / "elsewhere" / "store"
    assert defaults.default_socket() == f"unix://{no_env}/elsewhere/node.sock"
    assert defaults.default_listen()[0] == defaults.default_socket()
    assert defaults.default_node_uri() == defaults.default_socket()
    monkeypatch.setenv("CCN_HOME", "")  # set but empty: as if unset
    assert defaults.ccn_home() == no_env / ".ccn"


def test_ccn_node_chooses_the_node_apps_talk_to(
    no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCN_NODE", "tcp://10.0.0.2:6464")
    assert defaults.default_node_uri() == "tcp://10.0.0.2:6464"
    # it chooses the node apps talk to, not where this node listens
    assert defaults.default_listen()[0] == f"unix://{no_env}/.ccn/node.sock"
    monkeypatch.setenv("CCN_NODE", "")
    assert defaults.default_node_uri() == defaults.default_socket()


def test_the_defaults_are_addresses_a_node_and_its_apps_accept(no_env: Path) -> None:
    assert defaults.DEFAULT_TCP_PORT == 6464  # documented; distinct from NDN's 6363
    unix, tcp = (FaceUri.parse(u) for u in defaults.default_listen())
    assert (unix.scheme, unix.path) == ("unix", str(no_env / ".ccn" / "node.sock"))
    assert (tcp.scheme, tcp.host, tcp.port) == ("tcp", "0.0.0.0", defaults.DEFAULT_TCP_PORT)
    assert FaceUri.parse(defaults.default_node_uri()) == unix
