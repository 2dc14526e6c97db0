"""An in-memory stand-in for the API server's ``Store`` (raftstore keys, compare-and-swap txns), so the
registry's whole write path - decoding, defaulting, validation, patches, subresources, deletion, and the
encoding of what it stores - runs in a unit test, thousands of times a second, without a cluster.

Same contract as ``cluster.apiserver.storage.Store``: values are ``storage.encode``'s bytes (so an object
that cannot be stored fails here too), every write compares a revision, ``range`` reads ``[key, end)`` in
key order. One event loop, no locks: as the real one, it relies on the caller's single loop.
"""

from __future__ import annotations

from cluster.apiserver.storage import TxnResult, encode
from raftstore.client import KeyValue, RangeResult


class MemStore:
    def __init__(self) -> None:
        self.kv: dict[str, KeyValue] = {}
        self.rev = 1

    def _put(self, key: str, value: bytes, old: KeyValue | None) -> None:
        created = old.create_revision if old is not None else self.rev
        version = old.version + 1 if old is not None else 1
        self.kv[key] = KeyValue(key.encode(), value, created, self.rev, version)

    async def get(self, key: str) -> KeyValue | None:
        return self.kv.get(key)

    async def create(self, key, obj, *, extra_absent=None, extra_puts=None, lease=0) -> TxnResult:
        if key in self.kv or any(k in self.kv for k in extra_absent or []):
            return TxnResult(False, self.rev, self.kv.get(key))
        value = encode(obj)
        self.rev += 1
        self._put(key, value, None)
        for k, v in extra_puts or []:
            self._put(k, v, None)
        return TxnResult(True, self.rev, None)

    async def update(
        self, key, obj, mod_revision, *, extra_absent=None, extra_puts=None, extra_deletes=None, lease=0
    ) -> TxnResult:
        cur = self.kv.get(key)
        if cur is None or cur.mod_revision != mod_revision or any(k in self.kv for k in extra_absent or []):
            return TxnResult(False, self.rev, cur)
        value = encode(obj)
        self.rev += 1
        self._put(key, value, cur)
        for k, v in extra_puts or []:
            self._put(k, v, self.kv.get(k))
        for k in extra_deletes or []:
            self.kv.pop(k, None)
        return TxnResult(True, self.rev, None)

    async def delete(self, key, mod_revision, *, extra_deletes=None) -> TxnResult:
        cur = self.kv.get(key)
        if cur is None or cur.mod_revision != mod_revision:
            return TxnResult(False, self.rev, cur)
        self.rev += 1
        del self.kv[key]
        for k in extra_deletes or []:
            self.kv.pop(k, None)
        return TxnResult(True, self.rev, None)

    async def lease_grant(self, ttl: int) -> int:
        return 1

    async def range(self, key, end, *, revision=0, limit=0) -> RangeResult:
        lo, hi = key.encode() if isinstance(key, str) else key, end
        keys = sorted(k for k in self.kv if lo <= k.encode() and (not hi or k.encode() < hi))
        if not hi:
            keys = [k for k in keys if k.encode() == lo]
        page = keys[:limit] if limit else keys
        return RangeResult([self.kv[k] for k in page], len(keys), len(page) < len(keys), self.rev)
