"""Node configuration: flags and an optional TOML file, merged into one value.

The TOML file takes the same settings as the flags (``store``, ``listen = [...]``,
``routes = ["/prefix=tcp://host:port", ...]``, ``ndn = ["tcp://127.0.0.1:6363"]``) plus table
bounds (``cs_bytes``, ``pit_max_entries``, ...). Flags given on the command line win over the file.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ccn.defaults import default_listen, default_store
from ccn.errors import LocalError
from ccn.faces.uri import FaceUri
from ccn.framing import DEFAULT_MAX_FRAME
from ccn.name import Name
from ccn.regular import read_regular

#: Smallest ``max_frame``: a Data packet carrying the largest object (512 KiB) must fit.
MIN_FRAME = 520 * 1024
#: Largest value of an integer setting (a signed 64-bit integer).
MAX_SETTING = (1 << 63) - 1


class ConfigError(LocalError):
    """The configuration (file or flags) is invalid."""


@dataclass
class NodeConfig:
    store: Path = field(default_factory=default_store)
    listen: list[str] = field(default_factory=default_listen)
    routes: list[tuple[Name, str]] = field(default_factory=list)
    #: NDN listeners (``tcp://127.0.0.1:6363``, ``unix:///path``) for unmodified NDN apps.
    ndn: list[str] = field(default_factory=list)
    #: fsync what is stored: each publish fsyncs its pack and index (durable, a little slower).
    fsync: bool = False
    cs_bytes: int = 64 << 20
    #: Budget of the persistent cache tier on disk (objects this node forwarded), LRU-evicted.
    cache_bytes: int = 1 << 30
    #: Objects the cache tier holds at most: its index costs ≈ 250 B of memory each.
    cache_max_entries: int = 1 << 18
    cs_max_entries: int = 65536
    pit_max_entries: int = 65536
    pit_max_per_face: int = 16384
    #: Faces (neighbours and apps) at once; connections beyond it are closed at once.
    max_faces: int = 1024
    #: Faces that peers at one network address may open (TCP connections, UDP peers, NDN
    #: connections together); one host cannot take the whole network pool.
    max_faces_per_host: int = 64
    #: Largest stream frame accepted; bounds each face's reassembly buffer (docs/limits.md).
    max_frame: int = DEFAULT_MAX_FRAME
    #: Trust anchors ``/prefix=ed25519:<hex>``: version records under those prefixes that are not
    #: signed by one of the prefix's keys are dropped, never cached or forwarded (ccn/trust.py).
    trust: list[str] = field(default_factory=list)
    #: LAN discovery (docs/lan.md): multicast hellos, neighbours, prefix announcements.
    discovery: bool = True
    #: UDP port of the ccn multicast group (224.0.23.170); NDN's is 56363, ours differs.
    multicast_port: int = 56464
    #: Interfaces discovery uses (names); empty: every LAN interface that is up.
    interfaces: list[str] = field(default_factory=list)
    #: Forwarding strategy for every prefix: adaptive, best-route or multicast.
    strategy: str = "adaptive"
    #: Prefixes that use the multicast strategy with the LAN multicast faces as fallback: an
    #: Interest under one with no learned route goes out once on the group (docs/lan.md).
    multicast_prefixes: list[Name] = field(default_factory=list)
    #: The node merges its store's small packs and loose objects on its own (as ``ccn gc``
    #: does, removing nothing) once more than this many of either are older than
    #: ``auto_merge_age`` seconds (every publish is a pack); 0: only ``ccn gc`` merges.
    auto_merge: int = 50
    auto_merge_age: int = 3600

    def validate(self) -> None:
        for label, uris in (
            ("listen", self.listen),
            ("routes", [uri for _prefix, uri in self.routes]),
            ("ndn", self.ndn),
        ):
            for uri in uris:
                try:
                    FaceUri.parse(uri)
                except LocalError as e:
                    raise ConfigError(f"{label}: {e}") from None
        listeners = self.listen + self.ndn
        for uri in listeners:
            # port 0 is a new ephemeral port each time, not the same address twice
            if listeners.count(uri) > 1 and not _ephemeral(FaceUri.parse(uri)):
                raise ConfigError(f"listen: {uri} is given twice")
        from ccn.trust import Anchors

        for text in self.trust:
            try:
                Anchors.parse_line(text, sep="=")
            except LocalError as e:
                raise ConfigError(f"trust: {e}") from None
        for key in ("cs_bytes", "cs_max_entries", "pit_max_entries", "pit_max_per_face"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1")
        for key in ("max_faces", "max_faces_per_host"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1")
        for key in ("cache_bytes", "cache_max_entries", "auto_merge", "auto_merge_age"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be at least 0")
        for f in fields(self):
            value = getattr(self, f.name)
            # status reports every setting as a msgpack integer: a larger one ended the node
            if type(value) is int and value > MAX_SETTING:
                raise ConfigError(f"{f.name} must be at most {MAX_SETTING}")
        if not MIN_FRAME <= self.max_frame <= DEFAULT_MAX_FRAME:
            raise ConfigError(f"max_frame must be in [{MIN_FRAME}, {DEFAULT_MAX_FRAME}]")
        if not 1 <= self.multicast_port <= 65535:
            raise ConfigError("multicast_port must be in [1, 65535]")
        for prefix in self.multicast_prefixes:
            if not prefix.components or prefix.is_localhost or prefix.is_localhop:
                raise ConfigError(
                    f"multicast_prefixes: {prefix} is not allowed (not /, /localhost, /localhop)"
                )
        from ccn.fw.strategy import strategy_names

        if self.strategy not in strategy_names():
            raise ConfigError(f"strategy must be one of {', '.join(strategy_names())}")

    @classmethod
    def from_file(cls, path: Path) -> NodeConfig:
        import tomllib  # only a node given --config reads TOML (every node loads this module)

        try:
            raw = tomllib.loads(read_regular(path).decode())
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config {path}: {e}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {path} is not UTF-8 text") from None
        return cls.from_mapping(raw, where=str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], *, where: str = "config") -> NodeConfig:
        """Settings from a parsed file (``where`` names it in every error)."""
        try:
            cfg = cls._from_mapping(raw)
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        return cfg

    @classmethod
    def _from_mapping(cls, raw: dict[str, Any]) -> NodeConfig:
        cfg = cls()
        known = {f.name for f in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}")
            if key == "store":
                cfg.store = Path(_typed(key, value, str)).expanduser()
            elif key == "listen":
                cfg.listen = [_typed(key, v, str) for v in _typed(key, value, list)]
                if not cfg.listen:  # a node nobody could reach, not even its own apps
                    raise ConfigError(
                        "listen is empty; give at least one address (or leave it out for the "
                        "defaults)"
                    )
            elif key == "ndn":
                cfg.ndn = [_typed(key, v, str) for v in _typed(key, value, list)]
            elif key == "trust":
                cfg.trust = [_typed(key, v, str) for v in _typed(key, value, list)]
            elif key == "routes":
                cfg.routes = [parse_route(_typed(key, v, str)) for v in _typed(key, value, list)]
            elif key == "interfaces":
                cfg.interfaces = [_typed(key, v, str) for v in _typed(key, value, list)]
            elif key == "multicast_prefixes":
                cfg.multicast_prefixes = [
                    _name(key, _typed(key, v, str)) for v in _typed(key, value, list)
                ]
            elif key == "strategy":
                cfg.strategy = _typed(key, value, str)
            elif key in ("fsync", "discovery"):
                setattr(cfg, key, _typed(key, value, bool))
            else:
                setattr(cfg, key, _typed(key, value, int))
        return cfg


_ROUTE = re.compile(r"(.*?)=([a-z][a-z0-9+.-]*://.*)", re.DOTALL)


def parse_route(text: str) -> tuple[Name, str]:
    """``/prefix=tcp://host:port`` → (prefix, uri). The ``=`` is the first one before a
    ``scheme://``, so a prefix may hold NDN spellings such as ``v=1``."""
    split = _ROUTE.fullmatch(text)
    prefix, sep, uri = (split[1], "=", split[2]) if split else text.partition("=")
    if not sep:
        raise ConfigError(
            f"route {text!r} must look like /prefix=tcp://host:port (or udp://, unix://)"
        )
    try:
        FaceUri.parse(uri)
        name = check_routable(Name.parse(prefix))
    except LocalError as e:  # say which setting: "name must start with '/'" alone did not
        raise ConfigError(f"route {text!r}: {e}") from None
    return name, uri


