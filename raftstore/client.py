"""Async client for raftstore.

It knows every member's endpoint, finds the leader (members that are not
answer ``not_leader`` with a hint), and retries through failover until the
call's deadline. Writes carry ``(client id, sequence)`` so a write retried
after a leader change is applied once: the state machine remembers results
per client until the client says (``first_incomplete``) it has them.

Watches are served by any member and resume on another one from the last
revision seen, so a watcher gets every event once, in order, across member
failures; a start revision that has been compacted raises ``Compacted``.

Concurrency: one asyncio loop; each member connection multiplexes requests by
id and has one reader task.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Self

# The wire types are the state machine's own; only this light module of it.
from .mvcc.types import Event, KeyValue, prefix_range_end
from .protocol import ProtocolError, decode_body, encode, read_frame

RETRYABLE = {"not_leader", "leader_changed", "timeout", "overloaded", "unavailable"}


class RaftstoreError(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class Compacted(RaftstoreError):
    @property
    def compact_revision(self) -> int:
        return int(self.details.get("compact_revision", 0))


class Unavailable(RaftstoreError):
    """No member answered in time; for a write, its outcome is unknown."""


def _err(obj: dict[str, Any]) -> RaftstoreError:
    code = str(obj.get("code", "unknown"))
    message = str(obj.get("message", ""))
    details = {k: v for k, v in obj.items() if k not in ("code", "message")}
    cls = Compacted if code == "compacted" else RaftstoreError
    return cls(code, message, **details)


def _b(x: str | bytes) -> bytes:
    return x.encode() if isinstance(x, str) else x


prefix_end = prefix_range_end  # etcd's range end for a prefix


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    count: int
    more: bool
    revision: int


class _Conn:
    """One multiplexed connection to one member."""

    def __init__(self, endpoint: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.streams: dict[int, asyncio.Queue[dict[str, Any] | None]] = {}
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, endpoint: str, timeout: float) -> _Conn:
        host, port = endpoint.rsplit(":", 1)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), limit=32 * 1024 * 1024), timeout
        )
        return cls(endpoint, reader, writer)

    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await read_frame(self.reader)
                if frame is None:
                    break
                msg = decode_body(frame[1])
                rid = msg.get("id")
                q = self.streams.get(rid) if isinstance(rid, int) else None
                fut = self.pending.pop(rid, None) if isinstance(rid, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                elif q is not None:
                    q.put_nowait(msg)
                elif rid is None and "error" in msg:
                    # A connection-level error (bad frame): fail everything.
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, OSError):
            pass
        finally:
            self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection to {self.endpoint} closed"))
        self.pending.clear()
        for q in self.streams.values():
            q.put_nowait(None)
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001, S110 - the connection is gone whatever close() says
            pass

    async def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.closed:
            raise ConnectionError(f"connection to {self.endpoint} closed")
        rid = next(self.ids)
        msg["id"] = rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        self.writer.write(encode(msg))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(rid, None)

    def open_stream(self, msg: dict[str, Any]) -> tuple[int, asyncio.Queue[dict[str, Any] | None]]:
        if self.closed:
            raise ConnectionError(f"connection to {self.endpoint} closed")
        rid = next(self.ids)
        msg["id"] = rid
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.streams[rid] = q
        self.writer.write(encode(msg))
        return rid, q

    def close(self) -> None:
        self.task.cancel()
        self._close()


@dataclass
class WatchResponse:
    events: list[Event]
    revision: int  # the member's revision when it sent this batch


@dataclass(eq=False)
class Watch:
    """An open watch; iterate it with ``async for resp in watch``."""

    client: RaftstoreClient
    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    queue: asyncio.Queue[WatchResponse | BaseException] = field(default_factory=asyncio.Queue)
    last_revision: int = 0  # highest revision delivered
    created_revision: int = 0
    reconnects: int = 0
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __aiter__(self) -> AsyncIterator[WatchResponse]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[WatchResponse]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - we cancelled it; how it ended is moot
                pass


class RaftstoreClient:
    def __init__(
        self,
        endpoints: list[str] | str,
        *,
        timeout: float = 15.0,
        request_timeout: float = 2.0,
        client_id: str | None = None,
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.client_id = client_id or uuid.uuid4().hex
        self._conns: dict[str, _Conn] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._leader: str | None = None
        self._seq = itertools.count(1)
        self._outstanding: set[int] = set()
        self._watches: set[Watch] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for w in list(self._watches):
            await w.cancel()
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    # ---- plumbing --------------------------------------------------------
    async def _conn(self, endpoint: str) -> _Conn:
        c = self._conns.get(endpoint)
        if c is not None and not c.closed:
            return c
        lock = self._connecting.setdefault(endpoint, asyncio.Lock())
        async with lock:
            c = self._conns.get(endpoint)
            if c is not None and not c.closed:
                return c
            c = await _Conn.open(endpoint, self.request_timeout)
            self._conns[endpoint] = c
            return c

    def _next_endpoint(self, current: str | None) -> str:
        if current is None or current not in self.endpoints:
            return random.choice(self.endpoints)
        i = self.endpoints.index(current)
        return self.endpoints[(i + 1) % len(self.endpoints)]

    async def call(
        self, op: str, *, leader: bool = True, endpoint: str | None = None, timeout: float | None = None, **fields: Any
    ) -> Any:
        """Send one request, retrying through failover until ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        target = endpoint or self._leader or self.endpoints[0]
        backoff = 0.02
        last: BaseException | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(
                    "unavailable", f"{op} did not succeed in time; last error: {last}", outcome="unknown"
                ) from last
            try:
                conn = await self._conn(target)
                msg = await conn.request({"op": op, **fields}, min(self.request_timeout, remaining))
            except (TimeoutError, OSError, ConnectionError) as exc:
                last = exc
                if endpoint is not None:
                    raise Unavailable("unavailable", f"{endpoint}: {exc!r}") from exc
                if self._leader == target:
                    self._leader = None
                target = self._next_endpoint(target)
                await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
                backoff = min(backoff * 2, 0.2)
                continue
            if "error" not in msg:
                if leader and endpoint is None:
                    self._leader = target
                return msg.get("result")
            err = _err(msg["error"])
            if err.code not in RETRYABLE or endpoint is not None:
                raise err
            last = err
            hint = err.details.get("leader")
            if err.code == "not_leader" and hint and hint in self.endpoints and hint != target:
                target = hint
                self._leader = hint
                continue
            if self._leader == target:
                self._leader = None
            if err.code == "not_leader" or err.code == "leader_changed":
                target = hint if hint in self.endpoints else self._next_endpoint(target)
            await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
            backoff = min(backoff * 2, 0.2)

    async def _write(self, op: str, **fields: Any) -> Any:
        seq = next(self._seq)
        self._outstanding.add(seq)
        try:
            return await self.call(op, cid=self.client_id, seq=seq, fi=min(self._outstanding), **fields)
        finally:
            self._outstanding.discard(seq)

    # ---- KV --------------------------------------------------------------
    async def put(
        self, key: str | bytes, value: str | bytes, *, lease: int = 0, prev_kv: bool = False
    ) -> dict[str, Any]:
        res = await self._write("put", key=_b(key), value=_b(value), lease=lease, prev_kv=prev_kv)
        if res.get("prev_kv"):
            res["prev_kv"] = KeyValue.from_wire(res["prev_kv"])
        return res

    async def get(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: bytes | None = None,
        revision: int = 0,
        limit: int = 0,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> RangeResult:
        k = _b(key)
        end = prefix_end(k) if prefix else (range_end or b"")
        res = await self.call(
            "range",
            key=k,
            range_end=end,
            revision=revision,
            limit=limit,
            serializable=serializable,
            keys_only=keys_only,
            count_only=count_only,
        )
        return RangeResult([KeyValue.from_wire(d) for d in res["kvs"]], res["count"], res["more"], res["revision"])

    async def get_one(self, key: str | bytes, **kw: Any) -> KeyValue | None:
        r = await self.get(key, **kw)
        return r.kvs[0] if r.kvs else None

    async def delete(
        self, key: str | bytes, *, prefix: bool = False, range_end: bytes | None = None, prev_kv: bool = False
    ) -> dict[str, Any]:
        k = _b(key)
        end = prefix_end(k) if prefix else (range_end or b"")
        return await self._write("delete_range", key=k, range_end=end, prev_kv=prev_kv)

    async def txn(
        self, compare: list[dict[str, Any]], success: list[dict[str, Any]], failure: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return await self._write("txn", compare=compare, success=success, failure=failure or [])

    async def compact(self, revision: int) -> dict[str, Any]:
        return await self._write("compact", revision=revision)

    # ---- leases ----------------------------------------------------------
    async def lease_grant(self, ttl: int, lease_id: int = 0) -> int:
        res = await self._write("lease_grant", ttl=ttl, lease_id=lease_id)
        return int(res["id"])

    async def lease_keepalive(self, lease_id: int) -> int:
        res = await self.call("lease_keepalive", lease_id=lease_id)
        return int(res["ttl"])

    async def lease_revoke(self, lease_id: int) -> dict[str, Any]:
        return await self._write("lease_revoke", lease_id=lease_id)

    async def lease_ttl(self, lease_id: int) -> dict[str, Any]:
        return await self.call("lease_ttl", lease_id=lease_id)

    # ---- watch -----------------------------------------------------------
    def watch(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: bytes | None = None,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> Watch:
        k = _b(key)
        end = prefix_end(k) if prefix else (range_end or b"")
        w = Watch(self, k, end, start_revision, prev_kv)
        w.task = asyncio.get_running_loop().create_task(self._run_watch(w))
        self._watches.add(w)
        return w

    async def _run_watch(self, w: Watch) -> None:
        target = self._leader or random.choice(self.endpoints)
        next_rev = w.start_revision
        try:
            while True:
                try:
                    conn = await self._conn(target)
                    _rid, q = conn.open_stream(
                        {
                            "op": "watch",
                            "key": w.key,
                            "range_end": w.range_end,
                            "start_revision": next_rev,
                            "prev_kv": w.prev_kv,
                        }
                    )
                    while True:
                        msg = await q.get()
                        if msg is None:
                            raise ConnectionError("watch stream closed")
                        if "error" in msg:
                            err = _err(msg["error"])
                            if err.code in RETRYABLE:
                                raise ConnectionError(str(err))
                            w.queue.put_nowait(err)
                            return
                        if "result" in msg:
                            if not next_rev:
                                # Events after the creation revision are ours;
                                # a resume must start right after it.
                                next_rev = int(msg["result"]["revision"]) + 1
                                w.created_revision = next_rev - 1
                            w.ready.set()
                            continue
                        events = [Event.from_wire(e) for e in msg.get("events", [])]
                        events = [e for e in events if e.revision >= next_rev]
                        if events:
                            w.last_revision = events[-1].revision
                            next_rev = w.last_revision + 1
                            w.queue.put_nowait(WatchResponse(events, int(msg.get("revision", 0))))
                except (TimeoutError, OSError, ConnectionError):
                    w.reconnects += 1
                    target = self._next_endpoint(target)
                    await asyncio.sleep(0.05)
        finally:
            self._watches.discard(w)

    # ---- cluster ---------------------------------------------------------
    async def status(self, endpoint: str) -> dict[str, Any]:
        return await self.call("status", endpoint=endpoint, leader=False)

    async def digest(self, endpoint: str) -> dict[str, Any]:
        """A member's state digest (sha256 of its whole MVCC state) and revision."""
        return await self.call("digest", endpoint=endpoint, leader=False)

    async def cluster_status(self) -> list[dict[str, Any]]:
        async def one(ep: str) -> dict[str, Any]:
            try:
                return await self.status(ep)
            except RaftstoreError as exc:
                return {"endpoint": ep, "error": str(exc)}

        return list(await asyncio.gather(*(one(ep) for ep in self.endpoints)))

    async def admin(self, endpoint: str, op: str, **fields: Any) -> Any:
        return await self.call("admin_" + op, endpoint=endpoint, leader=False, **fields)

    async def wait_for_leader(self, timeout: float = 15.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for st in await self.cluster_status():
                if st.get("role") == "leader":
                    self._leader = st["endpoint"]
                    return st
            await asyncio.sleep(0.05)
        raise Unavailable("unavailable", f"no leader elected within {timeout} s")
