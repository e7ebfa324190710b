"""ccn: a content-centric networking node.

The public API, chosen here: connect to a node and use it, names, packets and errors. Each is
imported when first used, so that ``import ccn.something`` (the ``ccn`` command starting, say)
does not load the client and trio first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ccn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
