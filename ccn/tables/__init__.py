"""Forwarding tables: data structures without policy (name tree, FIB, PIT, CS, dead-nonce list).

Pure: nothing here imports trio, reads a clock, opens a socket or touches the disk. Time is passed
in as ``now`` (monotonic seconds). Every table has a configurable bound and counters; decisions
(what to forward where, what to Nack) belong to :mod:`ccn.fw`.
"""

from ccn.tables.cs import ContentStore, CsEntry
from ccn.tables.dnl import DeadNonceList
from ccn.tables.fib import Fib, FibEntry, NextHop, TableFull
from ccn.tables.nametree import NameTree
from ccn.tables.pit import InRecord, OutRecord, Pit, PitEntry

__all__ = [
    "ContentStore",
    "CsEntry",
    "DeadNonceList",
    "Fib",
    "FibEntry",
    "InRecord",
    "NameTree",
    "NextHop",
    "OutRecord",
    "Pit",
    "PitEntry",
    "TableFull",
]
