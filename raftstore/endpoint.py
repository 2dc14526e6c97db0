"""The client endpoint of a member: asyncio TCP, msgpack frames, batching.

Writes and linearizable reads that arrive during one event-loop iteration are
gathered and proposed as **one** Raft entry (``ReplicatedStore.apply_batch``).
Linearizable reads ride along as a barrier: they are answered from local state
only after that entry has committed in the leader's current term, so a leader
that has been deposed (and so cannot commit) never answers them. Serializable
reads are answered at once from local state, on any member.

Leases live in the state machine; their *deadlines* live on the leader only,
as in etcd. The decisions are ``lessor.Lessor``'s: this module tells it about
leadership, grants and confirmed keep-alives, and proposes the replicated
``lease_revoke`` it asks for, so every member deletes the keys at the same
revision. Watches are ``watch.WatchHub``'s, request shape checks
``request``'s; what stays here is the connection loop, dispatch and batching.

Concurrency: everything here runs on the member's asyncio thread, except the
proposal callbacks, which run on the Raft thread and only read the store
(under its lock) and the lessor's remaining TTLs before handing results back
with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Final

from pysyncobj.config import FAIL_REASON

from .conn import Conn
from .lessor import Lessor
from .mvcc.types import MVCCError
from .protocol import (
    MAX_FRAME_BYTES,
    MAX_REQUEST_BYTES,
    ProtocolError,
    decode_body,
    error,
    read_frame,
)
from .raftnode import FAIL_NAMES, RaftNode
from .request import BARRIER_READS, WRITE_OPS, BadRequest, build_op, check_range_args
from .watch import WatchHub

log = logging.getLogger("raftstore.endpoint")

MAX_WATCH_BACKLOG_BYTES: Final[int] = 64 * 1024 * 1024
PROPOSAL_TIMEOUT: Final[float] = 5.0
LEASE_CHECK_PERIOD: Final[float] = 0.1


@dataclass
class Pending:
    conn: Conn
    req_id: Any
    kind: str  # "write", "read", "keepalive", "internal"
    request: dict[str, Any]
    started: float = field(default_factory=time.monotonic)


class OpCounters:
    """Client operations by type and outcome, for the metrics endpoint."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def inc(self, op: str, outcome: str) -> None:
        key = (op, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1


class Endpoint:
    def __init__(self, node: RaftNode, *, unsafe_local_reads: bool = False) -> None:
        self.node = node
        self.store = node.store
        self.unsafe_local_reads = unsafe_local_reads
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.AbstractServer | None = None
        self.conns: set[Conn] = set()
        self.ops = OpCounters()
        self._pending: list[Pending] = []
        self._flush_scheduled = False
        self.watches = WatchHub(self.store, self.conns, self._reply)
        self.lessor = Lessor()
        self._compacting = False
        self.started = time.time()

    # ---- lifecycle -----------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.watches.start(self.loop)
        host, port = self.node.me.client.rsplit(":", 1)
        self.server = await asyncio.start_server(self._handle_conn, host, int(port), limit=MAX_FRAME_BYTES + 8)
        self.loop.create_task(self._lease_loop())

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns):
            conn.closed = True
            conn.writer.close()

    # ---- connections ---------------------------------------------------
    async def _handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        conn = Conn(writer=writer, peer=peer)
        self.conns.add(conn)
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except ProtocolError as exc:
                    self.ops.inc("frame", "rejected")
                    conn.send({"id": None, "error": error(exc.code, exc.message)})
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # truncated frame or reset: nothing to answer
                if frame is None:
                    break
                length, body = frame
                try:
                    req = decode_body(body)
                except ProtocolError as exc:
                    # After garbage we cannot trust the framing any more.
                    self.ops.inc("frame", "rejected")
                    conn.send({"id": None, "error": error(exc.code, exc.message)})
                    break
                if length > MAX_REQUEST_BYTES:
                    self.ops.inc(str(req.get("op")), "rejected")
                    conn.send(
                        {
                            "id": req.get("id"),
                            "error": error(
                                "request_too_large",
                                f"request of {length} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit",
                                limit=MAX_REQUEST_BYTES,
                            ),
                        }
                    )
                    continue
                self._dispatch(conn, req)
                if writer.transport.get_write_buffer_size() > MAX_WATCH_BACKLOG_BYTES:
                    await writer.drain()
        except Exception:
            log.exception("connection %s failed", peer)
        finally:
            conn._flush()  # an error frame written just before closing must still go out
            conn.closed = True
            conn.watchers.clear()
            self.conns.discard(conn)
            try:
                writer.close()
            except Exception:  # noqa: BLE001, S110 - the peer is gone whatever close() says
                pass

    def _reply(self, conn: Conn, req_id: Any, op: str, result: Any = None, err: dict[str, Any] | None = None) -> None:
        if err is not None:
            self.ops.inc(op, "error:" + str(err.get("code")))
            conn.send({"id": req_id, "error": err})
        else:
            self.ops.inc(op, "ok")
            conn.send({"id": req_id, "result": result})

    def _not_leader(self) -> dict[str, Any]:
        return error(
            "not_leader",
            f"member {self.node.me.name} is not the leader",
            leader=self.node.leader_client,
            leader_name=self.node.leader_name,
        )

    # ---- dispatch ------------------------------------------------------
    def _dispatch(self, conn: Conn, req: dict[str, Any]) -> None:
        req_id = req.get("id")
        op = req.get("op")
        if not isinstance(op, str):
            self._reply(conn, req_id, "invalid", err=error("invalid_argument", "request has no string field 'op'"))
            return
        try:
            if op in WRITE_OPS:
                self._enqueue_write(conn, req_id, op, req)
            elif op in BARRIER_READS:
                self._enqueue_read(conn, req_id, op, req)
            elif op == "watch":
                self.watches.create(conn, req_id, req)
            elif op == "watch_cancel":
                wid = req.get("watch_id")
                existed = conn.watchers.pop(wid, None) is not None
                self._reply(conn, req_id, op, {"canceled": existed})
            elif op == "status":
                self._reply(conn, req_id, op, self.status())
            elif op == "digest":
                # Local and O(state): for convergence checks in tests and the lab.
                with self.store.lock:
                    result = {
                        "digest": self.store.mvcc.digest(),
                        "revision": self.store.mvcc.revision,
                        "applied_index": self.node.applied_index,
                    }
                self._reply(conn, req_id, op, result)
            elif op == "role_changes":
                self._reply(conn, req_id, op, [c.__dict__ for c in self.node.counters.role_changes])
            elif op.startswith("admin_"):
                self._admin(conn, req_id, op, req)
            else:
                self._reply(conn, req_id, op, err=error("unknown_op", f"unknown operation {op!r}"))
        except BadRequest as exc:
            self._reply(conn, req_id, op, err=error("invalid_argument", str(exc)))

    def _enqueue_write(self, conn: Conn, req_id: Any, op: str, req: dict[str, Any]) -> None:
        if not self.node.is_leader:
            self._reply(conn, req_id, op, err=self._not_leader())
            return
        item = build_op(op, req)
        if op == "lease_grant" and not item.get("id"):
            item["id"] = random.getrandbits(62) | 1  # chosen here, so apply stays deterministic
        cid = req.get("cid")
        if cid is not None:
            if not isinstance(cid, str) or not isinstance(req.get("seq"), int) or not isinstance(req.get("fi"), int):
                raise BadRequest("cid must be a string and seq, fi integers")
            entry: dict[str, Any] = {"c": cid, "s": req["seq"], "f": req["fi"], "o": item}
        else:
            entry = item
        self._pending.append(Pending(conn, req_id, "write", entry))
        self._schedule_flush()

    def _enqueue_read(self, conn: Conn, req_id: Any, op: str, req: dict[str, Any]) -> None:
        if op == "range":
            check_range_args(req)
            if req.get("serializable") or self.unsafe_local_reads:
                # unsafe_local_reads is the planted bug of the consensus lab:
                # answering from local state without confirming leadership.
                with self.store.lock:
                    result, err = self._exec_read(req)
                self._reply(conn, req_id, op, result, err)
                return
        elif op in ("lease_ttl", "leases") and req.get("serializable"):
            with self.store.lock:
                result, err = self._exec_read(req)
            self._reply(conn, req_id, op, result, err)
            return
        if not self.node.is_leader:
            self._reply(conn, req_id, op, err=self._not_leader())
            return
        kind = "keepalive" if op == "lease_keepalive" else "read"
        self._pending.append(Pending(conn, req_id, kind, req))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Propose everything gathered this iteration as one Raft entry."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        if not self.node.is_leader:
            err = self._not_leader()
            for p in pending:
                self._finish(p, None, err)
            return
        writes = [p for p in pending if p.kind in ("write", "internal")]
        reads = [p for p in pending if p.kind in ("read", "keepalive")]
        batch = [p.request for p in writes]
        loop = self.loop
        assert loop is not None
        state = {"done": False}

        def on_timeout() -> None:
            # pysyncobj may drop a callback entirely; never leave a client hanging.
            if not state["done"]:
                state["done"] = True
                self._fail_batch(writes, reads, None)

        handle = loop.call_later(PROPOSAL_TIMEOUT, on_timeout)

        def settle(fn: Any, *args: Any) -> None:  # asyncio thread
            if state["done"]:
                return
            state["done"] = True
            handle.cancel()
            fn(*args)

        def on_commit(results: Any, fail: int) -> None:  # Raft thread
            if fail != FAIL_REASON.SUCCESS:
                loop.call_soon_threadsafe(settle, self._fail_batch, writes, reads, fail)
                return
            with self.store.lock:
                read_results = [self._exec_read(p.request) for p in reads]
            loop.call_soon_threadsafe(settle, self._complete_batch, writes, results, reads, read_results)

        try:
            self.node.propose(batch, on_commit)
        except Exception as exc:  # noqa: BLE001 - pysyncobj queue full and the like
            handle.cancel()
            state["done"] = True
            for p in writes + reads:
                self._finish(p, None, error("overloaded", f"proposal failed: {exc}"))

    def _complete_batch(
        self,
        writes: list[Pending],
        results: list[dict[str, Any]],
        reads: list[Pending],
        read_results: list[tuple[Any, Any]],
    ) -> None:
        for p, res in zip(writes, results):
            self._finish(p, res.get("result"), res.get("error"))
        now = time.monotonic()
        for p, (res, err) in zip(reads, read_results):
            if p.kind == "keepalive" and err is None:
                self.lessor.kept_alive(p.request["lease_id"], res["ttl"], now)
            self._finish(p, res, err)

    def _fail_batch(self, writes: list[Pending], reads: list[Pending], fail: int | None) -> None:
        if fail is None:
            err = error("timeout", "the proposal was not committed in time; its outcome is unknown", outcome="unknown")
        elif fail in (FAIL_REASON.NOT_LEADER, FAIL_REASON.MISSING_LEADER):
            err = self._not_leader()
        else:
            err = error(
                "leader_changed",
                f"proposal {FAIL_NAMES.get(fail, fail)}; its outcome is unknown",
                outcome="unknown",
                leader=self.node.leader_client,
            )
        self.node.counters.proposals_failed += 1
        for p in writes + reads:
            self._finish(p, None, err)

    def _finish(self, p: Pending, result: Any, err: dict[str, Any] | None) -> None:
        if p.kind == "internal":
            self._internal_done(p.request, result, err)
            return
        op = p.request.get("o", p.request).get("op", "?") if isinstance(p.request, dict) else "?"
        if p.kind == "write" and err is None and op == "lease_grant":
            self.lessor.granted(result["id"], result["ttl"], time.monotonic())
        self._reply(p.conn, p.req_id, op, result, err)

    # ---- reads (caller holds the store lock) --------------------------
    def _exec_read(self, req: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        mvcc = self.store.mvcc
        op = req.get("op")
        try:
            if op == "range":
                rr = mvcc.range(
                    req.get("key", b""),
                    req.get("range_end", b""),
                    revision=int(req.get("revision", 0) or 0),
                    limit=int(req.get("limit", 0) or 0),
                    keys_only=bool(req.get("keys_only", False)),
                    count_only=bool(req.get("count_only", False)),
                )
                return {
                    "kvs": [kv.to_wire() for kv in rr.kvs],
                    "count": rr.count,
                    "more": rr.more,
                    "revision": rr.revision,
                }, None
            if op in ("lease_keepalive", "lease_ttl"):
                lease_id = req.get("lease_id")
                if not isinstance(lease_id, int):
                    return None, error("invalid_argument", f"{op}: 'lease_id' must be an integer")
                info = mvcc.lease_ttl(lease_id, keys=(op == "lease_ttl"))
                info["revision"] = mvcc.revision
                if op == "lease_ttl":
                    info["remaining"] = self.lessor.remaining(lease_id, time.monotonic())
                return info, None
            if op == "leases":
                return {"leases": mvcc.leases(), "revision": mvcc.revision}, None
        except MVCCError as exc:
            return None, exc.to_dict()
        except (TypeError, ValueError) as exc:
            return None, error("invalid_argument", str(exc))
        return None, error("unknown_op", f"unknown read {op!r}")

    # ---- leases (leader only) --------------------------------------------
    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_CHECK_PERIOD)
            try:
                self._check_leases()
                self._maybe_auto_compact()
            except Exception:
                log.exception("lease check failed")

    def _check_leases(self) -> None:
        if not self.node.is_leader:
            self.lessor.step_down()
            return
        now = time.monotonic()
        with self.store.lock:
            leases = {ls["id"]: ls["ttl"] for ls in self.store.mvcc.leases()}
        for lid in self.lessor.expired(self.node.term, leases, now):
            self._propose_internal({"op": "lease_revoke", "id": lid})

    def _maybe_auto_compact(self) -> None:
        retention = self.node.config.tuning.auto_compact_retention
        if not retention or self._compacting or not self.node.is_leader:
            return
        mvcc = self.store.mvcc
        if mvcc.revision - mvcc.compact_revision > retention + retention // 10:
            self._compacting = True
            self._propose_internal({"op": "compact", "revision": mvcc.revision - retention})

    def _propose_internal(self, op: dict[str, Any]) -> None:
        self._pending.append(Pending(None, None, "internal", op))  # type: ignore[arg-type]
        self._schedule_flush()

    def _internal_done(self, op: dict[str, Any], result: Any, err: dict[str, Any] | None) -> None:
        if op["op"] == "lease_revoke":
            self.lessor.revoke_finished(op["id"], err)
        elif op["op"] == "compact":
            self._compacting = False

    # ---- admin and status --------------------------------------------------
    def _admin(self, conn: Conn, req_id: Any, op: str, req: dict[str, Any]) -> None:
        try:
            if op == "admin_partition":
                self.node.set_partition(list(req.get("drop_to", [])), list(req.get("drop_from", [])))
            elif op == "admin_heal":
                self.node.set_partition([], [])
            elif op == "admin_fsync_delay":
                self.node.set_fsync_delay(float(req.get("seconds", 0.0)))
            else:
                self._reply(conn, req_id, op, err=error("unknown_op", f"unknown admin operation {op!r}"))
                return
        except (KeyError, TypeError, ValueError) as exc:
            self._reply(conn, req_id, op, err=error("invalid_argument", str(exc)))
            return
        self._reply(conn, req_id, op, self.status())

    def status(self) -> dict[str, Any]:
        node = self.node
        with self.store.lock:
            mvcc = self.store.mvcc
            revision, compact = mvcc.revision, mvcc.compact_revision
            stats = mvcc.stats()
        tr = node.transport
        return {
            "name": node.me.name,
            "endpoint": node.me.client,
            "raft": node.me.raft,
            "metrics": node.me.metrics,
            "pid": os.getpid(),
            "role": node.role,
            "term": node.term,
            "leader": node.leader_name,
            "leader_endpoint": node.leader_client,
            "commit_index": node.commit_index,
            "applied_index": node.applied_index,
            "revision": revision,
            "compact_revision": compact,
            "log_size": node.log_size,
            "elections_seen": node.counters.elections_seen,
            "leader_changes": node.counters.leader_changes,
            "match_index": node.match_indexes() if node.is_leader else {},
            "partition": {
                "drop_to": sorted(m.name for m in node.config.members if m.raft in tr.drop_to),
                "drop_from": sorted(m.name for m in node.config.members if m.raft in tr.drop_from),
            },
            "fsync_delay": node.journal.fsync_delay,
            "fsyncs": node.journal.stats.syncs,
            "unsafe_local_reads": self.unsafe_local_reads,
            "watchers": sum(len(c.watchers) for c in self.conns),
            "connections": len(self.conns),
            "uptime": time.time() - self.started,
            "store": stats,
        }
