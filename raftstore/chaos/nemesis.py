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
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("raftstore.chaos.nemesis")

Grudge = dict[str, set[str]]

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


# ---------------------------------------------------------------- grudges


def complete_grudge(components: Sequence[Sequence[str]]) -> Grudge:
    """Every node drops messages from every node outside its own component."""
    all_nodes = [n for comp in components for n in comp]
    grudge: Grudge = {}
    for comp in components:
        inside = set(comp)
        for n in comp:
            grudge[n] = {m for m in all_nodes if m not in inside}
    return grudge


def bisect(nodes: Sequence[str]) -> list[list[str]]:
    """Split in two, the smaller half first (Jepsen's ``bisect``)."""
    k = len(nodes) // 2
    return [list(nodes[:k]), list(nodes[k:])]


def halves(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """Random halves: shuffle, then bisect (minority first)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return bisect(shuffled)


def isolate(node: str, nodes: Sequence[str]) -> list[list[str]]:
    """``node`` alone against the rest."""
    if node not in nodes:
        raise ValueError(f"{node!r} is not one of {list(nodes)}")
    return [[node], [n for n in nodes if n != node]]


def majority(n: int) -> int:
    return n // 2 + 1


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Jepsen's majorities ring.

    The nodes are shuffled onto a ring; each window of ``majority(n)``
    consecutive nodes is the majority its middle node can hear from, and the
    middle node drops everything from the others.  Every node sees a
    majority (itself included) and no two nodes see the same one.  With five
    nodes each hears its two ring neighbours; with three each hears exactly
    one other node and the cuts are one-way (a hears c but not b, b hears a
    but not c, c hears b but not a).
    """
    ring = list(nodes)
    rng.shuffle(ring)
    n = len(ring)
    if n < 3:
        return {x: set() for x in ring}
    m = majority(n)
    everyone = set(ring)
    grudge: Grudge = {}
    for i in range(n):
        window = [ring[(i + j) % n] for j in range(m)]
        centre = window[m // 2]
        grudge[centre] = everyone - set(window)
    return grudge


def bridge(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Two halves that cannot talk to each other, plus one bridge node that
    talks to both (Jepsen's ``bridge``): for 5 nodes 2 | 1 | 2, for 3 nodes
    1 | 1 | 1.  The bridge node holds no grudge and nobody holds one against it.
    """
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    k = len(shuffled) // 2
    left, middle, right = shuffled[:k], shuffled[k], shuffled[k + 1:]
    if len(shuffled) % 2 == 0:
        # Even: the bridge comes out of the larger right side.
        left, middle, right = shuffled[: k - 1], shuffled[k - 1], shuffled[k:]
    grudge = complete_grudge([left, right])
    grudge[middle] = set()
    return grudge


def bridge_of(grudge: Grudge) -> str | None:
    """The node of a bridge grudge that everyone still hears from."""
    for n, g in grudge.items():
        if not g and all(n not in other for other in grudge.values()):
            return n
    return None


def visible(grudge: Grudge, node: str, nodes: Sequence[str]) -> set[str]:
    """The nodes whose messages ``node`` receives (itself included)."""
    return {m for m in nodes if m not in grudge.get(node, set())}


def connected_both_ways(grudge: Grudge, a: str, b: str) -> bool:
    return b not in grudge.get(a, set()) and a not in grudge.get(b, set())


def grudge_text(grudge: Grudge) -> str:
    cut = sorted((src, dst) for dst, srcs in grudge.items() for src in srcs)
    if not cut:
        return "no cuts"
    pairs = {(a, b) for a, b in cut}
    seen: set[tuple[str, str]] = set()
    parts = []
    for a, b in cut:
        if (a, b) in seen:
            continue
        if (b, a) in pairs:
            seen.add((b, a))
            parts.append(f"{a}<x>{b}")
        else:
            parts.append(f"{a}-x>{b}")
        seen.add((a, b))
    return " ".join(parts)


# ---------------------------------------------------------------- schedule


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


# ---------------------------------------------------------------- execution


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


class NemesisRunner:
    """Runs a fault schedule against a :class:`~raftstore.chaos.faults.Faults`.

    ``clock`` gives unix seconds (the run's monotonic-anchored clock, so the
    windows line up with the history and the members' raft events).
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
        slow_disk_seconds: float = 0.05,
        exclusive: bool = True,
    ) -> None:
        self.faults = faults
        self.nemeses = list(nemeses)
        self.duration = duration
        self.interval = interval
        self.rng = random.Random(seed)
        self.plan = plan_schedule(self.nemeses, duration, interval, hold=hold, rng=random.Random(seed ^ 0x5EED))
        self.clock = clock
        self.on_event = on_event or (lambda text: None)
        self.slow_disk_seconds = slow_disk_seconds
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
                    w = FaultWindow(p.nemesis, now, now, planned_start=self.t0 + p.start,
                                    planned_stop=self.t0 + p.stop, skipped=True,
                                    description=f"skipped: {', '.join(self._others_busy(p.nemesis))} still active")
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
        undo: Callable[[], Any] | None = None
        try:
            undo = await self._start(w)
            # The fault is in place from now on (finding the leader, reaping a
            # killed process or reaching every admin endpoint took a moment).
            w.start = self.clock()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fault that cannot start is reported, not fatal
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

    async def _stop(self, w: FaultWindow, undo: Callable[[], Any]) -> None:
        try:
            await undo()
        except Exception as exc:
            w.error = (w.error + "; " if w.error else "") + f"stop: {exc}"
            log.warning("nemesis %s failed to stop: %s", w.nemesis, exc)
        w.stop = self.clock()
        if w in self.active:
            self.active.remove(w)
        self.on_event(f"stop {w.nemesis}: {w.description}")

    async def _start(self, w: FaultWindow) -> Callable[[], Any] | None:
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
            nodes = list(f.names)
            if name == "partition-halves":
                comps = halves(nodes, self.rng)
                grudge = complete_grudge(comps)
                w.targets = comps[0]
                desc = " | ".join(",".join(c) for c in comps)
            elif name == "isolate-leader":
                leader = await f.leader(timeout=3.0)
                if leader is None:
                    w.skipped, w.description = True, "no leader to isolate"
                    return None
                comps = isolate(leader, nodes)
                grudge = complete_grudge(comps)
                w.targets = [leader]
                desc = f"{leader} | {','.join(comps[1])}"
            elif name == "majorities-ring":
                grudge = majorities_ring(nodes, self.rng)
                w.targets = nodes
                desc = "ring " + grudge_text(grudge)
            else:
                grudge = bridge(nodes, self.rng)
                b = bridge_of(grudge)
                w.targets = [b] if b else []
                desc = f"bridge {b}: " + grudge_text(grudge)
            tag = f"{name}@{w.start:.3f}"
            await f.partition(grudge, tag=tag)
            w.description = desc

            async def heal() -> None:
                await f.heal(tag=tag)
            return heal
        raise ValueError(f"unknown nemesis {name!r}")

    async def heal_all(self) -> list[str]:
        """Stop every pending and active fault, then undo everything.

        Returns the problems left (see :meth:`Faults.heal_all`)."""
        await self.cancel()
        problems = await self.faults.heal_all()
        now = self.clock()
        for w in self.windows:
            if w.stop is None:
                w.stop = now
        return problems

    def to_dicts(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.windows]
