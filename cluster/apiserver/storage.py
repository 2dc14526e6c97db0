"""Objects in raftstore: keys, encoding, and compare-and-swap writes.

Layout: ``/registry/<resource>/<namespace>/<name>`` (cluster-scoped:
``/registry/<resource>/<name>``); the value is the object's compact JSON with
``metadata.resourceVersion`` left out; an object's ``resourceVersion`` is its
key's ``mod_revision`` and a list's is the store revision.

Every write is one raftstore txn that compares the key's ``mod`` revision
(``version == 0`` for a create) with what the caller read, so two API server
handlers (in one process or several) racing on the same object never lose an
update: the loser sees ``succeeded == False`` and either retries on fresh data
or reports 409. Extra keys (the service IP and node port allocations) ride in
the same txn.

Reads are linearizable (raftstore's default), so a read after an
acknowledged write always sees it.

Raftstore errors map to Status errors: ``Compacted`` -> 410 Expired,
``Unavailable`` -> 503 for reads and 504 (outcome unknown) for writes.

Concurrency: one ``RaftstoreClient`` shared by every request handler on the
API server's asyncio loop; no locks are needed because all coordination is
the txn compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from raftstore.client import (
    Compacted,
    KeyValue,
    RaftstoreClient,
    RaftstoreError,
    Unavailable,
    prefix_end,
)

from . import errors


def encode(obj: dict[str, Any]) -> bytes:
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        md = dict(md)
        md.pop("resourceVersion", None)
        obj = dict(obj)
        obj["metadata"] = md
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def decode(value: bytes, revision: int) -> dict[str, Any]:
    obj = json.loads(value)
    md = obj.setdefault("metadata", {})
    md["resourceVersion"] = str(revision)
    return obj


def decode_kv(kv: KeyValue) -> dict[str, Any]:
    return decode(kv.value, kv.mod_revision)


@dataclass
class TxnResult:
    succeeded: bool
    revision: int
    current: KeyValue | None  # the key's current value when the compare failed


def _map_error(exc: Exception, write: bool) -> errors.APIError:
    if isinstance(exc, Compacted):
        return errors.gone(
            f"The resourceVersion for the provided list is too old: required revision has been "
            f"compacted (compact revision {exc.compact_revision})"
        )
    if isinstance(exc, Unavailable):
        if write:
            return errors.timeout(
                f"the storage did not confirm the write in time; its outcome is unknown ({exc.message})"
            )
        return errors.unavailable(f"storage unavailable: {exc.message}")
    if isinstance(exc, RaftstoreError):
        if exc.code == "future_revision":
            return errors.timeout(f"Too large resource version: {exc.message}")
        return errors.internal(f"storage error: {exc}")
    return errors.internal(f"storage error: {exc!r}")


class Store:
    def __init__(self, client: RaftstoreClient) -> None:
        self.client = client

    async def get(self, key: str) -> KeyValue | None:
        try:
            return await self.client.get_one(key)
        except (RaftstoreError, OSError) as exc:
            raise _map_error(exc, False) from exc

    async def range(self, key: str, end: bytes, *, revision: int = 0, limit: int = 0):  # type: ignore[no-untyped-def]
        try:
            return await self.client.get(key, range_end=end, revision=revision, limit=limit)
        except (RaftstoreError, OSError) as exc:
            raise _map_error(exc, False) from exc

    async def check_revision(self, revision: int) -> None:
        """410 if ``revision`` (a watch's start point minus one) is compacted away."""
        try:
            await self.client.get("/registry/", revision=revision, keys_only=True)
        except Compacted as exc:
            if exc.compact_revision <= revision + 1:
                return
            raise _map_error(exc, False) from exc
        except RaftstoreError as exc:
            if exc.code == "future_revision":
                return
            raise _map_error(exc, False) from exc

    async def current_revision(self) -> int:
        res = await self.range("/registry/", b"")
        return res.revision

    async def txn(
        self, compare: list[dict[str, Any]], success: list[dict[str, Any]], failure: list[dict[str, Any]]
    ) -> dict[str, Any]:
        try:
            return await self.client.txn(compare, success, failure)
        except (RaftstoreError, OSError) as exc:
            raise _map_error(exc, True) from exc

    @staticmethod
    def _put(key: str, value: bytes, lease: int = 0) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "put", "key": key.encode(), "value": value}
        if lease:
            op["lease"] = lease
        return op

    @staticmethod
    def _absent(key: str) -> dict[str, Any]:
        return {"key": key.encode(), "target": "version", "result": "==", "value": 0}

    async def create(
        self,
        key: str,
        obj: dict[str, Any],
        *,
        extra_absent: list[str] | None = None,
        extra_puts: list[tuple[str, bytes]] | None = None,
        lease: int = 0,
    ) -> TxnResult:
        """Put ``obj`` if ``key`` (and every ``extra_absent`` key) does not exist."""
        compare = [self._absent(key)] + [self._absent(k) for k in extra_absent or []]
        success = [self._put(key, encode(obj), lease)] + [self._put(k, v) for k, v in extra_puts or []]
        failure = [{"op": "range", "key": key.encode()}]
        res = await self.txn(compare, success, failure)
        cur = None
        if not res["succeeded"]:
            kvs = res["responses"][0].get("kvs") or []
            cur = KeyValue.from_wire(kvs[0]) if kvs else None
        return TxnResult(bool(res["succeeded"]), int(res["revision"]), cur)

    async def update(
        self,
        key: str,
        obj: dict[str, Any],
        mod_revision: int,
        *,
        extra_absent: list[str] | None = None,
        extra_puts: list[tuple[str, bytes]] | None = None,
        extra_deletes: list[str] | None = None,
        lease: int = 0,
    ) -> TxnResult:
        compare = [{"key": key.encode(), "target": "mod", "result": "==", "value": mod_revision}]
        compare += [self._absent(k) for k in extra_absent or []]
        success = [self._put(key, encode(obj), lease)] + [self._put(k, v) for k, v in extra_puts or []]
        success += [{"op": "delete_range", "key": k.encode()} for k in extra_deletes or []]
        res = await self.txn(compare, success, [{"op": "range", "key": key.encode()}])
        cur = None
        if not res["succeeded"]:
            kvs = res["responses"][0].get("kvs") or []
            cur = KeyValue.from_wire(kvs[0]) if kvs else None
        return TxnResult(bool(res["succeeded"]), int(res["revision"]), cur)

    async def delete(self, key: str, mod_revision: int, *, extra_deletes: list[str] | None = None) -> TxnResult:
        compare = [{"key": key.encode(), "target": "mod", "result": "==", "value": mod_revision}]
        success = [{"op": "delete_range", "key": key.encode()}]
        success += [{"op": "delete_range", "key": k.encode()} for k in extra_deletes or []]
        res = await self.txn(compare, success, [{"op": "range", "key": key.encode()}])
        cur = None
        if not res["succeeded"]:
            kvs = res["responses"][0].get("kvs") or []
            cur = KeyValue.from_wire(kvs[0]) if kvs else None
        return TxnResult(bool(res["succeeded"]), int(res["revision"]), cur)

    async def lease_grant(self, ttl: int) -> int:
        try:
            return await self.client.lease_grant(ttl)
        except (RaftstoreError, OSError) as exc:
            raise _map_error(exc, True) from exc


__all__ = ["Store", "encode", "decode", "decode_kv", "TxnResult", "prefix_end"]
