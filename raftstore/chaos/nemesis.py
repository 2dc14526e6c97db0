"""Nemeses in Jepsen's vocabulary, scheduled at intervals with a seeded RNG.

A *nemesis* is a kind of fault with a start and a stop:

==================  ==========================================================
name                start / stop
==================  ==========================================================
kill                SIGKILL a random live member / restart it
leader-kill         SIGKILL the current leader / restart it
pause               SIGSTOP a random member / SIGCONT it
partition-halves    cut the members into two random halves (the smaller one
                    first, as Jepsen's ``bisect``) / heal
isolate-leader      cut the current leader off from everyone / heal
majorities-ring     every member sees a majority, no two the same one
                    (Jepsen's ``majorities-ring``; one-way cuts for 3 nodes) / heal
bridge              two halves joined only through one bridge member / heal
slow-disk           delay every fsync of a random member / remove the delay
==================  ==========================================================

Partitions are *grudges*, as in Jepsen: ``grudge[node]`` is the set of nodes
whose Raft messages ``node`` drops.  The grudge builders (:func:`halves`,
:func:`complete_grudge`, :func:`majorities_ring`, :func:`bridge`, ...) are pure
functions of the node list and an RNG, so they are unit-tested without a
cluster; :class:`~raftstore.chaos.faults.Faults` turns a grudge into the
members' ``drop_from`` / ``drop_to`` sets.

Scheduling (:func:`plan_schedule`) is also pure: each enabled nemesis fires
every ``interval`` seconds (with a little seeded jitter), the nemeses are
staggered evenly inside the interval, and each fault is held for ``hold``
seconds, so ``leader-kill,partition-halves`` at ``interval=5`` kills the
leader about every 5 s and partitions about every 5 s, 2.5 s apart.  Which
member a fault hits is drawn at run time (the leader is only known then)
from the same seeded RNG.  By default faults are *exclusive*: a fault waits
until the previous fault of another nemesis is fully undone (a killed
member restarted and serving again can take a second or two on a busy
machine), and is skipped -- recorded as such -- if that takes more than half
its hold.  ``exclusive=False`` lets them overlap, as independent Jepsen
nemeses do.

:class:`NemesisRunner` executes a schedule against a
:class:`~raftstore.chaos.faults.Faults`, records every fault as a
:class:`FaultWindow` (start and stop times, targets, what was done) for the
report and the plots, and :meth:`NemesisRunner.heal_all` undoes everything
at the end: every killed member restarted, every paused one resumed, every
partition healed, every fsync delay removed.

This module is the raftstore-specific part: the catalog of nemeses and
what each one does to the members.  The pure pieces live in
:mod:`raftstore.chaos.grudges` (partition shapes) and
:mod:`raftstore.chaos.schedule` (timing), the generic execution in
:mod:`raftstore.chaos.schedule_runner`; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftstore.chaos.grudges import (
    Grudge,
    bisect,
    bridge,
    bridge_of,
    complete_grudge,
    connected_both_ways,
    grudge_text,
    halves,
    isolate,
    majorities_ring,
    majority,
    plan_partition,
    visible,
)
from raftstore.chaos.schedule import (
    FaultWindow,
    PlannedFault,
    default_hold,
    plan_schedule,
)
from raftstore.chaos.schedule_runner import ScheduleRunner, Undo

__all__ = [
    "ADMIN_NEMESES",
    "ALIASES",
    "NEMESES",
    "PARTITION_NEMESES",
    "PROCESS_NEMESES",
    "FaultWindow",
    "Grudge",
    "NemesisRunner",
    "PlannedFault",
    "bisect",
    "bridge",
    "bridge_of",
    "complete_grudge",
    "connected_both_ways",
    "default_hold",
    "grudge_text",
    "halves",
    "isolate",
    "majorities_ring",
    "majority",
    "parse_nemeses",
    "plan_partition",
    "plan_schedule",
    "visible",
]

NEMESES: dict[str, str] = {
    "kill": "SIGKILL a random member, restart it when the fault ends",
    "leader-kill": "SIGKILL the leader, restart it when the fault ends",
    "pause": "SIGSTOP a random member, SIGCONT it when the fault ends",
    "partition-halves": "partition the members into two random halves",
    "isolate-leader": "cut the leader off from every other member",
    "majorities-ring": "every member sees a majority, no two members the same majority",
    "bridge": "two halves that only talk through one bridge member",
    "slow-disk": "delay every fsync of a random member",
}
ALIASES: dict[str, str] = {
    "kill-random": "kill",
    "kill-leader": "leader-kill",
    "pause-random": "pause",
    "partition-random-halves": "partition-halves",
    "halves": "partition-halves",
    "partition-leader": "isolate-leader",
    "ring": "majorities-ring",
    "partition-majorities-ring": "majorities-ring",
    "fsync-delay": "slow-disk",
}
#: Nemeses that signal member processes: they need a local cluster.
PROCESS_NEMESES: frozenset[str] = frozenset({"kill", "leader-kill", "pause"})
#: Nemeses that only use the members' admin endpoint (work with --endpoints).
ADMIN_NEMESES: frozenset[str] = frozenset(NEMESES) - PROCESS_NEMESES
PARTITION_NEMESES: frozenset[str] = frozenset({"partition-halves", "isolate-leader", "majorities-ring", "bridge"})


def parse_nemeses(spec: str | Sequence[str]) -> list[str]:
    """``"leader-kill,partition-halves"`` -> canonical names, in order, without repeats.

    ``all`` expands to every nemesis, ``none`` (or an empty string) to none.
    An unknown name raises ValueError with a one-line message listing the
    valid ones.
    """
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
    out: list[str] = []
    for p in parts:
        if not p or p == "none":
            continue
        names = list(NEMESES) if p == "all" else [ALIASES.get(p, p)]
        for n in names:
            if n not in NEMESES:
                raise ValueError(f"unknown nemesis {p!r}; valid: {', '.join(NEMESES)} (or all, none)")
            if n not in out:
                out.append(n)
    return out


class NemesisRunner(ScheduleRunner):
    """Runs a fault schedule against a :class:`~raftstore.chaos.faults.Faults`.

    The timing, the windows and :meth:`heal_all` come from
    :class:`~raftstore.chaos.schedule_runner.ScheduleRunner`; this class
    says what each nemesis of :data:`NEMESES` does to the members.
    ``slow_disk_seconds`` is the fsync delay of ``slow-disk``.
    """

    def __init__(
        self, faults: Any, nemeses: Sequence[str], *, slow_disk_seconds: float = 0.05, **schedule: Any
    ) -> None:
        """``schedule``: ScheduleRunner's keywords (duration, interval, hold, seed, clock, ...)."""
        super().__init__(faults, nemeses, **schedule)
        self.slow_disk_seconds = slow_disk_seconds

    async def _start(self, w: FaultWindow) -> Undo | None:
        """Start the fault; return a coroutine function that stops it."""
        f = self.faults
        name = w.nemesis
        if name in ("kill", "leader-kill"):
            if name == "leader-kill":
                target = await f.leader(timeout=3.0)
                if target is None:
                    w.skipped, w.description = True, "no leader to kill"
                    return None
            else:
                candidates = [m for m in f.names if f.is_up(m)]
                if not candidates:
                    w.skipped, w.description = True, "no live member to kill"
                    return None
                target = self.rng.choice(candidates)
            await f.kill(target)
            w.targets, w.description = [target], f"SIGKILL {target}"

            async def restart() -> None:
                await f.start(target)

            return restart
        if name == "pause":
            candidates = [m for m in f.names if f.is_up(m)]
            if not candidates:
                w.skipped, w.description = True, "no live member to pause"
                return None
            target = self.rng.choice(candidates)
            await f.pause(target)
            w.targets, w.description = [target], f"SIGSTOP {target}"

            async def resume() -> None:
                await f.resume(target)

            return resume
        if name == "slow-disk":
            target = self.rng.choice(list(f.names))
            await f.slow_disk(target, self.slow_disk_seconds)
            w.targets, w.description = [target], f"fsync +{self.slow_disk_seconds * 1000:.0f} ms on {target}"

            async def fast() -> None:
                await f.slow_disk(target, 0.0)

            return fast
        if name in PARTITION_NEMESES:
            leader = None
            if name == "isolate-leader":
                leader = await f.leader(timeout=3.0)
                if leader is None:
                    w.skipped, w.description = True, "no leader to isolate"
                    return None
            grudge, w.targets, desc = plan_partition(name, f.names, self.rng, leader)
            tag = f"{name}@{w.start:.3f}"
            await f.partition(grudge, tag=tag)
            w.description = desc

            async def heal() -> None:
                await f.heal(tag=tag)

            return heal
        raise ValueError(f"unknown nemesis {name!r}")
