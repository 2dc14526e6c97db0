"""Deterministic MVCC key-value state machine with etcd v3 semantics.

Every Raft member applies the same log entries to its own ``MVCCStore``, so
this package is a pure function of its inputs: no I/O, threads, clocks or
randomness, and nothing observable depends on ``hash()`` ordering (bytes
hashing is randomised per process, so sets are always sorted before they are
iterated for anything that reaches state or output).

Revisions follow etcd: an empty store is at revision 1, every operation that
changes at least one key bumps the revision by exactly one, and all changes of
that operation (e.g. all puts of a txn) carry the new revision.

Error model: bad input raises ``MVCCError`` (one subclass per ``code``).
Every operation is validated completely before the first mutation, so a
failing operation - including a txn that fails in its last branch op -
leaves the store unchanged.

Modules, one job each (after etcd's ``mvcc`` package):

* ``types``       records, events, results, errors, limits: the client's share,
                  free of heavy imports
* ``ops``         parsing and validation of op dicts into plans
* ``store``       ``MVCCStore``: the data layout, reads, writes, leases
* ``index``       reads of one key's history and range scans at a revision
* ``txn``         deciding a txn's branches against the pre-txn state
* ``watchlog``    selecting watch events from the event log
* ``compaction``  dropping history and events below a revision
* ``sessions``    exactly-once bookkeeping per client

Concurrency model: see ``store``; in short, not thread-safe, the Raft apply
loop serialises mutations and readers share its lock.

Importing this package loads only ``types``; ``MVCCStore`` (and with it
sortedcontainers and msgpack) loads on first use, so that the client, which
imports ``raftstore.mvcc.types``, stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import (
    DEFAULT_MAX_SESSIONS,
    MAX_LEASE_TTL,
    MAX_TXN_DEPTH,
    CompactedError,
    Event,
    FutureRevisionError,
    InvalidArgumentError,
    KeyValue,
    Lease,
    LeaseNotFoundError,
    MVCCError,
    RangeResult,
    SessionExpiredError,
    prefix_range_end,
)

# Pickles written before the package split name ``raftstore.mvcc._Session``
# and ``raftstore.mvcc._error_from_dict``; both must keep resolving so that
# members can load the snapshots they already have on disk.
from .types import _error_from_dict as _error_from_dict

if TYPE_CHECKING:
    from .store import MVCCStore

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "MAX_LEASE_TTL",
    "MAX_TXN_DEPTH",
    "CompactedError",
    "Event",
    "FutureRevisionError",
    "InvalidArgumentError",
    "KeyValue",
    "Lease",
    "LeaseNotFoundError",
    "MVCCError",
    "MVCCStore",
    "RangeResult",
    "SessionExpiredError",
    "prefix_range_end",
]


def __getattr__(name: str) -> Any:
    # PEP 562 lazy attributes: the store's modules import sortedcontainers.
    if name == "MVCCStore":
        from .store import MVCCStore

        return MVCCStore
    if name == "_Session":
        from .sessions import Session

        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
