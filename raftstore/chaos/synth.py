"""Synthetic register histories that are linearizable by construction.

Used by the checker tests (property tests) and by the checker benchmark, so
neither has to run a cluster to exercise the checkers.

The simulation is Jepsen-like: processes are split into groups, each group
works through its own keys one at a time (like Jepsen's independent
concurrent generator), so several processes hammer the same key with
overlapping requests.  Every operation gets a random interval [invoke,
complete] and, if it takes effect, a linearization point chosen uniformly
inside that interval.  Applying the operations to a register in
linearization-point order fixes what reads return and whether cas
succeeds, which makes the recorded history linearizable.

Unknown outcomes are modelled too: an ``info`` op takes effect with
probability 1/2, at a point that may lie after its (indeterminate)
completion was recorded; its process is then retired and replaced by a fresh
process id, and a fraction of info ops never get their completion recorded.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from raftstore.chaos.history import History, Op, pair_ops


@dataclass(slots=True)
class _Planned:
    process: int
    f: str
    key: str
    value: Any  # invoke value
    start: float
    end: float
    status: str  # "ok" | "fail" | "info"
    point: float | None  # linearization point; None: never takes effect
    output: Any = None  # read result
    recorded: bool = True  # False: the completion is never written


def _split_evenly(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def generate_register_history(
    n_ops: int,
    *,
    n_keys: int = 1,
    n_processes: int = 5,
    group_size: int | None = None,
    seed: int = 0,
    read_ratio: float = 0.5,
    write_ratio: float = 0.3,
    info_rate: float = 0.05,
    fail_rate: float = 0.0,
    missing_rate: float = 0.2,
    value_range: int = 5,
    latency: float = 1.0,
    think: float = 0.1,
) -> History:
    """Return a linearizable read/write/cas history of ``n_ops`` operations.

    ``n_processes`` client slots run concurrently, ``group_size`` per key
    (default: all of them on one key at a time).  The rest of the mix beyond
    ``read_ratio`` and ``write_ratio`` is cas.  ``info_rate`` and
    ``fail_rate`` are per-op probabilities of an unknown or failed outcome;
    ``missing_rate`` is the share of info ops whose completion is never
    recorded.  Values written are ints in ``range(value_range)``; a small
    range makes the history ambiguous and the check harder.  Op durations
    are exponential with mean ``latency`` seconds, pauses between a process's
    ops exponential with mean ``think``.
    """
    rng = random.Random(seed)
    group_size = group_size or n_processes
    n_groups = max(1, n_processes // group_size)
    keys = [f"k{i}" for i in range(n_keys)]
    budgets = dict(zip(keys, _split_evenly(n_ops, n_keys), strict=True))
    # Each group owns every n_groups-th key and works through them in order.
    queues = [[k for k in keys[g::n_groups] if budgets[k]] for g in range(n_groups)]

    next_pid = 0
    slot_pid: list[int] = []
    slot_group: list[int] = []
    free: list[tuple[float, int]] = []  # (time the slot is free, slot)
    for g in range(n_groups):
        for _ in range(group_size if g < n_groups - 1 else n_processes - group_size * g):
            slot = len(slot_pid)
            slot_pid.append(next_pid)
            slot_group.append(g)
            next_pid += 1
            heapq.heappush(free, (rng.expovariate(1 / think) if think else 0.0, slot))

    planned: list[_Planned] = []
    while free:
        now, slot = heapq.heappop(free)
        queue = queues[slot_group[slot]]
        if not queue:
            continue  # this group is done; the slot retires
        key = queue[0]
        budgets[key] -= 1
        if budgets[key] == 0:
            queue.pop(0)
        start = now
        end = start + rng.expovariate(1 / latency) + 1e-6
        roll = rng.random()
        if roll < read_ratio:
            f, value = "read", None
        elif roll < read_ratio + write_ratio:
            f, value = "write", rng.randrange(value_range)
        else:
            f, value = "cas", [rng.randrange(value_range), rng.randrange(value_range)]
        outcome = rng.random()
        if outcome < info_rate:
            status = "info"
            # May land any time after invocation, even after the info reply.
            point = rng.uniform(start, start + 3 * (end - start)) if rng.random() < 0.5 else None
        elif outcome < info_rate + fail_rate:
            status, point = "fail", None
        else:
            status, point = "ok", rng.uniform(start, end)
        op = _Planned(slot_pid[slot], f, key, value, start, end, status, point)
        if status == "info":
            op.recorded = rng.random() >= missing_rate
            # Jepsen never reuses a process whose last op is indeterminate.
            slot_pid[slot] = next_pid
            next_pid += 1
        planned.append(op)
        pause = rng.expovariate(1 / think) if think else 0.0
        heapq.heappush(free, (end + pause, slot))

    # Apply effective ops in linearization order to fix results.
    registers: dict[str, Any] = {}
    for op in sorted((o for o in planned if o.point is not None), key=lambda o: o.point):  # type: ignore[arg-type, return-value]
        current = registers.get(op.key)
        if op.f == "read":
            op.output = current
        elif op.f == "write":
            registers[op.key] = op.value
        elif current == op.value[0]:
            registers[op.key] = op.value[1]
        elif op.status == "ok":
            op.status, op.point = "fail", None  # compare failed: a definite no-op
        else:
            op.point = None  # an info cas whose compare failed changed nothing

    # At equal times completions go first, so that a process's next invoke
    # never precedes the completion of its previous op.
    events: list[tuple[float, int, int, _Planned]] = []
    for n, op in enumerate(planned):
        events.append((op.start, 1, n, op))
        if op.recorded:
            events.append((op.end, 0, n, op))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    history = History()
    for t, is_invoke, _, op in events:
        if is_invoke:
            history.invoke(op.process, op.f, op.key, op.value, t)
        else:
            out = op.output if op.f == "read" else op.value
            if op.status != "ok" and op.f == "read":
                out = None
            history.append(
                op.process,
                op.status,  # type: ignore[arg-type]
                op.f,
                op.key,
                out,
                t,
                None if op.status == "ok" else f"synthetic {op.status}",
            )
    return history


def plant_stale_read(history: History, *, seed: int = 0, key: str | None = None) -> Op | None:
    """Turn one ok read into a provably stale read; return the mutated completion.

    The read is given a value ``v`` such that every op that could have written
    ``v`` completed before some ok write/cas of another value began, and that
    write completed before the read began -- so no linearization lets the
    read see ``v``.  ``None`` (the initial missing-key state) counts as written
    at the beginning of time.  Returns None if no read qualifies.
    """
    rng = random.Random(seed)
    INF = float("inf")
    pairs = [p for p in pair_ops(history.ops) if key is None or p[0].key == key]
    by_key: dict[str, list[tuple[Op, Op | None]]] = {}
    for p in pairs:
        by_key.setdefault(p[0].key, []).append(p)
    candidates = list(by_key)
    rng.shuffle(candidates)
    for k in candidates:
        ops = by_key[k]
        # Latest return of any op that might have written each value.
        last_writer_end: dict[Any, float] = {None: -INF}
        barriers: list[tuple[float, float, Any]] = []  # (invoke, return, value) of ok writes
        for inv, comp in ops:
            if inv.f not in ("write", "cas"):
                continue
            v = inv.value if inv.f == "write" else inv.value[1]
            end = INF if comp is None or comp.type == "info" else comp.time
            last_writer_end[v] = max(last_writer_end.get(v, -INF), end)
            if comp is not None and comp.type == "ok":
                barriers.append((inv.time, comp.time, v))
        reads = [(inv, comp) for inv, comp in ops if inv.f == "read" and comp is not None and comp.type == "ok"]
        rng.shuffle(reads)
        for inv, comp in reads:
            assert comp is not None
            for v, v_end in last_writer_end.items():
                if v_end == INF or v == comp.value:
                    continue
                if any(b_inv > v_end and b_ret < inv.time and b_v != v for b_inv, b_ret, b_v in barriers):
                    comp.value = v
                    return comp
    return None
