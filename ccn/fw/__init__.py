"""The sans-IO forwarder core: pipelines, strategies, and the events and actions they exchange.

Pure: nothing here imports trio, reads a clock, opens a socket or touches the disk.
"""

from ccn.fw.actions import (
    Action,
    DataIn,
    DataRefused,
    Event,
    FaceDown,
    FaceUnreachable,
    FaceUp,
    InterestIn,
    NackIn,
    SendData,
    SendInterest,
    SendNack,
    Tick,
)
from ccn.fw.adaptive import Adaptive
from ccn.fw.forwarder import NACK_SEVERITY, Counters, Forwarder, ForwarderConfig
from ccn.fw.strategy import BestRoute, Multicast, Strategy, make_strategy, register_strategy

__all__ = [
    "NACK_SEVERITY",
    "Action",
    "Adaptive",
    "BestRoute",
    "Counters",
    "DataIn",
    "DataRefused",
    "Event",
    "FaceDown",
    "FaceUnreachable",
    "FaceUp",
    "Forwarder",
    "ForwarderConfig",
    "InterestIn",
    "Multicast",
    "NackIn",
    "SendData",
    "SendInterest",
    "SendNack",
    "Strategy",
    "Tick",
    "make_strategy",
    "register_strategy",
]
