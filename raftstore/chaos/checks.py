"""Runs every checker on a finished run's history and times each.

The checkers themselves live in :mod:`raftstore.chaos.checkers`; this module
only decides what each gets (the history, the final reads, the watch
streams), turns the results into the ``checkers`` section of
``results.json`` and folds them into one verdict.  Pure CPU work on data
already collected: no I/O, single-threaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from raftstore.chaos.analysis import overall_verdict
from raftstore.chaos.checkers import (
    check_acknowledged_writes,
    check_linearizable,
    check_lost_writes,
    check_watch,
)
from raftstore.chaos.history import History

T = TypeVar("T")


@dataclass(slots=True)
class CheckOutcome:
    """The checkers' part of a run's results."""

    checkers: dict[str, dict[str, Any]]  # name -> the checker's to_dict() plus "elapsed" seconds
    valid: Any  # True, False or "unknown" over every checker
    lost_acknowledged_writes: int  # lost adds plus lost register writes


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and how many seconds it took."""
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def run_checkers(
    history: History,
    finals: dict[str, Any],
    observed: list[dict[str, Any]],
    reference: list[dict[str, Any]] | None,
    *,
    start_revision: int,
    checker_timeout: float,
    watch_reconnects: int,
    watch_error: str | None,
) -> CheckOutcome:
    """Check linearizability, lost adds, lost acknowledged writes and the watch stream.

    ``finals`` are the last reads of every register, ``observed`` the events
    the watcher saw and ``reference`` the store's own event history (None if
    it could not be read: the watch verdict is then "unknown")."""
    lin, lin_s = timed(lambda: check_linearizable(history, timeout=checker_timeout))
    sets, sets_s = timed(lambda: check_lost_writes(history))
    acks, acks_s = timed(lambda: check_acknowledged_writes(history, finals))
    if reference is not None:
        watch, watch_s = timed(lambda: check_watch(observed, reference, start_revision=start_revision))
        watch_d = {**watch.to_dict(), "elapsed": watch_s, "reconnects": watch_reconnects, "error": watch_error}
    else:
        watch_d = {
            "valid": "unknown",
            "elapsed": 0.0,
            "observed_count": len(observed),
            "error": watch_error or "reference history could not be read",
        }
    checkers = {
        "linearizable": {
            **lin.to_dict(),
            "elapsed": lin_s,
            "explanation": lin.explain() if lin.valid is not True else "",
        },
        "lost_writes": {**sets.to_dict(), "elapsed": sets_s},
        "acknowledged_writes": {**acks.to_dict(), "elapsed": acks_s},
        "watch": watch_d,
    }
    return CheckOutcome(
        checkers=checkers,
        valid=overall_verdict([c["valid"] for c in checkers.values()]),
        lost_acknowledged_writes=len(sets.lost) + len(acks.lost),
    )
