"""Exact linearizability checking of per-key read/write/cas registers.

Linearizability is compositional (Herlihy & Wing's locality, the
"P-compositionality" Porcupine exploits), so a history over many keys is
linearizable iff every key's sub-history is, and each key is checked alone
against a register whose initial value is None (the key is missing).

Each key is searched with the Wing & Gong algorithm with Lowe's improvements
(the "WGL" search of Porcupine and of Knossos's linear checker):

* call and return entries, ordered by time, sit in a doubly linked list;
* linearizing an op *lifts* its two entries out of the list, backtracking
  *unlifts* them (dancing links, so both are O(1));
* a cache of (set of linearized ops, register state) prunes every
  configuration already explored -- the remaining search only depends on it;
* the search is an explicit stack, never Python recursion; sets of ops are
  Python ints used as bitsets and register values are coded as small ints.

On top of that come exact reductions for indeterminate and read-only ops
(see :func:`.wgl.search`) and, before any search, a near-linear scan for
provably stale reads (:func:`.linearizable_problem.find_stale_read`), which
finds the commonest violations without exhausting the search space -- the
one thing WGL is slow at.

Operation semantics:

* ``fail`` ops certainly did not happen and are dropped;
* ``info`` ops, and invokes that never completed, may take effect at any
  point after their invocation or never: they get no return entry at all, so
  nothing ever forces them, and the search succeeds as soon as every op with
  a real return is linearized.  Unknown reads cannot constrain anything and
  are dropped outright;
* an ok read of None means the key was missing;
* an ok cas ``[expected, new]`` requires the register to hold ``expected``.

Real-time order comes from ``Op.time``.  Events with equal times count as
concurrent (calls sort before returns), so a tie can never cause a rejection.

The verdict is exact: True or False is only returned once the search has
proved it, and a search cut short by ``timeout`` says ``"unknown"``.

This module groups a history by key and runs the per-key check; the coding
(:mod:`.linearizable_problem`), the search (:mod:`.wgl`) and the verdicts
(:mod:`.linearizable_results`) live beside it.  Everything is pure and
single-threaded: the only outside input is the monotonic clock for
``timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from raftstore.chaos.checkers.linearizable_problem import (
    CAS,
    READ,
    WRITE,
    RegisterProblem,
    find_stale_read,
)
from raftstore.chaos.checkers.linearizable_results import (
    KeyResult,
    LinearizabilityResult,
    Verdict,
    describe,
)
from raftstore.chaos.checkers.wgl import search
from raftstore.chaos.history import REGISTER_FS, Op, Pair, pair_ops

__all__ = [
    "CAS",
    "READ",
    "WRITE",
    "KeyResult",
    "LinearizabilityResult",
    "Verdict",
    "check_key",
    "check_linearizable",
    "describe",
]


def check_key(key: str, pairs: list[Pair], *, deadline: float | None = None, quick_reject: bool = True) -> KeyResult:
    """Check one key's (invoke, completion) pairs; ``deadline`` is a monotonic time."""
    started = time.monotonic()
    prob = RegisterProblem(pairs)
    result = KeyResult(
        key=key,
        valid="unknown",
        op_count=len(prob.kind),
        ok_count=prob.ok,
        info_count=prob.info,
        fail_count=prob.fail,
    )
    hit = find_stale_read(prob) if quick_reject else None
    if hit is not None:
        culprit, barrier, writer = hit
        need = prob.values[prob.a[culprit]]
        result.valid = False
        result.unplaced = [prob.pairs[culprit]]
        if barrier is None:
            result.reason = f"{describe(prob.pairs[culprit])} needs {need!r}, which nothing ever wrote"
            result.state = None
        else:
            b = prob.pairs[barrier]
            result.reason = (
                f"{describe(prob.pairs[culprit])} needs {need!r}, but {describe(b)} "
                f"overwrote it after every write of {need!r} had completed and before it began"
            )
            result.linearized = ([] if writer is None else [prob.pairs[writer]]) + [b]
            result.state = prob.values[prob.b[barrier] if prob.kind[barrier] == CAS else prob.a[barrier]]
    elif deadline is None or time.monotonic() < deadline:
        search(prob, deadline, result)
    result.elapsed = time.monotonic() - started
    return result


def check_linearizable(
    history: Iterable[Op],
    *,
    timeout: float | None = None,
    keys: Iterable[str] | None = None,
    quick_reject: bool = True,
) -> LinearizabilityResult:
    """Check that every key of ``history`` behaves as a linearizable register.

    ``history`` is a list of :class:`Op` events (or a History); ops other than
    read/write/cas are ignored.  ``keys`` restricts the check to those keys.
    ``timeout`` (seconds, for the whole check) turns undecided keys into
    ``"unknown"`` -- never into a guess.  ``quick_reject`` first looks for
    provably stale reads in near-linear time (sound, so it never changes a
    verdict, only how fast a violation is found); keys still unchecked at the
    deadline get this quick look too.  Turn it off to exercise the full search.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    wanted = None if keys is None else set(keys)
    groups: dict[str, list[Pair]] = {}
    ignored = 0
    op_count = 0
    for pair in pair_ops(history):
        inv = pair[0]
        if inv.f not in REGISTER_FS:
            ignored += 1
            continue
        if wanted is not None and inv.key not in wanted:
            continue
        groups.setdefault(inv.key, []).append(pair)
        op_count += 1

    done: dict[str, KeyResult] = {}
    # Smallest keys first: with a timeout, one hard key should not leave the
    # many easy ones undecided.
    for key in sorted(groups, key=lambda k: len(groups[k])):
        # Past the deadline check_key only runs the cheap quick rejection.
        done[key] = check_key(key, groups[key], deadline=deadline, quick_reject=quick_reject)
    results = {key: done[key] for key in groups}
    timed_out = any(r.valid == "unknown" for r in results.values())

    failed = [k for k, r in results.items() if r.valid is False]
    unknown = [k for k, r in results.items() if r.valid == "unknown"]
    verdict: Verdict = False if failed else ("unknown" if unknown else True)
    return LinearizabilityResult(
        valid=verdict,
        keys=results,
        failed_keys=failed,
        unknown_keys=unknown,
        key_count=len(groups),
        op_count=op_count,
        ignored_count=ignored,
        elapsed=time.monotonic() - started,
        timed_out=timed_out,
    )
