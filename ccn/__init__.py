"""ccn: a content-centric networking node.

The public API, chosen here: connect to a node and use it, names, packets and errors.
"""

from ccn.client import Client, connect
from ccn.errors import (
    CcnError,
    ConnectError,
    FetchError,
    NoRoute,
    NotFound,
    VerificationError,
)
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason

__all__ = [
    "CcnError",
    "Client",
    "ConnectError",
    "Data",
    "FetchError",
    "Interest",
    "Nack",
    "NackReason",
    "Name",
    "NoRoute",
    "NotFound",
    "VerificationError",
    "connect",
]
