"""Executes a fault schedule on an asyncio loop and records every fault.

:class:`ScheduleRunner` is the generic half of a nemesis: it plans with
:func:`~raftstore.chaos.schedule.plan_schedule`, sleeps until each planned
start, keeps faults of different nemeses from overlapping when asked
(``exclusive``), holds each fault for its planned length, undoes it, and
records a :class:`~raftstore.chaos.schedule.FaultWindow` for each.  What a
fault *is* -- which member to kill, which links to cut -- is the subclass's
:meth:`ScheduleRunner._start` (raftstore's is
:class:`~raftstore.chaos.nemesis.NemesisRunner`), so another lab reuses the
timing by supplying its own.

Concurrency: everything runs on one asyncio loop, one task per planned
fault; the shared state (``windows``, ``active``, the busy counts) is only
touched between awaits.  Undoing a fault is shielded from cancellation, so a
run cut short still leaves nothing broken.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from raftstore.chaos.schedule import FaultWindow, PlannedFault, plan_schedule

# The name predates this module: keep it so log filters and output stay the same.
log = logging.getLogger("raftstore.chaos.nemesis")

#: Undoes one fault (restart a member, heal a partition, ...).
Undo = Callable[[], Awaitable[Any]]


class ScheduleRunner:
    """Runs a fault schedule against ``faults``; subclasses say how a fault starts.

    ``faults`` is whatever the subclass's :meth:`_start` acts on; it must
    have an async ``heal_all()`` returning the problems left.  ``clock``
    gives unix seconds (the run's monotonic-anchored clock, so the windows
    line up with the history and the members' raft events).
    ``on_event(text)`` is told of every start and stop (progress display).
    """

    def __init__(
        self,
        faults: Any,
        nemeses: Sequence[str],
        *,
        duration: float,
        interval: float = 5.0,
        hold: float | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        exclusive: bool = True,
    ) -> None:
        self.faults = faults
        self.nemeses = list(nemeses)
        self.duration = duration
        self.interval = interval
        # Targets are drawn at run time from this RNG, the plan from its own:
        # the same seed replays both.
        self.rng = random.Random(seed)
        self.plan = plan_schedule(self.nemeses, duration, interval, hold=hold, rng=random.Random(seed ^ 0x5EED))
        self.clock = clock
        self.on_event = on_event or (lambda text: None)
        self.exclusive = exclusive
        self.windows: list[FaultWindow] = []
        self.active: list[FaultWindow] = []
        self._busy: dict[str, int] = {}  # nemesis -> faults between "starting" and "stopped"
        self._tasks: list[asyncio.Task[None]] = []
        self.t0 = 0.0

    # -- running ----------------------------------------------------------

    async def run(self, t0: float | None = None) -> None:
        """Execute the schedule (returns when the last planned fault stopped)."""
        self.t0 = self.clock() if t0 is None else t0
        self._tasks = [asyncio.create_task(self._one(p)) for p in self.plan]
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            for t in self._tasks:
                t.cancel()

    async def cancel(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sleep_until(self, offset: float) -> None:
        delay = self.t0 + offset - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    def _others_busy(self, nemesis: str) -> list[str]:
        return [n for n, c in self._busy.items() if c and n != nemesis]

    async def _one(self, p: PlannedFault) -> None:
        await self._sleep_until(p.start)
        hold = p.stop - p.start
        if self.exclusive:
            # One fault at a time: wait for another nemesis's fault to be fully
            # undone (a restarted member serving again), or give this one up.
            while self._others_busy(p.nemesis):
                if self.clock() >= self.t0 + p.stop - 0.5 * hold:
                    now = self.clock()
                    w = FaultWindow(
                        p.nemesis,
                        now,
                        now,
                        planned_start=self.t0 + p.start,
                        planned_stop=self.t0 + p.stop,
                        skipped=True,
                        description=f"skipped: {', '.join(self._others_busy(p.nemesis))} still active",
                    )
                    self.windows.append(w)
                    self.on_event(f"{p.nemesis}: {w.description}")
                    return
                await asyncio.sleep(0.02)
        self._busy[p.nemesis] = self._busy.get(p.nemesis, 0) + 1
        try:
            await self._run_fault(p, hold)
        finally:
            self._busy[p.nemesis] -= 1

    async def _run_fault(self, p: PlannedFault, hold: float) -> None:
        now = self.clock()
        w = FaultWindow(p.nemesis, now, planned_start=self.t0 + p.start, planned_stop=self.t0 + p.stop, begun=now)
        self.windows.append(w)
        undo: Undo | None = None
        try:
            undo = await self._start(w)
            # The fault is in place from now on (finding the leader, reaping a
            # killed process or reaching every admin endpoint took a moment).
            w.start = self.clock()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- a fault that cannot start is reported, not fatal
            w.error = f"start: {exc}"
            log.warning("nemesis %s failed to start: %s", p.nemesis, exc)
        if w.skipped or undo is None:
            w.stop = self.clock()
            self.on_event(f"{p.nemesis}: {w.description or w.error or 'skipped'}")
            return
        self.active.append(w)
        self.on_event(f"start {p.nemesis}: {w.description}")
        try:
            # Held for its planned length from when it really started.
            await self._sleep_until(w.start - self.t0 + hold)
        finally:
            # Stopping must happen even if the run is cancelled mid-fault.
            try:
                await asyncio.shield(self._stop(w, undo))
            except asyncio.CancelledError:
                pass

    async def _stop(self, w: FaultWindow, undo: Undo) -> None:
        try:
            await undo()
        except Exception as exc:  # noqa: BLE001 -- recorded in the window; heal_all retries at the end
            w.error = (w.error + "; " if w.error else "") + f"stop: {exc}"
            log.warning("nemesis %s failed to stop: %s", w.nemesis, exc)
        w.stop = self.clock()
        if w in self.active:
            self.active.remove(w)
        self.on_event(f"stop {w.nemesis}: {w.description}")

    async def _start(self, w: FaultWindow) -> Undo | None:
        """Start the fault of ``w.nemesis``; return a coroutine function that
        undoes it, or None (with ``w.skipped`` and ``w.description`` set) when
        there was nothing to do."""
        raise NotImplementedError

    async def heal_all(self) -> list[str]:
        """Stop every pending and active fault, then undo everything.

        Returns the problems left (see :meth:`Faults.heal_all`)."""
        await self.cancel()
        problems: list[str] = await self.faults.heal_all()
        now = self.clock()
        for w in self.windows:
            if w.stop is None:
                w.stop = now
        return problems

    def to_dicts(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.windows]
