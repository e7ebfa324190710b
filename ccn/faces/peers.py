"""Whether a peer is an app on this host that may act for the node's user.

A face is *local* (it may use ``/localhost``: management, publishing) when its peer is on this
host and runs as the node's user or as root. A Unix socket is protected by its file mode; a
loopback TCP or UDP peer could be any user's process, so its owner is looked up in
``/proc/net/{tcp,udp}[6]`` by the peer's own address (the node and its peer share the network
namespace). Where that table cannot be read, a loopback peer is taken as local, as before.
"""

from __future__ import annotations

import ipaddress
import os

__all__ = ["is_local_peer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address (an IPv4-mapped one too, as a dual-stack socket sees an
    IPv4 peer), or ``localhost``."""
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host == "localhost"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def is_local_peer(transport: str, host: str, port: int) -> bool:
    """``transport`` is ``"tcp"`` or ``"udp"``; ``host``/``port`` the peer's address."""
    if not is_loopback(host):
        return False
    uid = peer_uid(transport, host, port)
    return uid is None or uid == 0 or uid == os.geteuid()


def _proc_addresses(host: str, port: int) -> list[tuple[str, str]]:
    """Where ``/proc/net`` may list the peer's socket: its address as the table writes it
    (address words in host byte order, hex), and which table (``""`` or ``"6"``). An
    IPv4-mapped address is an IPv4 socket's (the v4 table) or a dual-stack one's (the v6)."""
    addr = ipaddress.ip_address(host.split("%")[0])
    if isinstance(addr, ipaddress.IPv4Address):
        word = int.from_bytes(addr.packed, "little")
        return [(f"{word:08X}:{port:04X}", "")]
    packed = addr.packed
    words = "".join(f"{int.from_bytes(packed[i : i + 4], 'little'):08X}" for i in range(0, 16, 4))
    v6 = (f"{words}:{port:04X}", "6")
    if addr.ipv4_mapped is not None:
        return [*_proc_addresses(str(addr.ipv4_mapped), port), v6]
    return [v6]


def peer_uid(transport: str, host: str, port: int) -> int | None:
    """The uid owning the socket bound to ``host:port`` on this host, or None if unknown."""
    try:
        places = _proc_addresses(host, port)
    except ValueError:
        return None
    for wanted, table in places:
        try:
            with open(f"/proc/net/{transport}{table}", encoding="ascii") as f:
                next(f, None)  # the header
                for line in f:
                    fields = line.split()
                    if len(fields) > 7 and fields[1] == wanted:
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None
