"""The MVCC store's public vocabulary: records, events, results, errors, limits.

This is the part of ``raftstore.mvcc`` that clients share with the state
machine (``raftstore.client`` decodes wire dicts into these same classes), so
it imports nothing beyond the standard library: no sortedcontainers, no
msgpack. Keep it that way; the heavy parts live in ``store`` and friends.

Concurrency model: values only. ``KeyValue`` and ``Event`` are frozen and may
be shared freely between threads; ``Lease`` and ``RangeResult`` are mutable
and belong to whoever holds them (the store, under its caller's lock, or the
caller it returned them to).

Pickling: records go into every Raft snapshot and errors cross process
boundaries, so each class here reduces to a plain constructor call. New
pickles name this module; ``raftstore.mvcc`` still resolves the
``raftstore.mvcc.<name>`` paths that snapshots from before the package split
contain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

DEFAULT_MAX_SESSIONS: Final[int] = 10_000
# Nesting is bounded so a hostile txn cannot hit Python's recursion limit on
# some members but not others.
MAX_TXN_DEPTH: Final[int] = 32
# etcd's MaxLeaseTTL.
MAX_LEASE_TTL: Final[int] = 9_000_000_000
# Upper bound for revisions, lease ids and seqs: etcd's wire types are int64.
MAX_INT64: Final[int] = 2**63 - 1


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class MVCCError(Exception):
    """An operation was rejected. ``code`` is the stable, machine-readable part.

    Codes: ``compacted``, ``future_revision``, ``lease_not_found``,
    ``invalid_argument``, ``session_expired``. ``details`` carries
    msgpack-friendly extra fields (e.g. ``compact_revision``).
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code: str = code
        self.message: str = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> MVCCError:
        """Rebuild the error (as its code's subclass) from ``to_dict()`` output."""
        rest = dict(d)
        code = rest.pop("code")
        message = rest.pop("message")
        cls = _ERROR_CLASSES.get(code)
        if cls is None:
            return MVCCError(code, message, **rest)
        return cls(message, **rest)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default pickling replays self.args into __init__, which
        # does not match this signature.
        return (_error_from_dict, (self.to_dict(),))


def _error_from_dict(d: Mapping[str, Any]) -> MVCCError:
    # Module-level so pickle can reference it by name.
    return MVCCError.from_dict(d)


class CompactedError(MVCCError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("compacted", message, **details)


class FutureRevisionError(MVCCError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("future_revision", message, **details)


class LeaseNotFoundError(MVCCError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("lease_not_found", message, **details)


class InvalidArgumentError(MVCCError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("invalid_argument", message, **details)


class SessionExpiredError(MVCCError):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__("session_expired", message, **details)


_ERROR_CLASSES: Final[dict[str, type[MVCCError]]] = {
    "compacted": CompactedError,
    "future_revision": FutureRevisionError,
    "lease_not_found": LeaseNotFoundError,
    "invalid_argument": InvalidArgumentError,
    "session_expired": SessionExpiredError,
}


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


# frozen: history records are shared between the index, the event log and
# results handed to callers, so nobody may mutate one in place.
@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # Positional reconstruction pickles several times faster than the
        # generic slots protocol, and snapshots hold one of these per record.
        return (
            KeyValue,
            (self.key, self.value, self.create_revision, self.mod_revision, self.version, self.lease),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "k": self.key,
            "v": self.value,
            "cr": self.create_revision,
            "mr": self.mod_revision,
            "ver": self.version,
            "lease": self.lease,
        }

    @staticmethod
    def from_wire(d: Mapping[str, Any]) -> KeyValue:
        return KeyValue(d["k"], d["v"], d["cr"], d["mr"], d["ver"], d["lease"])


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # "PUT" | "DELETE"
    kv: KeyValue
    prev_kv: KeyValue | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event, (self.type, self.kv, self.prev_kv))

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.type,
            "kv": self.kv.to_wire(),
            "prev": None if self.prev_kv is None else self.prev_kv.to_wire(),
        }

    @staticmethod
    def from_wire(d: Mapping[str, Any]) -> Event:
        prev = d.get("prev")
        return Event(
            d["t"],
            KeyValue.from_wire(d["kv"]),
            None if prev is None else KeyValue.from_wire(prev),
        )


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    # Never iterate this unsorted where the order could be observed.
    keys: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    count: int
    more: bool
    revision: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "kvs": [kv.to_wire() for kv in self.kvs],
            "count": self.count,
            "more": self.more,
            "revision": self.revision,
        }


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's ``getPrefix``: the ``range_end`` covering every key starting with ``prefix``.

    Increments the last byte below 0xff after dropping trailing 0xff bytes;
    an empty or all-0xff prefix has no upper bound, which etcd spells b"\\0".
    """
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"
