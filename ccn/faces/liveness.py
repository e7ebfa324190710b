"""Signs of life from a face's peer: the probe that a ccn node answers at once, and what counts
as an answer. The node watches its neighbours with them (ccn/neighbours.py, ccn/faces/udp.py)
and a client its connection to its node (ccn/client.py)."""

from __future__ import annotations

import secrets

import trio

from ccn.faces.base import Face
from ccn.name import Name
from ccn.packet import Interest

#: What a probe asks for: sent with hop limit 0, which a ccn node answers at once with a
#: Nack (``hop-limit`` from another host, ``no-route`` from its own), whatever its routes
#: (docs/protocol.md §7).
PROBE = Name.parse("/localhop/ccn/probe")
PROBE_LIFETIME_MS = 1000
#: How often a stream face's counters are looked at for a probe's answer: nothing is added to
#: the path of each packet.
POLL = 0.02


def probe_interest() -> Interest:
    """An Interest for :data:`PROBE` with hop limit 0: a sign of life asked for."""
    return Interest(PROBE, secrets.randbits(32), PROBE_LIFETIME_MS, hop_limit=0)


def heard(face: Face) -> int:
    """Packets received from the peer of ``face`` that decoded, whatever they were: signs of a
    ccn node there (what is not a packet, another format version, is no sign)."""
    c = face.counters
    return c.in_interests + c.in_data + c.in_nacks


async def probe_stream(face: Face, timeout: float) -> bool:
    """Ask the peer of stream ``face`` for a sign of life; True when a packet comes from it
    within ``timeout``, False when none does or the face closes first. Looked at once more
    when the time is up: a loop held up meanwhile (a slow disk under a fetch) may have read the
    answer only as the timeout passed."""
    before = heard(face)
    face.send(probe_interest())
    with trio.move_on_after(timeout):
        while not face.closed:
            await trio.sleep(POLL)
            if heard(face) != before:
                return True
    return heard(face) != before
