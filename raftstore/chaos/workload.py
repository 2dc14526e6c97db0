"""Jepsen-style workload: concurrent clients over many independent keys.

Every operation is recorded in a :class:`~raftstore.chaos.history.History`
as an ``invoke`` followed by exactly one of

* ``ok``   -- it happened (for a read: this is what was read);
* ``fail`` -- it certainly did not happen;
* ``info`` -- unknown: it may or may not have happened (or may still happen).
  The process that got ``info`` is retired and the worker carries on under a
  new process id, as in Jepsen.

with times (unix seconds from a monotonic clock anchored once, so the
history lines up with the members' ``raft-events.jsonl`` and the fault
windows) and the process id.

Operations
----------
* **register** keys (``k0`` .. ``k{K-1}``): ``read``, ``write`` of a unique
  int, and ``cas [expected, new]``: a raftstore txn that compares the key's
  value with ``expected`` (or, for ``expected=None``, that the key does not
  exist: ``create == 0``) and then puts ``new``.  A compare that does not
  hold is a definite ``fail``.  ``expected`` is the last value this worker
  saw in the key, so a good share of cas ops succeed.
* **set** keys (``s0`` .. ): ``add`` of a globally unique element (a put of
  ``<prefix>s/<set>/<element>``) and, at the end, ``read_set`` (a prefix
  range read) for the lost / duplicated-write checker.
* a **watcher** on the run's whole prefix records every event it is
  delivered (across reconnects) for the watch checker; the reference is the
  store's own event history, read back after the run with a fresh watch from
  the same start revision up to a sentinel written at the very end.

Attempts are classified into ``fail`` / ``info`` by
:mod:`raftstore.chaos.outcomes` and run by
:class:`~raftstore.chaos.executor.Executor` (both re-exported here).

Concurrency: one asyncio loop; one task per worker, per pinned reader and
for the watcher.  They share the history and the counters, which are only
touched between awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from raftstore.chaos.clock import Clock
from raftstore.chaos.executor import Executor
from raftstore.chaos.history import History
from raftstore.chaos.outcomes import (
    DEFINITE_RETRY_CODES,
    UNKNOWN_CODES,
    UNKNOWN_RETRY_CODES,
    WRITE_FS,
    AttemptError,
    CasFailed,
    OpFailed,
    classify_attempt,
    completion_for,
)
from raftstore.client import Event, RaftstoreClient, RaftstoreError, Watch, prefix_end

__all__ = [
    "DEFINITE_RETRY_CODES",
    "UNKNOWN_CODES",
    "UNKNOWN_RETRY_CODES",
    "WRITE_FS",
    "AttemptError",
    "CasFailed",
    "Clock",
    "Executor",
    "OpFailed",
    "Workload",
    "WorkloadConfig",
    "classify_attempt",
    "completion_for",
]

log = logging.getLogger("raftstore.chaos.workload")


@dataclass
class WorkloadConfig:
    clients: int = 8
    keys: int = 16
    set_keys: int = 4
    read_ratio: float = 0.45
    write_ratio: float = 0.25
    cas_ratio: float = 0.2  # the rest is add
    op_timeout: float = 2.0
    attempt_timeout: float = 0.5
    #: Extra read-only clients, each pinned to one endpoint (no failover):
    #: they keep reading from a member even when it is cut off.
    pinned_readers: list[str] = field(default_factory=list)
    pinned_think: float = 0.01
    think: float = 0.0
    prefix: str = "chaos/"
    seed: int = 0
    watch: bool = True


def _event_dict(e: Event, strip: int) -> dict[str, Any]:
    return {
        "revision": e.revision,
        "key": e.kv.key.decode("utf-8", "replace")[strip:],
        "type": e.type,
        "value": e.kv.value.decode("utf-8", "replace") if e.type == "PUT" else None,
    }


class Workload:
    """Register + set workload with a watcher; see the module docstring."""

    def __init__(
        self,
        endpoints: list[str],
        config: WorkloadConfig | None = None,
        *,
        clock: Clock | None = None,
        history: History | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.cfg = config or WorkloadConfig()
        self.clock = clock or Clock()
        self.history = history if history is not None else History()
        self.rng = random.Random(self.cfg.seed)
        self.reg_keys = [f"k{i}" for i in range(self.cfg.keys)]
        self.set_keys = [f"s{i}" for i in range(self.cfg.set_keys)]
        self._pids = itertools.count(0)
        self._values = itertools.count(1)
        self.counts: Counter[str] = Counter()
        self.by_f: Counter[tuple[str, str]] = Counter()
        self.clients: list[RaftstoreClient] = []
        self.watch_observed: list[dict[str, Any]] = []
        self.watch_reconnects = 0
        self.watch_error: str | None = None
        self.pinned_processes: dict[int, str] = {}  # process id -> the endpoint it is pinned to
        self.watch_last_revision = 0  # the last revision *consumed* (the Watch's own runs ahead)
        self.start_revision = 0
        self._watch_task: asyncio.Task[None] | None = None
        self._watch: Watch | None = None
        self._watch_client: RaftstoreClient | None = None
        self.started = 0.0
        self.stopped = 0.0

    # -- keys ---------------------------------------------------------------

    def reg_store_key(self, key: str) -> bytes:
        return f"{self.cfg.prefix}r/{key}".encode()

    def set_prefix(self, key: str) -> bytes:
        return f"{self.cfg.prefix}s/{key}/".encode()

    def _new_client(self, **kw: Any) -> RaftstoreClient:
        c = RaftstoreClient(self.endpoints, **kw)
        self.clients.append(c)
        return c

    # -- recording --------------------------------------------------------------

    def _record(self, process: int, status: str, f: str, key: str, value: Any, error: str | None = None) -> None:
        t = self.clock()
        if status == "ok":
            self.history.ok(process, f, key, value, t)
        elif status == "fail":
            self.history.fail(process, f, key, value, t, error)
        else:
            self.history.info(process, f, key, value, t, error)
        self.counts[status] += 1
        self.by_f[(f, status)] += 1

    async def _op(
        self,
        ex: Executor,
        process: int,
        f: str,
        key: str,
        value: Any,
        pinned: str | None = None,
        timeout: float | None = None,
    ) -> tuple[str, Any]:
        """Invoke, run and complete one op; returns (status, ok value)."""
        self.history.invoke(process, f, key, value, self.clock())
        out: Any  # what an ok completion records: int, None or a list of elements
        try:
            if f == "read":
                res = await ex.execute(
                    f,
                    "range",
                    {
                        "key": self.reg_store_key(key),
                        "range_end": b"",
                        "revision": 0,
                        "limit": 0,
                        "serializable": False,
                        "keys_only": False,
                        "count_only": False,
                    },
                    pinned=pinned,
                    timeout=timeout,
                )
                kvs = res["kvs"]
                out = int(kvs[0]["v"]) if kvs else None
            elif f == "write":
                await ex.execute(
                    f,
                    "put",
                    {"key": self.reg_store_key(key), "value": str(value).encode(), "lease": 0, "prev_kv": False},
                    timeout=timeout,
                )
                out = value
            elif f == "cas":
                expected, new = value
                k = self.reg_store_key(key)
                if expected is None:
                    cmp = {"key": k, "range_end": b"", "target": "create", "result": "==", "value": 0}
                else:
                    cmp = {
                        "key": k,
                        "range_end": b"",
                        "target": "value",
                        "result": "==",
                        "value": str(expected).encode(),
                    }
                res = await ex.execute(
                    f,
                    "txn",
                    {"compare": [cmp], "success": [{"op": "put", "key": k, "value": str(new).encode()}], "failure": []},
                    timeout=timeout,
                )
                if not res.get("succeeded"):
                    raise CasFailed()
                out = value
            elif f == "add":
                k = self.set_prefix(key) + f"{value:012d}".encode()
                await ex.execute(
                    f, "put", {"key": k, "value": str(value).encode(), "lease": 0, "prev_kv": False}, timeout=timeout
                )
                out = value
            elif f == "read_set":
                p = self.set_prefix(key)
                res = await ex.execute(
                    f,
                    "range",
                    {
                        "key": p,
                        "range_end": prefix_end(p),
                        "revision": 0,
                        "limit": 0,
                        "serializable": False,
                        "keys_only": False,
                        "count_only": False,
                    },
                    timeout=timeout,
                )
                out = sorted(int(kv["v"]) for kv in res["kvs"])
            else:
                raise ValueError(f"unknown op {f!r}")
        except OpFailed as exc:
            self._record(process, exc.status, f, key, value, f"{exc.code}: {exc.message}"[:300])
            return exc.status, None
        self._record(process, "ok", f, key, out)
        return "ok", out

    # -- setup / run ----------------------------------------------------------------

    async def setup(self) -> None:
        """Note the start revision and open the watcher."""
        c = self._new_client(timeout=30.0)
        res = await c.get(self.cfg.prefix, prefix=True, count_only=True)
        self.start_revision = res.revision + 1
        if self.cfg.watch:
            self._watch_client = self._new_client()
            self._watch = self._watch_client.watch(self.cfg.prefix, prefix=True, start_revision=self.start_revision)
            self._watch_task = asyncio.create_task(self._consume_watch())

    async def _consume_watch(self) -> None:
        assert self._watch is not None
        strip = len(self.cfg.prefix)
        try:
            async for resp in self._watch:
                for e in resp.events:
                    self.watch_observed.append(_event_dict(e, strip))
                    self.watch_last_revision = e.revision
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- e.g. compacted: the checker will see the gap
            self.watch_error = f"{type(exc).__name__}: {exc}"

    def _choose(self, rng: random.Random) -> str:
        r = rng.random()
        c = self.cfg
        if r < c.read_ratio:
            return "read"
        if r < c.read_ratio + c.write_ratio:
            return "write"
        if r < c.read_ratio + c.write_ratio + c.cas_ratio:
            return "cas"
        return "add" if self.set_keys else "write"

    async def _worker(self, i: int, stop: asyncio.Event) -> None:
        rng = random.Random((self.cfg.seed << 16) ^ (i + 1))
        client = self._new_client(request_timeout=self.cfg.op_timeout, timeout=self.cfg.op_timeout)
        ex = Executor(
            client, self.endpoints, op_timeout=self.cfg.op_timeout, attempt_timeout=self.cfg.attempt_timeout, rng=rng
        )
        process = next(self._pids)
        seen: dict[str, int | None] = {}
        while not stop.is_set():
            f = self._choose(rng)
            if f == "add":
                key = rng.choice(self.set_keys)
                value: Any = next(self._values)
            else:
                key = rng.choice(self.reg_keys)
                if f == "read":
                    value = None
                elif f == "write":
                    value = next(self._values)
                else:
                    value = [seen.get(key), next(self._values)]
            status, out = await self._op(ex, process, f, key, value)
            if status == "ok" and f in ("read", "write"):
                seen[key] = out
            elif status == "ok" and f == "cas":
                seen[key] = value[1]
            elif status == "fail" and f == "cas":
                seen.pop(key, None)
            if status == "info":
                process = next(self._pids)  # Jepsen never reuses an indeterminate process
            if self.cfg.think:
                await asyncio.sleep(rng.expovariate(1 / self.cfg.think))

    async def _pinned_reader(self, i: int, endpoint: str, stop: asyncio.Event) -> None:
        rng = random.Random((self.cfg.seed << 16) ^ (1000 + i))
        client = self._new_client(request_timeout=self.cfg.op_timeout, timeout=self.cfg.op_timeout)
        ex = Executor(client, [endpoint], op_timeout=self.cfg.op_timeout, attempt_timeout=self.cfg.op_timeout, rng=rng)
        process = next(self._pids)
        self.pinned_processes[process] = endpoint  # a read never returns info: the id is kept
        while not stop.is_set():
            key = rng.choice(self.reg_keys)
            status, _ = await self._op(ex, process, "read", key, None, pinned=endpoint)
            await asyncio.sleep(self.cfg.pinned_think if status == "ok" else 0.05)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every client until ``stop`` is set; in-flight ops complete (bounded by op_timeout)."""
        self.started = self.clock()
        tasks = [asyncio.create_task(self._worker(i, stop)) for i in range(self.cfg.clients)]
        tasks += [asyncio.create_task(self._pinned_reader(i, ep, stop)) for i, ep in enumerate(self.cfg.pinned_readers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stopped = self.clock()

    # -- the end ------------------------------------------------------------------

    async def final_reads(self, timeout: float = 30.0) -> dict[str, Any]:
        """Read every register and set once more (recorded in the history).

        Returns key -> final value for the keys read successfully (for
        :func:`~raftstore.chaos.checkers.check_acknowledged_writes`)."""
        client = self._new_client(request_timeout=2.0, timeout=2.0)
        ex = Executor(client, self.endpoints, op_timeout=timeout, attempt_timeout=2.0)
        finals: dict[str, Any] = {}
        process = next(self._pids)
        for key in self.reg_keys + self.set_keys:
            f = "read" if key in self.reg_keys else "read_set"
            status, out = await self._op(ex, process, f, key, None, timeout=timeout)
            if status == "ok" and f == "read":
                finals[key] = out
        return finals

    async def finish_watch(self, timeout: float = 30.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Write a sentinel, let the watcher catch up with it, read the reference back.

        Returns (observed, reference); reference is None if it could not be read."""
        if not self.cfg.watch or self._watch is None:
            return [], None
        client = self._new_client(timeout=timeout)
        res = await client.put(f"{self.cfg.prefix}__end__", b"end")
        end_rev = int(res["revision"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self._watch_task is not None
        while self.watch_last_revision < end_rev and loop.time() < deadline and not self._watch_task.done():
            await asyncio.sleep(0.05)
        self.watch_reconnects = self._watch.reconnects
        await self._watch.cancel()
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        if self.watch_last_revision < end_rev and self.watch_error is None:
            self.watch_error = f"watcher stopped at revision {self.watch_last_revision}, sentinel at {end_rev}"
        # The reference: the store's own history of the prefix, read back by a fresh watch.
        ref: list[dict[str, Any]] = []
        strip = len(self.cfg.prefix)
        ref_client = self._new_client(timeout=timeout)
        w = ref_client.watch(self.cfg.prefix, prefix=True, start_revision=self.start_revision)

        async def collect() -> None:
            async for resp in w:
                for e in resp.events:
                    ref.append(_event_dict(e, strip))
                if resp.events and resp.events[-1].revision >= end_rev:
                    return

        try:
            await asyncio.wait_for(collect(), max(1.0, deadline - loop.time()))
        except (TimeoutError, RaftstoreError) as exc:
            log.warning("could not read the reference event history: %s", exc)
            await w.cancel()
            return list(self.watch_observed), None
        await w.cancel()
        return list(self.watch_observed), ref

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        for c in self.clients:
            # Closing is best effort: a client of a killed member may fail to.
            with contextlib.suppress(Exception):
                await c.close()
        self.clients.clear()
