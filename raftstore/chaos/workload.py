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

Error mapping (:func:`classify_attempt`, :func:`completion_for`)
----------------------------------------------------------------
The workload drives each attempt itself (one member at a time, following
``not_leader`` hints, retrying until the op's deadline) so it knows whether
an attempt could have taken effect:

* definite -- the member answered and the op did not happen: ``not_leader``
  (raftstore checks leadership before proposing and pysyncobj only rejects
  commands it never appended), ``overloaded`` (the proposal was refused),
  ``invalid_argument`` and every other state-machine error, and a connection
  that was *refused* (nothing was sent);
* unknown -- ``timeout`` and ``leader_changed`` (the server says
  ``outcome: unknown``), a request timeout or a connection lost after
  sending, ``session_expired`` and ``internal``.

Writes carry ``(client id, seq)`` and every retry of one op reuses its seq,
so the state machine applies it at most once.  At the end a write is ``ok``
if some attempt succeeded, ``info`` if any attempt's outcome was unknown,
else ``fail``.  Reads never change anything, so a read that did not succeed
is always ``fail``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from raftstore.chaos.history import History
from raftstore.client import Event, RaftstoreClient, RaftstoreError, Unavailable, prefix_end

log = logging.getLogger("raftstore.chaos.workload")

#: Error codes after which another attempt may succeed (and the op did not happen).
DEFINITE_RETRY_CODES = frozenset({"not_leader", "overloaded"})
#: Error codes whose outcome is unknown (the op may have happened).
UNKNOWN_CODES = frozenset({"timeout", "leader_changed", "unavailable", "session_expired", "internal"})
#: Unknown codes worth another attempt (with the same seq, so at most once).
UNKNOWN_RETRY_CODES = frozenset({"timeout", "leader_changed", "unavailable"})
WRITE_FS = frozenset({"write", "cas", "add"})


class Clock:
    """Unix seconds, but monotonic: anchored to ``time.time()`` once."""

    def __init__(self) -> None:
        self.unix0 = time.time()
        self.mono0 = time.monotonic()

    def __call__(self) -> float:
        return self.unix0 + (time.monotonic() - self.mono0)


@dataclass(frozen=True, slots=True)
class AttemptError:
    """What one failed attempt tells us."""

    code: str
    message: str
    definite: bool  # True: this attempt certainly had no effect
    retry: bool  # another attempt (same seq) makes sense
    hint: str | None = None  # the leader's endpoint, if the member named one


def classify_attempt(exc: BaseException) -> AttemptError:
    """Map one attempt's exception (from ``client.call(..., endpoint=...)``)."""
    if isinstance(exc, Unavailable):
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return AttemptError("connection_refused", str(cause), definite=True, retry=True)
        return AttemptError("unavailable", exc.message, definite=False, retry=True)
    if isinstance(exc, RaftstoreError):
        hint = exc.details.get("leader")
        hint = hint if isinstance(hint, str) else None
        if exc.code in DEFINITE_RETRY_CODES:
            return AttemptError(exc.code, exc.message, definite=True, retry=True, hint=hint)
        if exc.code in UNKNOWN_CODES or exc.details.get("outcome") == "unknown":
            return AttemptError(exc.code, exc.message, definite=False,
                                retry=exc.code in UNKNOWN_RETRY_CODES, hint=hint)
        # Any other error is the member's (or the state machine's) answer: it did not happen.
        return AttemptError(exc.code, exc.message, definite=True, retry=False)
    if isinstance(exc, ConnectionRefusedError):
        return AttemptError("connection_refused", str(exc), definite=True, retry=True)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return AttemptError("timeout", "request timed out", definite=False, retry=True)
    if isinstance(exc, ConnectionError | OSError):
        return AttemptError("connection_lost", str(exc) or type(exc).__name__, definite=False, retry=True)
    return AttemptError("client_error", f"{type(exc).__name__}: {exc}", definite=False, retry=False)


def completion_for(f: str, maybe_happened: bool) -> str:
    """``fail`` or ``info`` for an op that never got an ok answer."""
    if f not in WRITE_FS:
        return "fail"  # reads have no effect, whatever happened to them
    return "info" if maybe_happened else "fail"


class OpFailed(Exception):
    """An op that did not get an ok answer: ``status`` is ``fail`` or ``info``."""

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(f"{status}: {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class CasFailed(OpFailed):
    def __init__(self) -> None:
        super().__init__("fail", "compare_failed", "cas compare did not hold")


class Executor:
    """Runs single operations against a cluster with our own retry loop.

    ``send(endpoint, op, fields, timeout)`` performs one attempt and raises on
    error; by default it is ``client.call(op, endpoint=endpoint, ...)``.  Tests
    inject a fake.  An attempt gets at most ``attempt_timeout`` seconds, the
    whole op ``op_timeout``; with ``pinned`` (a pinned reader) there is one
    attempt with the whole budget.
    """

    def __init__(self, client: RaftstoreClient | None, endpoints: list[str], *, op_timeout: float = 2.0,
                 attempt_timeout: float = 0.5, send: Any = None, rng: random.Random | None = None,
                 client_id: str | None = None) -> None:
        self.client = client
        self.endpoints = list(endpoints)
        self.op_timeout = op_timeout
        # One attempt may not eat the whole budget: a leader cut off by a
        # partition accepts requests and never answers them.
        self.attempt_timeout = attempt_timeout
        self.rng = rng or random.Random()
        self.leader: str | None = None
        self.client_id = client_id or (client.client_id if client is not None else "test")
        self._seq = itertools.count(1)
        self._send = send or self._client_send
        self.attempts = 0

    async def _client_send(self, endpoint: str, op: str, fields: dict[str, Any], timeout: float) -> Any:
        assert self.client is not None
        return await self.client.call(op, endpoint=endpoint, timeout=timeout, leader=False, **fields)

    def _next(self, current: str | None) -> str:
        if current is None or current not in self.endpoints:
            return self.rng.choice(self.endpoints)
        i = self.endpoints.index(current)
        return self.endpoints[(i + 1) % len(self.endpoints)]

    async def execute(self, f: str, op: str, fields: dict[str, Any], *, pinned: str | None = None,
                      timeout: float | None = None) -> Any:
        """Run ``op`` until it succeeds or its deadline passes.

        ``f`` is the history's op kind (it decides fail vs info).  With
        ``pinned`` only that endpoint is tried, once.  Raises :class:`OpFailed`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.op_timeout if timeout is None else timeout)
        write = f in WRITE_FS
        if write:
            seq = next(self._seq)
            # One op at a time per executor, so this seq is the first incomplete one.
            fields = {**fields, "cid": self.client_id, "seq": seq, "fi": seq}
        target = pinned or self.leader or self.rng.choice(self.endpoints)
        maybe = False
        last: AttemptError | None = None
        unknown: AttemptError | None = None  # the first attempt whose outcome is unknown
        backoff = 0.01
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self.attempts += 1
            try:
                result = await self._send(target, op, fields, min(remaining, self.attempt_timeout))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- every error is classified
                err = classify_attempt(exc)
            else:
                if pinned is None:
                    self.leader = target
                return result
            last = err
            if not err.definite and unknown is None:
                unknown = err
            maybe = maybe or not err.definite
            if not err.retry or pinned is not None:
                break
            if err.code == "not_leader" and err.hint in self.endpoints and err.hint != target:
                target = self.leader = err.hint
                continue
            if self.leader == target:
                self.leader = None
            target = err.hint if err.hint in self.endpoints and err.hint != target else self._next(target)
            await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
            backoff = min(backoff * 2, 0.1)
        assert last is not None or deadline <= loop.time()
        if last is None:
            last = AttemptError("timeout", "no attempt made before the deadline", definite=True, retry=False)
        status = completion_for(f, maybe)
        if status == "info" and unknown is not None and unknown is not last:
            # Say why the outcome is unknown, not just how the last attempt went.
            raise OpFailed(status, unknown.code, f"{unknown.message} (last attempt: {last.code}: {last.message})")
        raise OpFailed(status, last.code, last.message)


# ---------------------------------------------------------------- workload


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

    def __init__(self, endpoints: list[str], config: WorkloadConfig | None = None, *,
                 clock: Clock | None = None, history: History | None = None) -> None:
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
        self._watch = None
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

    async def _op(self, ex: Executor, process: int, f: str, key: str, value: Any,
                  pinned: str | None = None, timeout: float | None = None) -> tuple[str, Any]:
        """Invoke, run and complete one op; returns (status, ok value)."""
        self.history.invoke(process, f, key, value, self.clock())
        try:
            if f == "read":
                res = await ex.execute(f, "range", {
                    "key": self.reg_store_key(key), "range_end": b"", "revision": 0, "limit": 0,
                    "serializable": False, "keys_only": False, "count_only": False}, pinned=pinned, timeout=timeout)
                kvs = res["kvs"]
                out = int(kvs[0]["v"]) if kvs else None
            elif f == "write":
                await ex.execute(f, "put", {"key": self.reg_store_key(key), "value": str(value).encode(),
                                            "lease": 0, "prev_kv": False}, timeout=timeout)
                out = value
            elif f == "cas":
                expected, new = value
                k = self.reg_store_key(key)
                if expected is None:
                    cmp = {"key": k, "range_end": b"", "target": "create", "result": "==", "value": 0}
                else:
                    cmp = {"key": k, "range_end": b"", "target": "value", "result": "==",
                           "value": str(expected).encode()}
                res = await ex.execute(f, "txn", {"compare": [cmp], "success": [
                    {"op": "put", "key": k, "value": str(new).encode()}], "failure": []}, timeout=timeout)
                if not res.get("succeeded"):
                    raise CasFailed()
                out = value
            elif f == "add":
                k = self.set_prefix(key) + f"{value:012d}".encode()
                await ex.execute(f, "put", {"key": k, "value": str(value).encode(), "lease": 0,
                                            "prev_kv": False}, timeout=timeout)
                out = value
            elif f == "read_set":
                p = self.set_prefix(key)
                res = await ex.execute(f, "range", {
                    "key": p, "range_end": prefix_end(p), "revision": 0, "limit": 0, "serializable": False,
                    "keys_only": False, "count_only": False}, timeout=timeout)
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
        except Exception as exc:  # e.g. compacted: the checker will see the gap
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
        ex = Executor(client, self.endpoints, op_timeout=self.cfg.op_timeout,
                      attempt_timeout=self.cfg.attempt_timeout, rng=rng)
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
        ex = Executor(client, [endpoint], op_timeout=self.cfg.op_timeout, attempt_timeout=self.cfg.op_timeout,
                      rng=rng)
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
        tasks += [asyncio.create_task(self._pinned_reader(i, ep, stop))
                  for i, ep in enumerate(self.cfg.pinned_readers)]
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
        except (asyncio.TimeoutError, RaftstoreError) as exc:
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
            try:
                await c.close()
            except Exception:
                pass
        self.clients.clear()
