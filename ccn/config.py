"""Node configuration: flags and an optional TOML file, merged into one value.

The TOML file takes the same settings as the flags (``store``, ``listen = [...]``,
``routes = ["/prefix=tcp://host:port", ...]``) plus table bounds (``cs_bytes``,
``pit_max_entries``, ...). Flags given on the command line win over the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ccn.defaults import default_listen, default_store
from ccn.errors import LocalError
from ccn.faces.uri import FaceUri
from ccn.name import Name


class ConfigError(LocalError):
    """The configuration (file or flags) is invalid."""


@dataclass
class NodeConfig:
    store: Path = field(default_factory=default_store)
    listen: list[str] = field(default_factory=default_listen)
    routes: list[tuple[Name, str]] = field(default_factory=list)
    #: fsync every stored object (durable publishes at some cost in speed).
    fsync: bool = False
    cs_bytes: int = 64 << 20
    cs_max_entries: int = 65536
    pit_max_entries: int = 65536
    pit_max_per_face: int = 16384

    def validate(self) -> None:
        for uri in self.listen:
            FaceUri.parse(uri)
        for _prefix, uri in self.routes:
            FaceUri.parse(uri)

    @classmethod
    def from_file(cls, path: Path) -> NodeConfig:
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config {path}: {e}") from None
        return cls.from_mapping(raw, where=str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], *, where: str = "config") -> NodeConfig:
        cfg = cls()
        known = {f.name for f in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{where}: unknown setting {key!r}")
            if key == "store":
                cfg.store = Path(_typed(where, key, value, str)).expanduser()
            elif key == "listen":
                cfg.listen = [_typed(where, key, v, str) for v in _typed(where, key, value, list)]
            elif key == "routes":
                cfg.routes = [parse_route(_typed(where, key, v, str)) for v in value]
            elif key == "fsync":
                cfg.fsync = _typed(where, key, value, bool)
            else:
                setattr(cfg, key, _typed(where, key, value, int))
        cfg.validate()
        return cfg


def parse_route(text: str) -> tuple[Name, str]:
    """``/prefix=tcp://host:port`` → (prefix, uri)."""
    prefix, sep, uri = text.partition("=")
    if not sep:
        raise ConfigError(f"route {text!r} must look like /prefix=tcp://host:port")
    FaceUri.parse(uri)
    return Name.parse(prefix), uri


def _typed(where: str, key: str, value: Any, kind: type[Any]) -> Any:
    if type(value) is not kind:
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    return value
