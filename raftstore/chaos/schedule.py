"""When faults happen: the pure schedule and the record of what happened.

:func:`plan_schedule` turns nemesis names, a duration and an interval into
:class:`PlannedFault` start/stop offsets with a seeded RNG; a
:class:`FaultWindow` records one fault as it really happened (for reports
and plots).  Nothing here knows what a fault does, does I/O or keeps state,
so any chaos lab can plan with it; executing a plan is
:class:`~raftstore.chaos.schedule_runner.ScheduleRunner`'s job.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PlannedFault:
    nemesis: str
    start: float  # seconds after the run began
    stop: float


def default_hold(interval: float, n_nemeses: int) -> float:
    """How long a fault lasts by default: 40 % of the interval for one nemesis,
    80 % of each nemesis's slot when several are staggered, never below 0.5 s."""
    if n_nemeses <= 1:
        return max(0.5, 0.5 * interval)
    return max(0.5, 0.8 * interval / n_nemeses)


def plan_schedule(
    nemeses: Sequence[str],
    duration: float,
    interval: float,
    *,
    hold: float | None = None,
    rng: random.Random | None = None,
    jitter: float = 0.1,
    warmup: float = 1.0,
    cooldown: float = 1.0,
) -> list[PlannedFault]:
    """When each fault starts and stops, as offsets from the start of the run.

    Nemesis ``i`` of ``k`` first fires at ``warmup + i * interval / k`` and
    then every ``interval`` seconds, each start moved by up to ``jitter *
    interval`` (seeded), but never so far that faults of different nemeses
    overlap when ``hold`` fits in a slot (``interval / k``).  A fault lasts
    ``hold`` seconds (default: :func:`default_hold`), never longer than the
    gap to the same nemesis's next start, and no fault starts unless it can
    stop ``cooldown`` seconds before the end.  Sorted by start time.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    rng = rng or random.Random(0)
    k = len(nemeses)
    if k == 0:
        return []
    hold = default_hold(interval, k) if hold is None else hold
    if hold <= 0:
        raise ValueError("hold must be positive")
    # Jitter never pushes one nemesis's fault into the next one's slot.
    amplitude = min(jitter * interval, max(0.0, interval / k - hold) / 2)
    out: list[PlannedFault] = []
    for i, name in enumerate(nemeses):
        base = warmup + i * interval / k
        starts = []
        j = 0
        while True:
            t = base + j * interval
            if t > duration:
                break
            if j > 0 or i > 0:
                t += rng.uniform(-amplitude, amplitude)
            starts.append(max(warmup, t))
            j += 1
        for s, nxt in zip(starts, starts[1:] + [float("inf")]):
            stop = s + min(hold, max(0.1, nxt - s - 0.2))
            if stop <= duration - cooldown:
                out.append(PlannedFault(name, round(s, 3), round(stop, 3)))
    out.sort(key=lambda p: (p.start, p.nemesis))
    return out


@dataclass(slots=True)
class FaultWindow:
    """One fault as it happened (times are unix seconds)."""

    nemesis: str
    start: float  # when the fault was in place
    stop: float | None = None  # when it was undone (a restarted member serving again)
    targets: list[str] = field(default_factory=list)
    description: str = ""
    planned_start: float = 0.0
    planned_stop: float = 0.0
    begun: float = 0.0  # when the nemesis began to act (e.g. to look for the leader)
    error: str | None = None  # set if the fault could not be started or stopped
    skipped: bool = False  # nothing was done (e.g. no leader to kill)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
