"""Deterministic MVCC key-value state machine with etcd v3 semantics.

Every Raft member applies the same log entries to its own ``MVCCStore``, so
this module is a pure function of its inputs: no I/O, threads, clocks or
randomness, and nothing observable depends on ``hash()`` ordering (bytes
hashing is randomised per process, so sets are always sorted before they are
iterated for anything that reaches state or output).

Data layout
-----------
``_index``: ``SortedDict[bytes, list[KeyValue]]``
    Per key, its history in ``mod_revision`` order. A live record has
    ``version >= 1``; a deletion is a *tombstone*: a ``KeyValue`` with
    ``version == 0``, ``create_revision == 0`` and an empty value. The
    sorted index gives O(log n + k) range and prefix scans; a read at a past
    revision bisects the key's history.
``_events``: ``list[Event]``
    Every change in revision order (the watch log). Events share their
    ``KeyValue`` objects with ``_index`` (both are immutable), so the log
    costs little more than the pointers, and pickle keeps the sharing.
``_leases``: ``dict[int, Lease]``
    Granted leases and the keys attached to them. Expiry is *not* tracked
    here: the Raft leader owns the clock and proposes ``lease_revoke``.
``_sessions``: ``OrderedDict[str, _Session]``
    Exactly-once bookkeeping per client, in least-recently-used order.
``revision`` / ``compact_revision``
    Plain ints; read them freely, never assign them from outside.

Revisions follow etcd: an empty store is at revision 1, every operation that
changes at least one key bumps the revision by exactly one, and all changes of
that operation (e.g. all puts of a txn) carry the new revision.

Concurrency model
-----------------
The store is **not** thread-safe. The caller (the Raft apply loop) serialises
every mutating call (``apply``, ``apply_client``). Read methods (``range``,
``events_since``, ``get``, ``lease_ttl``, ``leases``, ``stats``, ``digest``)
may be called from another thread only while holding the same lock the
caller uses around mutations. The whole object is picklable (the Raft library
snapshots it with pickle); state lives in plain attributes only.

Error model
-----------
Bad input raises ``MVCCError`` (one subclass per ``code``). Every operation
is validated completely before the first mutation, so a failing operation -
including a txn that fails in its last branch op - leaves the store unchanged.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, NamedTuple

import msgpack
from sortedcontainers import SortedDict

__all__ = [
    "KeyValue",
    "Event",
    "Lease",
    "RangeResult",
    "MVCCStore",
    "MVCCError",
    "CompactedError",
    "FutureRevisionError",
    "LeaseNotFoundError",
    "InvalidArgumentError",
    "SessionExpiredError",
    "prefix_range_end",
    "DEFAULT_MAX_SESSIONS",
    "MAX_TXN_DEPTH",
    "MAX_LEASE_TTL",
]

DEFAULT_MAX_SESSIONS: Final[int] = 10_000
# Nesting is bounded so a hostile txn cannot hit Python's recursion limit on
# some members but not others.
MAX_TXN_DEPTH: Final[int] = 32
# etcd's MaxLeaseTTL.
MAX_LEASE_TTL: Final[int] = 9_000_000_000
_MAX_INT64: Final[int] = 2**63 - 1
_MAX_CLIENT_ID_LEN: Final[int] = 1024


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
# Public value types
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


@dataclass(slots=True)
class _Session:
    first_incomplete: int
    results: dict[int, dict[str, Any]]
    last_used: int
    # Min-heap of the seqs in ``results``: pruning below first_incomplete is
    # O(log n) per dropped result instead of a scan of every stored result
    # (a client with 64 writes in flight made that scan the hot spot).
    order: list[int] = field(default_factory=list)


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


# --------------------------------------------------------------------------
# Parsed requests (validated once, then executed without further checks)
# --------------------------------------------------------------------------


class _Put(NamedTuple):
    key: bytes
    value: bytes
    lease: int
    prev_kv: bool
    ignore_value: bool
    ignore_lease: bool


class _Delete(NamedTuple):
    key: bytes
    range_end: bytes
    prev_kv: bool


class _Range(NamedTuple):
    key: bytes
    range_end: bytes
    revision: int
    limit: int
    keys_only: bool
    count_only: bool


class _Compare(NamedTuple):
    key: bytes
    range_end: bytes
    target: str
    result: str
    value: Any


class _Txn(NamedTuple):
    compare: tuple[_Compare, ...]
    success: tuple[Any, ...]
    failure: tuple[Any, ...]


class _Resolved(NamedTuple):
    """A txn with every branch decision already taken (against pre-txn state)."""

    succeeded: bool
    ops: list[Any]


class _Compact(NamedTuple):
    revision: int


class _LeaseGrant(NamedTuple):
    id: int
    ttl: int


class _LeaseRevoke(NamedTuple):
    id: int


class _Noop(NamedTuple):
    pass


class _ExecCtx:
    """Per-operation scratch: the tentative revision and results to stamp."""

    __slots__ = ("rev", "changed", "results")

    def __init__(self, rev: int) -> None:
        self.rev = rev
        self.changed = False
        self.results: list[dict[str, Any]] = []


_REQUIRED: Final = object()
_MOD_REV = attrgetter("mod_revision")
_EVENT_REV = attrgetter("kv.mod_revision")

# field -> (kind, default); kinds are checked by _check_field.
_FieldSpec = dict[str, tuple[str, Any]]
_OP_FIELDS: Final[dict[str, _FieldSpec]] = {
    "put": {
        "key": ("bytes", _REQUIRED),
        "value": ("bytes", b""),
        "lease": ("lease", 0),
        "prev_kv": ("bool", False),
        "ignore_value": ("bool", False),
        "ignore_lease": ("bool", False),
    },
    "delete_range": {
        "key": ("bytes", _REQUIRED),
        "range_end": ("bytes", b""),
        "prev_kv": ("bool", False),
    },
    "range": {
        "key": ("bytes", _REQUIRED),
        "range_end": ("bytes", b""),
        "revision": ("uint", 0),
        "limit": ("uint", 0),
        "keys_only": ("bool", False),
        "count_only": ("bool", False),
    },
    "txn": {
        "compare": ("list", ()),
        "success": ("list", ()),
        "failure": ("list", ()),
    },
    "compact": {"revision": ("uint", _REQUIRED)},
    "lease_grant": {"id": ("lease_id", _REQUIRED), "ttl": ("ttl", _REQUIRED)},
    "lease_revoke": {"id": ("lease_id", _REQUIRED)},
    "noop": {},
}
_COMPARE_FIELDS: Final[_FieldSpec] = {
    "key": ("bytes", _REQUIRED),
    "range_end": ("bytes", b""),
    "target": ("str", _REQUIRED),
    "result": ("str", _REQUIRED),
    "value": ("any", _REQUIRED),
}
_TXN_BRANCH_OPS: Final[frozenset[str]] = frozenset({"put", "delete_range", "range", "txn"})
_COMPARE_TARGETS: Final[frozenset[str]] = frozenset({"value", "version", "create", "mod", "lease"})
_COMPARE_RESULTS: Final[frozenset[str]] = frozenset({"==", "!=", "<", ">"})


def _is_int(v: Any) -> bool:
    # bool is an int subclass; a True lease id is a client bug, not lease 1.
    return type(v) is int


def _check_field(where: str, name: str, kind: str, v: Any) -> None:
    bad: str | None = None
    if kind == "bytes":
        if type(v) is not bytes:
            bad = "must be bytes"
    elif kind == "bool":
        if type(v) is not bool:
            bad = "must be a bool"
    elif kind == "uint":
        if not _is_int(v) or v < 0:
            bad = "must be a non-negative int"
        elif v > _MAX_INT64:
            bad = "must fit in int64"
    elif kind == "lease":
        if not _is_int(v) or v < 0 or v > _MAX_INT64:
            bad = "must be an int in [0, 2**63)"
    elif kind == "lease_id":
        if not _is_int(v) or v <= 0 or v > _MAX_INT64:
            bad = "must be an int in [1, 2**63)"
    elif kind == "ttl":
        if not _is_int(v) or v <= 0 or v > MAX_LEASE_TTL:
            bad = f"must be an int in [1, {MAX_LEASE_TTL}]"
    elif kind == "list":
        if not isinstance(v, (list, tuple)):
            bad = "must be a list"
    elif kind == "str":
        if type(v) is not str:
            bad = "must be a str"
    if bad is not None:
        raise InvalidArgumentError(
            f"{where}: field {name!r} {bad} (got {type(v).__name__})", field=name
        )


class _Where:
    """An error-message prefix built only if an error is raised: formatting
    it for every valid op cost more than validating the op."""

    __slots__ = ("base", "name")

    def __init__(self, base: Any, name: str) -> None:
        self.base = base
        self.name = name

    def __str__(self) -> str:
        return f"{self.base} {self.name!r}"

    __format__ = lambda self, spec: format(str(self), spec)  # noqa: E731


def _take_fields(where: str, d: Any, spec: _FieldSpec, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise InvalidArgumentError(f"{where} must be a dict, got {type(d).__name__}")
    unknown = [k for k in d if k not in spec and k not in skip]
    if unknown:
        # sorted reprs: deterministic message even for mixed str/bytes keys
        names = ", ".join(sorted(repr(k) for k in unknown))
        raise InvalidArgumentError(f"{where}: unknown field(s) {names}")
    out: dict[str, Any] = {}
    for name, (kind, default) in spec.items():
        if name in d:
            v = d[name]
        elif default is _REQUIRED:
            raise InvalidArgumentError(f"{where}: missing required field {name!r}", field=name)
        else:
            v = default
        _check_field(where, name, kind, v)
        out[name] = v
    return out


def _check_range_key(where: str, key: bytes, range_end: bytes) -> None:
    # etcd rejects an empty key for single-key ops; with a range_end an empty
    # key simply means "from the first key".
    if not key and not range_end:
        raise InvalidArgumentError(f"{where}: key must not be empty")


def _range_bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None, bool]:
    """(start, end or None for unbounded, single_key)."""
    if range_end == b"":
        return key, None, True
    if range_end == b"\0":
        return key, None, False
    return key, range_end, False


def _in_range(k: bytes, start: bytes, end: bytes | None, single: bool) -> bool:
    if single:
        return k == start
    return k >= start and (end is None or k < end)


def _cmp(a: Any, result: str, b: Any) -> bool:
    if result == "==":
        return bool(a == b)
    if result == "!=":
        return bool(a != b)
    if result == "<":
        return bool(a < b)
    return bool(a > b)


def _compare_target(kv: KeyValue, target: str) -> Any:
    if target == "value":
        return kv.value
    if target == "version":
        return kv.version
    if target == "create":
        return kv.create_revision
    if target == "mod":
        return kv.mod_revision
    return kv.lease


_Interval = tuple[bytes, bytes | None]


def _intersects(k: bytes, dels: list[_Interval]) -> bool:
    return any(k >= s and (e is None or k < e) for s, e in dels)


def _check_intervals(ops: tuple[Any, ...]) -> tuple[dict[bytes, None], list[_Interval]]:
    """etcd's checkIntervals: no key may be put twice, or put and deleted, in one txn.

    Returns (puts, deletes) of this op list including nested txns. The then
    and else branches of one nested txn exclude each other, so the same key
    may be put in both. Dicts instead of sets keep iteration deterministic.
    """
    dels: list[_Interval] = []
    for op in ops:
        if isinstance(op, _Delete):
            start, end, single = _range_bounds(op.key, op.range_end)
            dels.append((start, start + b"\0") if single else (start, end))
    puts: dict[bytes, None] = {}
    for op in ops:
        if not isinstance(op, _Txn):
            continue
        puts_then, dels_then = _check_intervals(op.success)
        puts_else, dels_else = _check_intervals(op.failure)
        for k in puts_then:
            if k in puts or _intersects(k, dels):
                raise _duplicate_key(k)
            puts[k] = None
        for k in puts_else:
            if (k in puts and k not in puts_then) or _intersects(k, dels):
                raise _duplicate_key(k)
            puts[k] = None
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if isinstance(op, _Put):
            if op.key in puts or _intersects(op.key, dels):
                raise _duplicate_key(op.key)
            puts[op.key] = None
    return puts, dels


def _duplicate_key(k: bytes) -> InvalidArgumentError:
    return InvalidArgumentError(f"duplicate key given in txn request: {k!r}", key=k)


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------


class MVCCStore:
    """The replicated state machine. See the module docstring for the layout."""

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if not _is_int(max_sessions) or max_sessions < 1:
            raise InvalidArgumentError("max_sessions must be a positive int")
        self.revision: int = 1
        self.compact_revision: int = 0
        self.max_sessions: int = max_sessions
        self._index: SortedDict = SortedDict()  # bytes -> list[KeyValue]
        self._events: list[Event] = []
        self._leases: dict[int, Lease] = {}
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        # Deterministic LRU clock: counts apply_client calls, never wall time.
        self._session_tick: int = 0
        # Maintained incrementally so stats() is O(1).
        self._live_keys: int = 0
        self._records: int = 0

    # ------------------------------------------------------------------ apply

    def apply(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one operation; returns a msgpack-friendly result with "op" and "revision".

        Raises MVCCError (store unchanged) on invalid input. Besides the
        mutations, ``{"op": "range", ...}`` is accepted for reads that must
        go through the log.
        """
        req = self._parse(op, depth=0, where="op")
        if isinstance(req, (_Put, _Delete, _Range, _Txn)):
            return self._apply_kv(req)
        if isinstance(req, _Compact):
            return self._apply_compact(req)
        if isinstance(req, _LeaseGrant):
            return self._apply_lease_grant(req)
        if isinstance(req, _LeaseRevoke):
            return self._apply_lease_revoke(req)
        return {"op": "noop", "revision": self.revision}

    def apply_client(
        self, client_id: str, seq: int, first_incomplete: int, op: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``apply`` with exactly-once semantics per (client_id, seq).

        The first application's result dict is stored and returned as is; a
        retry of an applied seq gets a copy marked ``"duplicate": True`` and
        changes nothing. If the op failed, the error is stored as
        ``{"error": {...}}`` and every call for that seq raises it again
        (retries with ``duplicate=True`` in its details). A seq below the
        client's recorded ``first_incomplete`` raises ``session_expired``.

        Limitation: at most ``max_sessions`` clients are remembered (LRU by
        call count). An evicted client is treated as new, so a late retry of
        a write it already made would be applied a second time.
        """
        if type(client_id) is not str or not client_id or len(client_id) > _MAX_CLIENT_ID_LEN:
            raise InvalidArgumentError(
                f"client_id must be a non-empty str of at most {_MAX_CLIENT_ID_LEN} chars"
            )
        if not _is_int(seq) or seq < 0 or seq > _MAX_INT64:
            raise InvalidArgumentError("seq must be a non-negative int", field="seq")
        if not _is_int(first_incomplete) or first_incomplete < 0:
            raise InvalidArgumentError(
                "first_incomplete must be a non-negative int", field="first_incomplete"
            )
        if first_incomplete > seq:
            # The request itself is still incomplete, so it bounds first_incomplete.
            raise InvalidArgumentError(
                f"first_incomplete {first_incomplete} is above seq {seq}",
                field="first_incomplete",
            )
        sess = self._sessions.get(client_id)
        if sess is not None and seq < sess.first_incomplete:
            raise SessionExpiredError(
                f"result of seq {seq} for client {client_id!r} was already discarded "
                f"(client acknowledged everything below {sess.first_incomplete})",
                client_id=client_id,
                seq=seq,
                first_incomplete=sess.first_incomplete,
            )

        self._session_tick += 1
        if sess is None:
            sess = _Session(first_incomplete, {}, self._session_tick, [])
            self._sessions[client_id] = sess
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(client_id)
            sess.last_used = self._session_tick
            if first_incomplete > sess.first_incomplete:
                sess.first_incomplete = first_incomplete
                order = sess.order
                while order and order[0] < first_incomplete:
                    sess.results.pop(heapq.heappop(order), None)
            stored = sess.results.get(seq)
            if stored is not None:
                if "error" in stored:
                    raise MVCCError.from_dict({**stored["error"], "duplicate": True})
                dup = dict(stored)
                dup["duplicate"] = True
                return dup

        try:
            result = self.apply(op)
        except MVCCError as e:
            sess.results[seq] = {"error": e.to_dict()}
            heapq.heappush(sess.order, seq)
            raise
        sess.results[seq] = result
        heapq.heappush(sess.order, seq)
        return result

    # ------------------------------------------------------------------ reads

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> RangeResult:
        """Live keys in the etcd range at ``revision`` (0 = current), sorted by key.

        ``count`` is the number of keys in range regardless of ``limit``;
        ``revision`` of the result is the store's current revision.
        """
        where = "range"
        fields = {
            "key": ("bytes", key),
            "range_end": ("bytes", range_end),
            "revision": ("uint", revision),
            "limit": ("uint", limit),
            "keys_only": ("bool", keys_only),
            "count_only": ("bool", count_only),
        }
        for name, (kind, v) in fields.items():
            _check_field(where, name, kind, v)
        _check_range_key(where, key, range_end)
        req = _Range(key, range_end, revision, limit, keys_only, count_only)
        self._check_read_revision(revision)
        return self._do_range(req, revision or self.revision)

    def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        """The single live key ``key`` at ``revision`` (0 = current), or None."""
        res = self.range(key, revision=revision)
        return res.kvs[0] if res.kvs else None

    def events_since(
        self, start_revision: int, key: bytes, range_end: bytes = b"", *, limit: int = 0
    ) -> list[Event]:
        """Events with revision >= ``start_revision`` for keys in the range, oldest first.

        Compaction rule (etcd's watchable store, ``if r < compactRev``): raises
        ``compacted`` when ``0 < start_revision < compact_revision``. Starting
        exactly at the compact revision is fine because its events are kept.
        ``start_revision == 0`` means "from now on" as in an etcd watch, so it
        returns nothing; callers resume at ``revision + 1``. ``limit`` caps the
        number of events, but a revision's events are never split: whole
        revisions only, except that a single revision larger than ``limit``
        is returned whole so that the caller always makes progress.
        """
        where = "events_since"
        _check_field(where, "start_revision", "uint", start_revision)
        _check_field(where, "key", "bytes", key)
        _check_field(where, "range_end", "bytes", range_end)
        _check_field(where, "limit", "uint", limit)
        _check_range_key(where, key, range_end)
        if start_revision == 0:
            return []
        if start_revision < self.compact_revision:
            raise CompactedError(
                f"revision {start_revision} is compacted; watch from "
                f"{self.compact_revision} or later",
                compact_revision=self.compact_revision,
                revision=start_revision,
            )
        start, end, single = _range_bounds(key, range_end)
        events = self._events
        out: list[Event] = []
        group: list[Event] = []
        group_rev = -1
        # Index loop, not islice: islice would walk the skipped prefix.
        for i in range(bisect_left(events, start_revision, key=_EVENT_REV), len(events)):
            ev = events[i]
            rev = ev.kv.mod_revision
            if rev != group_rev:
                if group:
                    if limit and out and len(out) + len(group) > limit:
                        return out
                    out.extend(group)
                    group = []
                    if limit and len(out) >= limit:
                        return out
                group_rev = rev
            if _in_range(ev.kv.key, start, end, single):
                group.append(ev)
        if group and not (limit and out and len(out) + len(group) > limit):
            out.extend(group)
        return out

    def lease_ttl(self, lease_id: int, *, keys: bool = True) -> dict[str, Any]:
        """``{"id", "ttl", "keys": [sorted attached keys]}``; raises lease_not_found.

        ``ttl`` is the granted TTL: remaining time is the leader's business.
        """
        _check_field("lease_ttl", "id", "lease_id", lease_id)
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError(f"lease {lease_id} not found", id=lease_id)
        info: dict[str, Any] = {"id": lease.id, "ttl": lease.ttl}
        if keys:
            info["keys"] = sorted(lease.keys)
        return info

    def leases(self) -> list[dict[str, Any]]:
        """All leases as ``{"id", "ttl"}``, ordered by id."""
        return [{"id": l.id, "ttl": l.ttl} for _, l in sorted(self._leases.items())]

    def stats(self) -> dict[str, int]:
        return {
            "revision": self.revision,
            "compact_revision": self.compact_revision,
            "keys": self._live_keys,
            "history": self._records,
            "events": len(self._events),
            "leases": len(self._leases),
            "sessions": len(self._sessions),
        }

    def digest(self) -> str:
        """SHA-256 of the full logical state, equal on members that applied the same log.

        Independent of hash seeds and pickling, so members can compare it to
        detect divergence. O(state size).
        """
        h = hashlib.sha256()
        pack = msgpack.Packer(use_bin_type=True)

        def kvt(kv: KeyValue | None) -> Any:
            if kv is None:
                return None
            return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)

        h.update(pack.pack((self.revision, self.compact_revision, self.max_sessions, self._session_tick)))
        for k, hist in self._index.items():
            h.update(pack.pack((k, [kvt(kv) for kv in hist])))
        h.update(b"events")
        for ev in self._events:
            h.update(pack.pack((ev.type, kvt(ev.kv), kvt(ev.prev_kv))))
        h.update(b"leases")
        for lid, lease in sorted(self._leases.items()):
            h.update(pack.pack((lid, lease.ttl, sorted(lease.keys))))
        h.update(b"sessions")
        for cid, s in self._sessions.items():
            h.update(pack.pack((cid, s.first_incomplete, s.last_used, sorted(s.results.items()))))
        return h.hexdigest()

    # ---------------------------------------------------------------- parsing

    def _parse(self, op: Any, *, depth: int, where: str) -> Any:
        if not isinstance(op, Mapping):
            raise InvalidArgumentError(f"{where} must be a dict, got {type(op).__name__}")
        name = op.get("op")
        if type(name) is not str or name not in _OP_FIELDS:
            raise InvalidArgumentError(f"{where}: unknown op {name!r}", op=repr(name))
        if depth > 0 and name not in _TXN_BRANCH_OPS:
            raise InvalidArgumentError(f"{where}: op {name!r} is not allowed inside a txn")
        where = _Where(where, name)  # type: ignore[assignment]
        f = _take_fields(where, op, _OP_FIELDS[name], skip=("op",))
        if name == "put":
            _check_range_key(where, f["key"], b"")
            if f["ignore_value"] and f["value"]:
                raise InvalidArgumentError(f"{where}: value is provided with ignore_value")
            if f["ignore_lease"] and f["lease"]:
                raise InvalidArgumentError(f"{where}: lease is provided with ignore_lease")
            return _Put(f["key"], f["value"], f["lease"], f["prev_kv"], f["ignore_value"], f["ignore_lease"])
        if name == "delete_range":
            _check_range_key(where, f["key"], f["range_end"])
            return _Delete(f["key"], f["range_end"], f["prev_kv"])
        if name == "range":
            _check_range_key(where, f["key"], f["range_end"])
            return _Range(f["key"], f["range_end"], f["revision"], f["limit"], f["keys_only"], f["count_only"])
        if name == "txn":
            if depth >= MAX_TXN_DEPTH:
                raise InvalidArgumentError(f"{where}: txn nesting deeper than {MAX_TXN_DEPTH}")
            compare = tuple(
                self._parse_compare(c, f"{where} compare[{i}]") for i, c in enumerate(f["compare"])
            )
            success = tuple(
                self._parse(o, depth=depth + 1, where=f"{where} success[{i}]")
                for i, o in enumerate(f["success"])
            )
            failure = tuple(
                self._parse(o, depth=depth + 1, where=f"{where} failure[{i}]")
                for i, o in enumerate(f["failure"])
            )
            if depth == 0:
                # Like etcd, the request is checked statically (both branches),
                # independent of which branch will run.
                _check_intervals(success)
                _check_intervals(failure)
            return _Txn(compare, success, failure)
        if name == "compact":
            return _Compact(f["revision"])
        if name == "lease_grant":
            return _LeaseGrant(f["id"], f["ttl"])
        if name == "lease_revoke":
            return _LeaseRevoke(f["id"])
        return _Noop()

    @staticmethod
    def _parse_compare(c: Any, where: str) -> _Compare:
        f = _take_fields(where, c, _COMPARE_FIELDS)
        _check_range_key(where, f["key"], f["range_end"])
        if f["target"] not in _COMPARE_TARGETS:
            raise InvalidArgumentError(
                f"{where}: unknown compare target {f['target']!r} "
                f"(expected one of {sorted(_COMPARE_TARGETS)})"
            )
        if f["result"] not in _COMPARE_RESULTS:
            raise InvalidArgumentError(
                f"{where}: unknown compare result {f['result']!r} "
                f"(expected one of {sorted(_COMPARE_RESULTS)})"
            )
        v = f["value"]
        if f["target"] == "value":
            if type(v) is not bytes:
                raise InvalidArgumentError(f"{where}: a value compare needs a bytes value")
        elif not _is_int(v):
            raise InvalidArgumentError(f"{where}: a {f['target']} compare needs an int value")
        return _Compare(f["key"], f["range_end"], f["target"], f["result"], v)

    # ------------------------------------------------------- kv ops and txns

    def _apply_kv(self, req: Any) -> dict[str, Any]:
        # One shape for put/delete/range/txn: decide branches, check, execute
        # at a single tentative revision, commit the revision if anything changed.
        plan = self._resolve(req) if isinstance(req, _Txn) else req
        self._check_plan(plan)
        ctx = _ExecCtx(self.revision + 1)
        result = self._exec(plan, ctx)
        if ctx.changed:
            self.revision = ctx.rev
        for r in ctx.results:
            r["revision"] = self.revision
        return result

    def _resolve(self, txn: _Txn) -> _Resolved:
        # etcd's compareToPath: every compare, nested ones included, sees the
        # state before the txn, so the whole path is known before any write.
        ok = all(self._compare_holds(c) for c in txn.compare)
        ops = txn.success if ok else txn.failure
        return _Resolved(ok, [self._resolve(o) if isinstance(o, _Txn) else o for o in ops])

    def _compare_holds(self, c: _Compare) -> bool:
        # etcd's applyCompare: a range holds if it holds for every existing key;
        # no key at all compares as a zero KeyValue, except that a value
        # compare then always fails (absent is not the same as empty).
        found = False
        for kv in self._scan(c.key, c.range_end, self.revision):
            found = True
            if not _cmp(_compare_target(kv, c.target), c.result, c.value):
                return False
        if found:
            return True
        if c.target == "value":
            return False
        return _cmp(0, c.result, c.value)

    def _check_plan(self, plan: Any) -> None:
        """Everything that could fail at execution time, checked up front.

        Sufficient because leases and compaction cannot change inside a txn
        and _check_intervals forbids a txn from touching a put key twice, so
        pre-txn key existence is what each put will see.
        """
        if isinstance(plan, _Resolved):
            for op in plan.ops:
                self._check_plan(op)
        elif isinstance(plan, _Put):
            if plan.lease and plan.lease not in self._leases:
                raise LeaseNotFoundError(f"lease {plan.lease} not found", id=plan.lease)
            if (plan.ignore_value or plan.ignore_lease) and self._latest_live(plan.key) is None:
                raise InvalidArgumentError(
                    f"key not found: {plan.key!r} (ignore_value/ignore_lease need an existing key)",
                    key=plan.key,
                )
        elif isinstance(plan, _Range):
            self._check_read_revision(plan.revision)

    def _check_read_revision(self, revision: int) -> None:
        if revision == 0:
            return
        if revision < self.compact_revision:
            raise CompactedError(
                f"required revision {revision} has been compacted (compact revision "
                f"{self.compact_revision})",
                compact_revision=self.compact_revision,
                revision=revision,
            )
        if revision > self.revision:
            raise FutureRevisionError(
                f"required revision {revision} is a future revision (current "
                f"revision {self.revision})",
                revision=revision,
                current_revision=self.revision,
            )

    def _exec(self, plan: Any, ctx: _ExecCtx) -> dict[str, Any]:
        if isinstance(plan, _Put):
            return self._do_put(plan, ctx)
        if isinstance(plan, _Delete):
            return self._do_delete(plan, ctx)
        if isinstance(plan, _Range):
            # Inside a txn a current read must see the txn's own earlier
            # writes, which sit at the tentative revision ctx.rev.
            res = self._do_range(plan, plan.revision or ctx.rev)
            out = {
                "op": "range",
                "revision": 0,
                "kvs": [kv.to_wire() for kv in res.kvs],
                "count": res.count,
                "more": res.more,
            }
            ctx.results.append(out)
            return out
        assert isinstance(plan, _Resolved)
        out = {
            "op": "txn",
            "revision": 0,
            "succeeded": plan.succeeded,
            "responses": [self._exec(op, ctx) for op in plan.ops],
        }
        ctx.results.append(out)
        return out

    def _latest_live(self, key: bytes) -> KeyValue | None:
        hist = self._index.get(key)
        if not hist:
            return None
        kv = hist[-1]
        return None if kv.version == 0 else kv

    def _do_put(self, req: _Put, ctx: _ExecCtx) -> dict[str, Any]:
        rev = ctx.rev
        hist: list[KeyValue] | None = self._index.get(req.key)
        prev = None
        if hist:
            prev = hist[-1] if hist[-1].version else None
        else:
            hist = []
            self._index[req.key] = hist
        value = prev.value if (req.ignore_value and prev) else req.value
        lease = prev.lease if (req.ignore_lease and prev) else req.lease
        if prev is None:
            kv = KeyValue(req.key, value, rev, rev, 1, lease)
            self._live_keys += 1
        else:
            kv = KeyValue(req.key, value, prev.create_revision, rev, prev.version + 1, lease)
            if prev.lease and prev.lease != lease:
                old = self._leases.get(prev.lease)
                if old is not None:
                    old.keys.discard(req.key)
        if lease:
            self._leases[lease].keys.add(req.key)
        hist.append(kv)
        self._records += 1
        self._events.append(Event("PUT", kv, prev))
        ctx.changed = True
        out = {
            "op": "put",
            "revision": 0,
            "prev_kv": prev.to_wire() if (req.prev_kv and prev is not None) else None,
        }
        ctx.results.append(out)
        return out

    def _delete_live(self, key: bytes, hist: list[KeyValue], prev: KeyValue, rev: int) -> None:
        tomb = KeyValue(key, b"", 0, rev, 0, 0)
        hist.append(tomb)
        self._records += 1
        self._live_keys -= 1
        if prev.lease:
            lease = self._leases.get(prev.lease)
            if lease is not None:
                lease.keys.discard(key)
        self._events.append(Event("DELETE", tomb, prev))

    def _do_delete(self, req: _Delete, ctx: _ExecCtx) -> dict[str, Any]:
        deleted: list[KeyValue] = []
        start, end, single = _range_bounds(req.key, req.range_end)
        if single:
            keys: Any = (start,) if start in self._index else ()
        elif end is not None and end <= start:
            keys = ()
        else:
            keys = self._index.irange(start, end, inclusive=(True, False))
        # Only per-key lists are appended to while iterating; the SortedDict's
        # key set is untouched, so iterating irange is safe.
        for k in keys:
            hist = self._index[k]
            prev = hist[-1]
            if prev.version == 0:
                continue
            self._delete_live(k, hist, prev, ctx.rev)
            deleted.append(prev)
        if deleted:
            ctx.changed = True
        out: dict[str, Any] = {"op": "delete_range", "revision": 0, "deleted": len(deleted)}
        if req.prev_kv:
            out["prev_kvs"] = [kv.to_wire() for kv in deleted]
        ctx.results.append(out)
        return out

    # ---------------------------------------------------------------- reading

    def _scan(self, key: bytes, range_end: bytes, rev: int) -> Iterator[KeyValue]:
        """Live KeyValues in range as of ``rev``, in key order."""
        start, end, single = _range_bounds(key, range_end)
        if single:
            hist = self._index.get(start)
            if hist:
                kv = self._at(hist, rev)
                if kv is not None:
                    yield kv
            return
        if end is not None and end <= start:
            return
        index = self._index
        for k in index.irange(start, end, inclusive=(True, False)):
            kv = self._at(index[k], rev)
            if kv is not None:
                yield kv

    @staticmethod
    def _at(hist: list[KeyValue], rev: int) -> KeyValue | None:
        kv = hist[-1]
        if kv.mod_revision > rev:
            i = bisect_right(hist, rev, key=_MOD_REV) - 1
            if i < 0:
                return None
            kv = hist[i]
        return None if kv.version == 0 else kv

    def _do_range(self, req: _Range, rev: int) -> RangeResult:
        kvs: list[KeyValue] = []
        count = 0
        for kv in self._scan(req.key, req.range_end, rev):
            count += 1
            if req.count_only or (req.limit and count > req.limit):
                continue
            if req.keys_only:
                kv = KeyValue(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version, kv.lease)
            kvs.append(kv)
        more = bool(req.limit) and count > req.limit and not req.count_only
        return RangeResult(kvs, count, more, self.revision)

    # ------------------------------------------------------ compact & leases

    def _apply_compact(self, req: _Compact) -> dict[str, Any]:
        rev = req.revision
        if rev <= self.compact_revision:
            raise CompactedError(
                f"revision {rev} is already compacted (compact revision {self.compact_revision})",
                compact_revision=self.compact_revision,
                revision=rev,
            )
        if rev > self.revision:
            raise FutureRevisionError(
                f"cannot compact future revision {rev} (current revision {self.revision})",
                revision=rev,
                current_revision=self.revision,
            )
        # Keep, per key, the newest record <= rev (so reads at exactly rev
        # still work) unless it is a tombstone; drop everything older.
        # O(keys * log(history) + dropped); emptied keys leave the index.
        emptied: list[bytes] = []
        dropped = 0
        for k, hist in self._index.items():
            if hist[0].mod_revision > rev or (len(hist) == 1 and hist[0].version):
                continue
            i = bisect_right(hist, rev, key=_MOD_REV) - 1
            cut = i + 1 if hist[i].version == 0 else i
            if cut:
                del hist[:cut]
                dropped += cut
                if not hist:
                    emptied.append(k)
        for k in emptied:
            del self._index[k]
        self._records -= dropped
        del self._events[: bisect_left(self._events, rev, key=_EVENT_REV)]
        self.compact_revision = rev
        return {"op": "compact", "revision": self.revision}

    def _apply_lease_grant(self, req: _LeaseGrant) -> dict[str, Any]:
        if req.id in self._leases:
            raise InvalidArgumentError(f"lease already exists: {req.id}", id=req.id)
        self._leases[req.id] = Lease(req.id, req.ttl, set())
        return {"op": "lease_grant", "revision": self.revision, "id": req.id, "ttl": req.ttl}

    def _apply_lease_revoke(self, req: _LeaseRevoke) -> dict[str, Any]:
        lease = self._leases.get(req.id)
        if lease is None:
            raise LeaseNotFoundError(f"lease {req.id} not found", id=req.id)
        rev = self.revision + 1
        keys = sorted(lease.keys)  # set order is per-process; events must not be
        for k in keys:
            hist = self._index[k]
            # Attached keys are live by invariant (delete and re-lease detach).
            self._delete_live(k, hist, hist[-1], rev)
        del self._leases[req.id]
        if keys:
            self.revision = rev
        return {"op": "lease_revoke", "revision": self.revision, "deleted": len(keys)}
