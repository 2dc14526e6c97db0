"""The scheduling queue (kube-scheduler's ``PriorityQueue`` in small).

Three places a pending pod can wait:

- **activeQ**: ready to be tried, ordered by priority (high first), then by
  when it was queued;
- **backoffQ**: failed recently; waits ``initial_backoff * 2**(attempts-1)``
  (capped at ``max_backoff``) before going back to activeQ;
- **unschedulable pool**: failed because no node fits; stays there until the
  cluster changes (``move_all_to_active``: a node added or changed, a pod
  deleted...) or ``max_unschedulable`` passes (a periodic flush), so an
  unschedulable pod costs nothing while nothing changes.

A pod that failed while a move request happened during its attempt goes to
backoffQ instead of the pool (the ``moveRequestCycle`` rule), so an event
that arrived mid-attempt is never lost.

Concurrency: asyncio-only; ``pop`` awaits; all other methods are synchronous.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from ..client.clock import REAL_CLOCK, Clock


@dataclass
class QueuedPod:
    key: str
    priority: int = 0
    timestamp: float = 0.0  # when it (re)entered activeQ
    initial_attempt: float | None = None
    attempts: int = 0
    backoff_until: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


class SchedulingQueue:
    def __init__(
        self,
        clock: Clock = REAL_CLOCK,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable: float = 60.0,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable" | "inflight"
        self._info: dict[str, QueuedPod] = {}
        self._unsched_since: dict[str, float] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self.closed = False

    # ------------------------------------------------------------ helpers
    def _push_active(self, info: QueuedPod) -> None:
        info.timestamp = self.clock.now()
        self._where[info.key] = "active"
        heapq.heappush(self._active, (-info.priority, info.timestamp, next(self._seq), info.key))
        self._wake.set()

    def _push_backoff(self, info: QueuedPod) -> None:
        self._where[info.key] = "backoff"
        heapq.heappush(self._backoff, (info.backoff_until, next(self._seq), info.key))
        self._wake.set()

    def backoff_duration(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self.max_backoff, self.initial_backoff * (2 ** (attempts - 1)))

    # -------------------------------------------------------------- API
    def __len__(self) -> int:
        return len(self._where)

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "inflight": 0}
        for w in self._where.values():
            out[w] += 1
        return out

    def add(self, key: str, priority: int = 0) -> None:
        """A new pending pod (or one that changed): to activeQ unless it is already queued or in flight.
        A pod in the unschedulable pool whose spec changed moves back (to backoffQ if still backing off)."""
        where = self._where.get(key)
        if where in ("active", "backoff", "inflight"):
            return
        if where == "unschedulable":
            info = self._info[key]
            self._unsched_since.pop(key, None)
            if info.backoff_until > self.clock.now():
                self._push_backoff(info)
            else:
                self._push_active(info)
            return
        info = QueuedPod(key, priority)
        self._info[key] = info
        self._push_active(info)

    def delete(self, key: str) -> None:
        self._where.pop(key, None)
        self._info.pop(key, None)
        self._unsched_since.pop(key, None)
        # heap entries are dropped lazily

    def _flush(self) -> None:
        now = self.clock.now()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self._where.get(key) == "backoff" and self._info[key].backoff_until <= now:
                self._push_active(self._info[key])
        if self._unsched_since:
            stale = [k for k, t in self._unsched_since.items() if now - t >= self.max_unschedulable]
            for k in stale:
                del self._unsched_since[k]
                info = self._info.get(k)
                if info is not None and self._where.get(k) == "unschedulable":
                    self._push_active(info)

    def _next_wakeup(self) -> float | None:
        times = []
        while self._backoff and self._where.get(self._backoff[0][2]) != "backoff":
            heapq.heappop(self._backoff)
        if self._backoff:
            times.append(self._backoff[0][0])
        if self._unsched_since:
            times.append(min(self._unsched_since.values()) + self.max_unschedulable)
        return min(times) if times else None

    def pop_nowait(self) -> QueuedPod | None:
        self._flush()
        while self._active:
            _, _, _, key = heapq.heappop(self._active)
            if self._where.get(key) != "active":
                continue
            info = self._info[key]
            self._where[key] = "inflight"
            info.attempts += 1
            if info.initial_attempt is None:
                info.initial_attempt = self.clock.now()
            self.scheduling_cycle += 1
            return info
        return None

    async def pop(self) -> QueuedPod:
        """The next pod to try (it is "in flight" until ``done``/``requeue_*``)."""
        while True:
            info = self.pop_nowait()
            if info is not None:
                return info
            if self.closed:
                raise asyncio.CancelledError
            self._wake.clear()
            nxt = self._next_wakeup()
            if nxt is None:
                await self._wake.wait()
            else:
                waiter = asyncio.ensure_future(self._wake.wait())
                sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, nxt - self.clock.now())))
                try:
                    await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    sleeper.cancel()

    def done(self, key: str) -> None:
        """Scheduled (bound) or gone: forget the pod."""
        self.delete(key)

    def requeue_unschedulable(self, info: QueuedPod, cycle: int) -> None:
        """No node fits: to the unschedulable pool, or to backoffQ if the cluster changed meanwhile."""
        if self._where.get(info.key) != "inflight":
            return  # deleted (or re-added) while in flight
        info.backoff_until = self.clock.now() + self.backoff_duration(info.attempts)
        if self.move_request_cycle >= cycle:
            self._push_backoff(info)
        else:
            self._where[info.key] = "unschedulable"
            self._unsched_since[info.key] = self.clock.now()
            self._wake.set()

    def requeue_error(self, info: QueuedPod) -> None:
        """An error (e.g. the binding failed): retry after back-off."""
        if self._where.get(info.key) != "inflight":
            return
        info.backoff_until = self.clock.now() + self.backoff_duration(info.attempts)
        self._push_backoff(info)

    def move_all_to_active(self) -> int:
        """The cluster changed: every unschedulable pod gets another chance (via backoffQ if it is
        still backing off). Returns how many moved."""
        self.move_request_cycle = self.scheduling_cycle
        if not self._unsched_since:
            return 0
        now = self.clock.now()
        moved = 0
        for key in list(self._unsched_since):
            del self._unsched_since[key]
            info = self._info.get(key)
            if info is None or self._where.get(key) != "unschedulable":
                continue
            if info.backoff_until > now:
                self._push_backoff(info)
            else:
                self._push_active(info)
            moved += 1
        return moved

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def info(self, key: str) -> QueuedPod | None:
        return self._info.get(key)

    def snapshot(self) -> dict[str, Any]:
        return {"counts": self.counts(), "cycle": self.scheduling_cycle}
