"""The client's Interests that await an answer, and the hand-over of each Data or Nack to the
answer registered for it: the per-packet part of :class:`ccn.client.Client`, compiled
(docs/compiled.md). No I/O but the face's ``send``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

from ccn.errors import ConnectError
from ccn.faces.base import Face
from ccn.packet import Data, Interest, Nack, Packet

#: Called with the Data or the Nack that answers an Interest.
Answer = Callable[[Data | Nack], None]
#: A registration: (answer, nonce), or a list of them for Interests that share one key.
Reg = tuple[Answer, int] | list[tuple[Answer, int]]

_nonces: Final = random.Random()


def new_nonce() -> int:
    """A random 32-bit nonce. Nonces detect loops, they are not secrets: a fast PRNG will do."""
    return _nonces.getrandbits(32)


class Pending:
    """Registrations by key, each (answer, nonce), or a list of them when several Interests
    share the key (tasks fetching the same name or object): the node's PIT aggregates those and
    sends one Data, which answers them all. The nonce lets Data (which carries none) clear the
    Interest's entry in ``by_nonce``, by which a Nack finds its Interest. One registration is a
    tuple, not a collection: the common case costs one dict write."""

    def __init__(self, face: Face) -> None:
        self.face = face
        self.by_digest: dict[bytes, Reg] = {}
        self.by_name: dict[Any, Reg] = {}
        self.by_prefix: dict[Any, Reg] = {}
        self.by_nonce: dict[int, Answer] = {}

    def send(self, interest: Interest, answer: Answer) -> None:
        """Register ``interest`` and send it; see :meth:`ccn.client.Client.send`."""
        face = self.face
        if face.closed:
            raise ConnectError("the connection to the node is closed")
        nonce = interest.nonce
        entry = (answer, nonce)
        table = self.table(interest)
        key = _key(interest)
        # (Not setdefault and an identity test: compiled, a tuple is a value, boxed afresh.)
        reg = table.get(key)
        if reg is None:
            table[key] = entry
        else:  # another Interest under this key is outstanding
            table[key] = [*reg, entry] if isinstance(reg, list) else [reg, entry]
        self.by_nonce[nonce] = answer
        face.send(interest)

    def forget(self, interest: Interest) -> None:
        nonce = interest.nonce
        self.by_nonce.pop(nonce, None)
        table = self.table(interest)
        key = _key(interest)
        reg = table.get(key)
        if reg is None:
            return
        left = [e for e in (reg if isinstance(reg, list) else [reg]) if e[1] != nonce]
        if not left:
            del table[key]
        else:
            table[key] = left[0] if len(left) == 1 else left

    def table(self, interest: Interest) -> dict[Any, Reg]:
        """The table ``interest`` is registered in: by digest if it has one, else by prefix
        (can-be-prefix) or by exact name."""
        if interest.digest is not None:
            return self.by_digest
        return self.by_prefix if interest.can_be_prefix else self.by_name

    def deliver(self, face: Face, packet: Packet) -> None:
        """Hand ``packet``, from the node, to what awaits it (the face's deliver callback)."""
        if type(packet) is Data:
            reg: Reg | None = None
            if not packet.name.components:  # nameless: found by its id only
                reg = self.by_digest.pop(packet.digest, None)
            else:
                reg = self.by_name.pop(packet.name, None)
                if reg is None and self.by_prefix:
                    for prefix in packet.name.prefixes():
                        reg = self.by_prefix.pop(prefix, None)
                        if reg is not None:
                            break
                if reg is None and self.by_digest:
                    reg = self.by_digest.pop(packet.digest, None)
            if isinstance(reg, tuple):
                answer, nonce = reg
                self.by_nonce.pop(nonce, None)
                answer(packet)
            elif reg is not None:
                for answer, nonce in reg:
                    self.by_nonce.pop(nonce, None)
                    answer(packet)
        elif type(packet) is Nack:
            on_nack = self.by_nonce.pop(packet.interest.nonce, None)
            if on_nack is not None:
                self.forget(packet.interest)
                on_nack(packet)


def _key(interest: Interest) -> Any:
    """What ``interest`` is registered under in its :meth:`Pending.table`."""
    return interest.digest if interest.digest is not None else interest.name
