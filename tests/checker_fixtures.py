"""Helpers shared by the checker tests: recording whole ops into a history."""

from __future__ import annotations

from typing import Any

import pytest

from raftstore.chaos.checkers import check_linearizable
from raftstore.chaos.history import History

BOTH = pytest.mark.parametrize("quick", [True, False], ids=["quick", "search"])


def call(
    h: History,
    p: int,
    f: str,
    key: str,
    value: Any,
    start: float,
    end: float | None,
    *,
    status: str = "ok",
    out: Any = None,
) -> None:
    """Record a whole op: invoke at ``start``, completion at ``end`` (None: never).

    Reads (read, read_set) take their result from ``out``; the checkers order ops by time, not
    by position in the history, so ops may be recorded one after the other.
    """
    reads = f in ("read", "read_set")
    h.invoke(p, f, key, None if reads else value, start)
    if end is not None:
        h.append(p, status, f, key, out if reads else value, end)  # type: ignore[arg-type]


def lin(h: History, **kw: Any) -> Any:
    return check_linearizable(h, **kw).valid
