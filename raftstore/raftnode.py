"""The Raft side of a member: pysyncobj driven by our own thread.

``ReplicatedStore`` is the pysyncobj consumer that owns the MVCC state
machine; its one replicated method applies a *batch* of operations, so a
whole event-loop iteration's worth of client requests costs one Raft entry.

``RaftNode`` builds SyncObj with the durable journal and the gated transport
and runs the tick loop on a dedicated thread::

    doTick -> (pysyncobj: elections, commit, apply, send) -> on-tick hook:
    journal.sync(); transport.flush() -> poll(sockets, timeout) -> sync; flush

so every message leaves only after the state it reflects is on disk, and
everything that arrived in one poll shares one fdatasync.

Concurrency: pysyncobj state is touched only on the Raft thread. The MVCC
store is mutated only there too, under ``ReplicatedStore.lock``; the asyncio
thread takes the same lock for local reads. Replicated calls may be issued
from any thread (pysyncobj queues them and wakes its poller).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack
import pysyncobj.syncobj as _syncobj_module
from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.config import FAIL_REASON

from .config import ClusterConfig, MemberSpec
from .journal import DurableJournal
from .mvcc import MVCCError, MVCCStore
from .transport import GatedTransport

log = logging.getLogger("raftstore.raft")

ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}
FAIL_NAMES = {getattr(FAIL_REASON, n): n.lower() for n in dir(FAIL_REASON) if n.isupper()}


class ReplicatedStore(SyncObjConsumer):
    """Replicated wrapper around :class:`MVCCStore`."""

    def __init__(self) -> None:
        # Attributes set before SyncObjConsumer.__init__ are left out of
        # snapshots: the lock and the callback are per-process, not state.
        self.lock = threading.RLock()
        self.on_applied: Callable[[int], None] | None = None
        super().__init__()
        self.mvcc = MVCCStore()
        self.applied_ops = 0

    @replicated
    def apply_batch(self, batch: bytes | list[dict[str, Any]]) -> list[dict[str, Any]]:
        if isinstance(batch, bytes):
            batch = msgpack.unpackb(batch, raw=False, strict_map_key=False)
        results: list[dict[str, Any]] = []
        with self.lock:
            for item in batch:
                try:
                    if "c" in item:
                        res = self.mvcc.apply_client(item["c"], item["s"], item["f"], item["o"])
                    else:
                        res = self.mvcc.apply(item)
                    results.append({"result": res})
                except MVCCError as exc:
                    results.append({"error": exc.to_dict()})
                except Exception as exc:  # a bug must not stop the Raft thread
                    log.exception("apply failed for %r", item.get("op"))
                    results.append({"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}})
            self.applied_ops += len(batch)
            revision = self.mvcc.revision
        if self.on_applied is not None:
            self.on_applied(revision)
        return results


@dataclass
class RoleChange:
    time: float  # unix seconds
    role: str
    term: int
    leader: str | None


@dataclass
class RaftCounters:
    elections_seen: int = 0  # terms this member has entered
    leader_changes: int = 0
    proposals: int = 0
    proposals_failed: int = 0
    role_changes: list[RoleChange] = field(default_factory=list)


class RaftNode:
    """One pysyncobj member with durable state, driven by its own thread."""

    def __init__(
        self,
        config: ClusterConfig,
        me: MemberSpec,
        data_dir: str,
        *,
        on_role_change: Callable[[RoleChange], None] | None = None,
    ) -> None:
        self.config = config
        self.me = me
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        tuning = config.tuning
        journal_path = os.path.join(data_dir, "journal")
        dump_path = os.path.join(data_dir, "dump")
        self.journal = DurableJournal(journal_path, dump_path)
        self.store = ReplicatedStore()
        self.counters = RaftCounters()
        self._on_role_change = on_role_change
        self._last_role: str | None = None
        self._last_term = -1
        self._last_leader: str | None = None
        conf = SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=False,  # send entries as soon as they exist, not on a timer
            appendEntriesPeriod=tuning.heartbeat,
            appendEntriesBatchSizeBytes=4 * 1024 * 1024,
            raftMinTimeout=tuning.election_min,
            raftMaxTimeout=tuning.election_max,
            leaderFallbackTimeout=tuning.leader_fallback,
            connectionRetryTime=0.2,
            connectionTimeout=1.5,
            # Never a journal without a dump file (FIELD-NOTES): the snapshot
            # goes to `dump`, written by a forked child so the Raft thread
            # does not stall while the state is pickled.
            fullDumpFile=dump_path,
            journalFile=journal_path,
            logCompactionMinEntries=tuning.log_compaction_entries,
            logCompactionMinTime=tuning.log_compaction_seconds,
            useFork=True,
            commandsQueueSize=200_000,
            bindAddress=me.raft,
        )
        others = [m.raft for m in config.members if m.name != me.name]
        # pysyncobj builds its journal with a module-level factory; route it
        # to ours for this construction only (members are one per process).
        original = _syncobj_module.createJournal
        _syncobj_module.createJournal = lambda _path: self.journal
        try:
            self.syncobj = SyncObj(me.raft, others, conf=conf, consumers=[self.store], transportClass=GatedTransport)
        finally:
            _syncobj_module.createJournal = original
        self.transport: GatedTransport = self.syncobj._SyncObj__transport  # type: ignore[attr-defined]
        self.transport.before_flush = self.journal.sync
        self.syncobj.addOnTickCallback(self.transport.flush)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"raft-{me.name}", daemon=True)
        self._tick_hooks: list[Callable[[], None]] = [self._ping_peers]
        self._last_ping = 0.0

    # ---- lifecycle -----------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.syncobj._doDestroy()
        except Exception:  # best effort on shutdown
            log.exception("destroy failed")

    def add_tick_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on the Raft thread after every tick."""
        self._tick_hooks.append(hook)

    def _run(self) -> None:
        so = self.syncobj
        tick = self.config.tuning.tick
        while not self._stop.is_set():
            try:
                so.doTick(tick)
                self.transport.flush()
                self._observe_role()
                for hook in self._tick_hooks:
                    hook()
            except Exception:
                log.exception("raft tick failed")
                time.sleep(tick)

    def _ping_peers(self) -> None:
        """Keep every peer link busy. pysyncobj closes a connection that has
        been silent for ``connectionTimeout`` on the next send, and links
        between two followers carry nothing in steady state, so the first
        RequestVote after a leader dies was lost and every election split
        into a second round. pysyncobj ignores message types it does not know."""
        now = time.monotonic()
        if now - self._last_ping < 0.25:
            return
        self._last_ping = now
        for node in self.syncobj.otherNodes:
            self.transport.send(node, {"type": "raftstore_ping"})

    def _observe_role(self) -> None:
        role = self.role
        term = self.term
        leader = self.leader_raft
        if role != self._last_role or term != self._last_term or leader != self._last_leader:
            if term != self._last_term and self._last_term >= 0:
                self.counters.elections_seen += 1
            if leader != self._last_leader and leader is not None:
                self.counters.leader_changes += 1
            self._last_role, self._last_term, self._last_leader = role, term, leader
            change = RoleChange(time=time.time(), role=role, term=term, leader=self.leader_name)
            self.counters.role_changes.append(change)
            if len(self.counters.role_changes) > 10_000:
                del self.counters.role_changes[:5_000]
            if self._on_role_change is not None:
                self._on_role_change(change)

    # ---- state ---------------------------------------------------------
    @property
    def role(self) -> str:
        return ROLE_NAMES.get(self.syncobj._SyncObj__raftState, "unknown")  # type: ignore[attr-defined]

    @property
    def is_leader(self) -> bool:
        return self.syncobj._isLeader()

    @property
    def term(self) -> int:
        return self.syncobj.raftCurrentTerm

    @property
    def leader_raft(self) -> str | None:
        leader = self.syncobj._getLeader()
        return None if leader is None else leader.id

    @property
    def leader_name(self) -> str | None:
        raft = self.leader_raft
        spec = self.config.by_raft(raft) if raft else None
        return spec.name if spec else None

    @property
    def leader_client(self) -> str | None:
        raft = self.leader_raft
        spec = self.config.by_raft(raft) if raft else None
        return spec.client if spec else None

    @property
    def commit_index(self) -> int:
        return self.syncobj.raftCommitIndex

    @property
    def applied_index(self) -> int:
        return self.syncobj.raftLastApplied

    @property
    def log_size(self) -> int:
        return len(self.journal)

    def match_indexes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node, idx in self.syncobj._SyncObj__raftMatchIndex.items():  # type: ignore[attr-defined]
            spec = self.config.by_raft(node.id)
            out[spec.name if spec else node.id] = idx
        return out

    # ---- proposals -----------------------------------------------------
    def propose(self, batch: list[dict[str, Any]], callback: Callable[[Any, int], None]) -> None:
        """Replicate ``batch``; ``callback(results, fail_code)`` runs on the Raft thread."""
        self.counters.proposals += 1
        # One msgpack blob: pysyncobj then pickles a single bytes object
        # instead of walking every op dict (pickling was 8% of the leader).
        self.store.apply_batch(msgpack.packb(batch, use_bin_type=True), callback=callback)

    # ---- fault injection -----------------------------------------------
    def set_partition(self, drop_to: list[str], drop_from: list[str]) -> None:
        """Drop Raft traffic to/from the named members (by name or raft address)."""

        def resolve(names: list[str]) -> frozenset[str]:
            out = set()
            for n in names:
                spec = next((m for m in self.config.members if n in (m.name, m.raft, m.client)), None)
                if spec is None:
                    raise KeyError(f"unknown member {n!r}")
                out.add(spec.raft)
            return frozenset(out)

        self.transport.drop_to = resolve(drop_to)
        self.transport.drop_from = resolve(drop_from)

    def set_fsync_delay(self, seconds: float) -> None:
        self.journal.fsync_delay = max(0.0, float(seconds))