def check_routable(prefix: Name) -> Name:
    """``prefix``, if routes may be added for it or removed from it: not under ``/localhost``,
    which is the node's own (removing ``/localhost/ccn`` left a node deaf to every command
    until it restarted; a route under it sent the node's commands to another node)."""
    if prefix.is_localhost:
        raise ConfigError(f"{prefix}: /localhost is the node's own; it takes no routes")
    return prefix


def _typed(key: str, value: Any, kind: type[Any]) -> Any:
    if type(value) is not kind:
        raise ConfigError(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def _name(key: str, text: str) -> Name:
    try:
        return Name.parse(text)
    except LocalError as e:
        raise ConfigError(f"{key}: {e}") from None


def _ephemeral(uri: FaceUri) -> bool:
    """A listener the system gives a new port each time (``tcp://host:0``)."""
    return uri.scheme != "unix" and uri.port == 0


#: What a node makes in its store directory (docs/store.md section 4; ``pins.tmp.*``: a pins
#: update cut short), and what a file system may keep at the top of its own.
_STORE_ENTRIES = frozenset(
    ["objects", "packs", "tmp", "corrupt", "refs", "pins", "pins.lock", "cache", "lost+found"]
)


def _socket(path: Path) -> bool:
    """A Unix socket: a node's own, listening in its store (``--listen unix://STORE/n.sock``),
    left behind when it was killed; refused, the node could not start again (helper-54)."""
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def check_store_dir(store: Path) -> None:
    """Refuse a store path that is a file, or a directory that holds anything else than a ccn
    store: opening it as a store deletes old files in its ``tmp/`` and index-less
    ``packs/*.pack`` as crash debris, and adds the store's own directories among the user's
    (``--store ~`` or ``--store .``)."""
    if "\0" in str(store):
        raise ConfigError(f"store {str(store)!r}: a path cannot hold a NUL character")
    try:
        entries = {e for e in os.listdir(store) if e != "lost+found" and not _socket(store / e)}
    except FileNotFoundError:
        return
    except NotADirectoryError:
        if store.exists():
            raise ConfigError(f"store {store} is not a directory") from None
        raise
    foreign = sorted(
        e for e in entries if e not in _STORE_ENTRIES and not e.startswith("pins.tmp.")
    )
    if foreign or (entries and "objects" not in entries):
        stranger = foreign[0] if foreign else sorted(entries)[0]  # e.g. only a tmp/ of the user's
        raise ConfigError(
            f"store {store} is not a ccn store (it holds {stranger!r}); "
            "give a new or empty directory"
        )
