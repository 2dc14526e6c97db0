"""``MVCCStore``: the replicated state machine (index, reads, writes, txns, leases).

The determinism and error rules of the whole package (see ``raftstore.mvcc``)
apply here first of all: this module is a pure function of the operations
applied, and an operation is validated completely before its first mutation.

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
``_sessions``: ``OrderedDict[str, Session]``
    Exactly-once bookkeeping per client, in least-recently-used order.
``revision`` / ``compact_revision``
    Plain ints; read them freely, never assign them from outside.

These attributes are the pickled form of the store (the Raft library
snapshots it with pickle), so renaming or regrouping them breaks loading the
snapshots that members already have on disk.

Concurrency model
-----------------
The store is **not** thread-safe. The caller (the Raft apply loop) serialises
every mutating call (``apply``, ``apply_client``). Read methods (``range``,
``events_since``, ``get``, ``lease_ttl``, ``leases``, ``stats``, ``digest``)
may be called from another thread only while holding the same lock the
caller uses around mutations.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import msgpack
from sortedcontainers import SortedDict

from . import compaction, sessions
from .index import latest_live, scan
from .ops import (
    Compact,
    Delete,
    KVOp,
    LeaseGrant,
    LeaseRevoke,
    Put,
    Range,
    Txn,
    check_field,
    check_range_key,
    is_int,
    parse_op,
    range_bounds,
)
from .sessions import Session
from .txn import Resolved, Step, resolve
from .types import (
    DEFAULT_MAX_SESSIONS,
    CompactedError,
    Event,
    FutureRevisionError,
    InvalidArgumentError,
    KeyValue,
    Lease,
    LeaseNotFoundError,
    MVCCError,
    RangeResult,
)
from .watchlog import select_events


class _ExecCtx:
    """Per-operation scratch: the tentative revision and results to stamp."""

    __slots__ = ("changed", "results", "rev")

    def __init__(self, rev: int) -> None:
        self.rev = rev
        self.changed = False
        self.results: list[dict[str, Any]] = []


class MVCCStore:
    """The replicated state machine. See the module docstring for the layout."""

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if not is_int(max_sessions) or max_sessions < 1:
            raise InvalidArgumentError("max_sessions must be a positive int")
        self.revision: int = 1
        self.compact_revision: int = 0
        self.max_sessions: int = max_sessions
        self._index: SortedDict = SortedDict()  # bytes -> list[KeyValue]
        self._events: list[Event] = []
        self._leases: dict[int, Lease] = {}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
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
        req = parse_op(op, depth=0, where="op")
        if isinstance(req, (Put, Delete, Range, Txn)):
            return self._apply_kv(req)
        if isinstance(req, Compact):
            return self._apply_compact(req)
        if isinstance(req, LeaseGrant):
            return self._apply_lease_grant(req)
        if isinstance(req, LeaseRevoke):
            return self._apply_lease_revoke(req)
        return {"op": "noop", "revision": self.revision}

    def apply_client(self, client_id: str, seq: int, first_incomplete: int, op: Mapping[str, Any]) -> dict[str, Any]:
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
        sess = sessions.find(self._sessions, client_id, seq, first_incomplete)
        self._session_tick += 1
        sess, duplicate = sessions.touch(
            self._sessions,
            sess,
            max_sessions=self.max_sessions,
            tick=self._session_tick,
            client_id=client_id,
            seq=seq,
            first_incomplete=first_incomplete,
        )
        if duplicate is not None:
            return duplicate
        try:
            result = self.apply(op)
        except MVCCError as e:
            sessions.remember(sess, seq, {"error": e.to_dict()})
            raise
        sessions.remember(sess, seq, result)
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
            check_field(where, name, kind, v)
        check_range_key(where, key, range_end)
        req = Range(key, range_end, revision, limit, keys_only, count_only)
        self._check_read_revision(revision)
        return self._do_range(req, revision or self.revision)

    def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        """The single live key ``key`` at ``revision`` (0 = current), or None."""
        res = self.range(key, revision=revision)
        return res.kvs[0] if res.kvs else None

    def events_since(self, start_revision: int, key: bytes, range_end: bytes = b"", *, limit: int = 0) -> list[Event]:
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
        check_field(where, "start_revision", "uint", start_revision)
        check_field(where, "key", "bytes", key)
        check_field(where, "range_end", "bytes", range_end)
        check_field(where, "limit", "uint", limit)
        check_range_key(where, key, range_end)
        if start_revision == 0:
            return []
        if start_revision < self.compact_revision:
            raise CompactedError(
                f"revision {start_revision} is compacted; watch from {self.compact_revision} or later",
                compact_revision=self.compact_revision,
                revision=start_revision,
            )
        return select_events(self._events, start_revision, key, range_end, limit)

    def lease_ttl(self, lease_id: int, *, keys: bool = True) -> dict[str, Any]:
        """``{"id", "ttl", "keys": [sorted attached keys]}``; raises lease_not_found.

        ``ttl`` is the granted TTL: remaining time is the leader's business.
        """
        check_field("lease_ttl", "id", "lease_id", lease_id)
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError(f"lease {lease_id} not found", id=lease_id)
        info: dict[str, Any] = {"id": lease.id, "ttl": lease.ttl}
        if keys:
            info["keys"] = sorted(lease.keys)
        return info

    def leases(self) -> list[dict[str, Any]]:
        """All leases as ``{"id", "ttl"}``, ordered by id."""
        return [{"id": ls.id, "ttl": ls.ttl} for _, ls in sorted(self._leases.items())]

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

    # ------------------------------------------------------- kv ops and txns

    def _apply_kv(self, req: KVOp) -> dict[str, Any]:
        # One shape for put/delete/range/txn: decide branches, check, execute
        # at a single tentative revision, commit the revision if anything changed.
        plan = resolve(self._index, self.revision, req) if isinstance(req, Txn) else req
        self._check_plan(plan)
        ctx = _ExecCtx(self.revision + 1)
        result = self._exec(plan, ctx)
        if ctx.changed:
            self.revision = ctx.rev
        for r in ctx.results:
            r["revision"] = self.revision
        return result

    def _check_plan(self, plan: Step) -> None:
        """Everything that could fail at execution time, checked up front.

        Sufficient because leases and compaction cannot change inside a txn
        and the parser's interval check forbids a txn from touching a put key
        twice, so pre-txn key existence is what each put will see.
        """
        if isinstance(plan, Resolved):
            for op in plan.ops:
                self._check_plan(op)
        elif isinstance(plan, Put):
            if plan.lease and plan.lease not in self._leases:
                raise LeaseNotFoundError(f"lease {plan.lease} not found", id=plan.lease)
            if (plan.ignore_value or plan.ignore_lease) and latest_live(self._index, plan.key) is None:
                raise InvalidArgumentError(
                    f"key not found: {plan.key!r} (ignore_value/ignore_lease need an existing key)",
                    key=plan.key,
                )
        elif isinstance(plan, Range):
            self._check_read_revision(plan.revision)

    def _check_read_revision(self, revision: int) -> None:
        if revision == 0:
            return
        if revision < self.compact_revision:
            raise CompactedError(
                f"required revision {revision} has been compacted (compact revision {self.compact_revision})",
                compact_revision=self.compact_revision,
                revision=revision,
            )
        if revision > self.revision:
            raise FutureRevisionError(
                f"required revision {revision} is a future revision (current revision {self.revision})",
                revision=revision,
                current_revision=self.revision,
            )

    def _exec(self, plan: Step, ctx: _ExecCtx) -> dict[str, Any]:
        if isinstance(plan, Put):
            return self._do_put(plan, ctx)
        if isinstance(plan, Delete):
            return self._do_delete(plan, ctx)
        if isinstance(plan, Range):
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
        assert isinstance(plan, Resolved)
        out = {
            "op": "txn",
            "revision": 0,
            "succeeded": plan.succeeded,
            "responses": [self._exec(op, ctx) for op in plan.ops],
        }
        ctx.results.append(out)
        return out

    def _do_put(self, req: Put, ctx: _ExecCtx) -> dict[str, Any]:
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

    def _do_delete(self, req: Delete, ctx: _ExecCtx) -> dict[str, Any]:
        deleted: list[KeyValue] = []
        start, end, single = range_bounds(req.key, req.range_end)
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

    def _do_range(self, req: Range, rev: int) -> RangeResult:
        kvs: list[KeyValue] = []
        count = 0
        for kv in scan(self._index, req.key, req.range_end, rev):
            count += 1
            if req.count_only or (req.limit and count > req.limit):
                continue
            if req.keys_only:
                kv = KeyValue(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version, kv.lease)
            kvs.append(kv)
        more = bool(req.limit) and count > req.limit and not req.count_only
        return RangeResult(kvs, count, more, self.revision)

    # ------------------------------------------------------ compact & leases

    def _apply_compact(self, req: Compact) -> dict[str, Any]:
        compaction.check_target(req.revision, self.compact_revision, self.revision)
        self._records -= compaction.compact_history(self._index, self._events, req.revision)
        self.compact_revision = req.revision
        return {"op": "compact", "revision": self.revision}

    def _apply_lease_grant(self, req: LeaseGrant) -> dict[str, Any]:
        if req.id in self._leases:
            raise InvalidArgumentError(f"lease already exists: {req.id}", id=req.id)
        self._leases[req.id] = Lease(req.id, req.ttl, set())
        return {"op": "lease_grant", "revision": self.revision, "id": req.id, "ttl": req.ttl}

    def _apply_lease_revoke(self, req: LeaseRevoke) -> dict[str, Any]:
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
