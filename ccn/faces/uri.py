"""Face addresses: ``tcp://host:port``, ``udp://host:port`` and ``unix:///path``, parsed once at
the edge."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ccn.errors import LocalError


class InvalidUri(LocalError, ValueError):
    """A face address that is not ``tcp://host:port``, ``udp://host:port`` or ``unix:///path``."""


@dataclass(frozen=True, slots=True)
class FaceUri:
    scheme: str  # "tcp", "udp" or "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> FaceUri:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as e:
            raise InvalidUri(f"bad address {text!r}: {e}") from None
        if parts.scheme in ("tcp", "udp"):
            if not parts.hostname or port is None:
                raise InvalidUri(f"bad address {text!r}: expected {parts.scheme}://HOST:PORT")
            return cls(parts.scheme, host=parts.hostname, port=port)
        if parts.scheme == "unix":
            path = (parts.netloc + parts.path) if parts.netloc else parts.path
            if not path:
                raise InvalidUri(f"bad address {text!r}: expected unix:///PATH")
            return cls("unix", path=path)
        raise InvalidUri(f"bad address {text!r}: scheme must be tcp://, udp:// or unix://")

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"
