"""Documented defaults: where a node keeps its store, where it listens, where apps find it.

Everything here can be overridden by flags, the config file or ``CCN_NODE``; see README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Port for node-to-node TCP faces (NDN uses 6363; ours is distinct).
DEFAULT_TCP_PORT = 6464


def ccn_home() -> Path:
    """``$CCN_HOME`` or ``~/.ccn``: holds the default store and Unix socket."""
    env = os.environ.get("CCN_HOME")
    return Path(env) if env else Path.home() / ".ccn"


def default_store() -> Path:
    return ccn_home() / "store"


def default_socket() -> str:
    return f"unix://{ccn_home() / 'node.sock'}"


def default_listen() -> list[str]:
    return [default_socket(), f"tcp://0.0.0.0:{DEFAULT_TCP_PORT}"]


def default_node_uri() -> str:
    """The node an app talks to: ``$CCN_NODE``, else the default Unix socket."""
    return os.environ.get("CCN_NODE") or default_socket()
