"""Face addresses: ``tcp://host:port``, ``udp://host:port`` and ``unix:///path``, parsed once at
the edge.

An IPv6 address goes in brackets (``tcp://[::1]:6464``). A link-local one names the interface
it is reached on, after ``%`` (``udp://[fe80::1%eth0]:6464``, as ``ip`` and ``ping`` write it);
RFC 6874's ``%25`` is accepted for the ``%`` too. Printed, a URI always takes the first form.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ccn.errors import LocalError


class InvalidUri(LocalError, ValueError):
    """A face address that is not ``tcp://host:port``, ``udp://host:port`` or ``unix:///path``."""


@dataclass(frozen=True, slots=True)
class FaceUri:
    scheme: str  # "tcp", "udp" or "unix"
    #: a name, an IPv4 address, or an IPv6 one without brackets (a zone after ``%``)
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> FaceUri:
        if "\0" in text:  # the kernel's paths end at one: a socket was bound cut short
            raise InvalidUri(f"bad address {text!r}: it holds a NUL character")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as e:
            raise InvalidUri(f"bad address {text!r}: {_why(text, e)}") from None
        if parts.scheme in ("tcp", "udp"):
            if not parts.hostname or port is None:
                raise InvalidUri(f"bad address {text!r}: expected {parts.scheme}://HOST:PORT")
            if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
                # accepted, it named the same face as without it, yet removing the route by the
                # text it was added with said "no route" (helper-53)
                raise InvalidUri(
                    f"bad address {text!r}: expected {parts.scheme}://HOST:PORT, nothing more"
                )
            host = parts.hostname
            if "%" in host:
                address, _, zone = host.partition("%")
                zone = zone.removeprefix("25")  # RFC 6874 escapes the "%" itself
                if not zone:
                    raise InvalidUri(f"bad address {text!r}: no interface after '%'")
                host = f"{address}%{zone}"
            return cls(parts.scheme, host=host, port=port)
        if parts.scheme == "unix":
            # as written: a "?" or "#" is part of a file name, not a query (helper-54: one
            # listened on ".../sock" for ".../sock?v=2.sock")
            path = text.partition("://")[2] if "://" in text else parts.path
            if not path:
                raise InvalidUri(f"bad address {text!r}: expected unix:///PATH")
            return cls("unix", path=path)
        raise InvalidUri(f"bad address {text!r}: scheme must be tcp://, udp:// or unix://")

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _why(text: str, error: ValueError) -> str:
    """What is wrong, said for the commonest slip: an IPv6 address without its brackets."""
    netloc = text.partition("://")[2].partition("/")[0]
    if netloc.count(":") > 1 and "[" not in netloc:
        return "an IPv6 address goes in brackets, as in tcp://[::1]:6464"
    if "Port" in str(error):  # urllib's "Port could not be cast to integer value as '-1'"
        return "the port must be a number from 0 to 65535"
    return str(error)


def unknown_zone(host: str) -> str | None:
    """Why ``host``'s zone (``fe80::1%eth0``) names no interface of this host, or None if it
    has none or names one: the resolver's own word for it is "Name or service not known"."""
    zone = host.partition("%")[2]
    if not zone or zone.isdigit():
        return None
    try:
        socket.if_nametoindex(zone)
    except OSError:
        return f"this host has no network interface {zone!r}"
    return None


def sockaddr_host(addr: tuple[object, ...]) -> str:
    """The host of a socket address as a URI gives it: an IPv6 link-local address with its zone
    (``fe80::1%eth0``; the kernel gives the zone as a scope id), else as it is."""
    host = str(addr[0])
    scope = addr[3] if len(addr) > 3 else 0
    if isinstance(scope, int) and scope and "%" not in host:
        with contextlib.suppress(OSError):
            host = f"{host}%{socket.if_indextoname(scope)}"
    return host


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_WILDCARDS = ("0.0.0.0", "::")


def is_own_address(target: FaceUri, bound: Iterable[FaceUri]) -> bool:
    """``target`` reaches one of the listeners ``bound`` (a node's own: a route to it would
    loop): the same Unix socket, or the same port of the same transport at the listener's
    address, or at any address of this host for a listener on all of them (``0.0.0.0``,
    ``::``). ``localhost`` counts as loopback; other names are not looked up."""
    for b in bound:
        if b.scheme != target.scheme:
            continue
        if b.scheme == "unix":
            if os.path.realpath(b.path) == os.path.realpath(target.path):
                return True
        elif b.port == target.port and _reaches(target.host, b.host):
            return True
    return False


def own_address_error(uri: str) -> str:
    """What a route to this node's own address ``uri`` is refused with (at start, and by
    ``ccn route add``): one wording wherever it is caught."""
    return f"{uri} is this node's own address: a route to it would loop"


def _reaches(target: str, listener: str) -> bool:
    """A connection to host ``target`` reaches a listener on host ``listener`` (same port)."""
    if target == listener:
        return True
    to = host_address(target)
    if to is None:
        return False
    if listener in _WILDCARDS:
        if listener == "0.0.0.0" and to.version != 4:
            return False
        return _of_this_host(target, to)
    at = host_address(listener)
    if at is None:
        return False
    if to.is_unspecified:  # connecting to 0.0.0.0 (or ::) reaches this host's loopback
        return at.is_loopback
    return to == at


def host_address(host: str) -> IpAddress | None:
    """``host`` as an address (``localhost`` as 127.0.0.1; an IPv4-mapped one as IPv4), or None
    for a name."""
    if host == "localhost":
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        addr = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _of_this_host(host: str, addr: IpAddress) -> bool:
    """``addr`` is this host's: unspecified, loopback, or one a socket can be bound to."""
    if addr.is_unspecified or addr.is_loopback:
        return True
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host if addr.version == 6 else str(addr), 0))
        except OSError:
            return False
    return True
