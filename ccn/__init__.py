"""ccn: a content-centric networking node.

The public API, chosen here: connect to a node and use it, names, packets and errors. Each is
imported when first used, so that ``import ccn.something`` (the ``ccn`` command starting, say)
does not load the client and trio first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccn._lazy import lazy_exports

if TYPE_CHECKING:
    from ccn.client import Client, CommandError, connect
    from ccn.errors import (
        CcnError,
        ConnectError,
        FetchError,
        LocalError,
        NoRoute,
        NotFound,
        VerificationError,
    )
    from ccn.name import Name
    from ccn.packet import Data, Interest, Nack, NackReason

_WHERE = {
    "CcnError": "ccn.errors",
    "Client": "ccn.client",
    "CommandError": "ccn.client",
    "ConnectError": "ccn.errors",
    "Data": "ccn.packet",
    "FetchError": "ccn.errors",
    "Interest": "ccn.packet",
    "LocalError": "ccn.errors",
    "Nack": "ccn.packet",
    "NackReason": "ccn.packet",
    "Name": "ccn.name",
    "NoRoute": "ccn.errors",
    "NotFound": "ccn.errors",
    "VerificationError": "ccn.errors",
    "connect": "ccn.client",
}

__all__ = [
    "CcnError",
    "Client",
    "CommandError",
    "ConnectError",
    "Data",
    "FetchError",
    "Interest",
    "LocalError",
    "Nack",
    "NackReason",
    "Name",
    "NoRoute",
    "NotFound",
    "VerificationError",
    "connect",
]


__getattr__, __dir__ = lazy_exports("ccn", _WHERE, globals())
