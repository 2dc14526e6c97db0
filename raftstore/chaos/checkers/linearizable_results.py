"""Verdicts of the linearizability checker: per-key and overall results.

Plain data plus their human and JSON forms (``explain``, ``to_dict``,
:func:`describe`), shared by the search (:mod:`.wgl`), the checker
(:mod:`.linearizable`) and the reports.  Pure and single-threaded: nothing
here does I/O or keeps global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from raftstore.chaos.history import Pair, completion_type

Verdict = Literal[True, False, "unknown"]


@dataclass(slots=True)
class KeyResult:
    """Verdict and search statistics for one key."""

    key: str
    valid: Verdict
    op_count: int  # operations searched (fail ops and unknown reads are dropped)
    ok_count: int
    info_count: int  # info or never completed
    fail_count: int
    steps: int = 0
    cache_size: int = 0
    elapsed: float = 0.0
    # For a non-linearizable key: why; the longest linearization the search
    # found (after a quick rejection: the ops that must precede the culprit,
    # ending with the one that overwrote what it needed); the register value
    # after it; and the ops that could not be placed next, the first one
    # being the op whose return forced the search back.
    reason: str = ""
    linearized: list[Pair] = field(default_factory=list)
    state: Any = None
    unplaced: list[Pair] = field(default_factory=list)

    def explain(self) -> str:
        if self.valid is True:
            return f"key {self.key!r}: linearizable ({self.op_count} ops)"
        if self.valid == "unknown":
            return f"key {self.key!r}: unknown (search cut short after {self.steps} steps)"
        lines = [
            f"key {self.key!r}: NOT linearizable",
            f"  why: {self.reason}",
            (f"  longest linearization found: {len(self.linearized)} ops, leaving the register at {self.state!r}"),
        ]
        if self.linearized:
            lines.append("  its last ops:")
            lines.extend(f"    {describe(p)}" for p in self.linearized[-5:])
        lines.append("  could not place:")
        lines.extend(f"    {describe(p)}" for p in self.unplaced)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "valid": self.valid,
            "op_count": self.op_count,
            "ok_count": self.ok_count,
            "info_count": self.info_count,
            "fail_count": self.fail_count,
            "steps": self.steps,
            "cache_size": self.cache_size,
            "elapsed": self.elapsed,
            "reason": self.reason,
            "linearized": [describe(p) for p in self.linearized],
            "state": self.state,
            "unplaced": [describe(p) for p in self.unplaced],
        }


@dataclass(slots=True)
class LinearizabilityResult:
    """Overall verdict: False if any key is not linearizable, else "unknown" if
    any key could not be decided in time, else True."""

    valid: Verdict
    keys: dict[str, KeyResult]
    failed_keys: list[str]
    unknown_keys: list[str]
    key_count: int
    op_count: int  # operations (invoke + completion pairs) considered
    ignored_count: int  # non-register operations skipped (add, read_set, ...)
    elapsed: float
    timed_out: bool

    def explain(self) -> str:
        head = f"linearizable={self.valid} keys={self.key_count} ops={self.op_count} elapsed={self.elapsed:.3f}s"
        bad = [self.keys[k].explain() for k in self.failed_keys]
        if self.unknown_keys:
            bad.append(f"{len(self.unknown_keys)} key(s) undecided: {self.unknown_keys[:10]}")
        return "\n".join([head, *bad])

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "key_count": self.key_count,
            "op_count": self.op_count,
            "ignored_count": self.ignored_count,
            "elapsed": self.elapsed,
            "timed_out": self.timed_out,
            "failed_keys": self.failed_keys,
            "unknown_keys": self.unknown_keys,
            "failures": {k: self.keys[k].to_dict() for k in self.failed_keys},
        }


def describe(pair: Pair) -> str:
    """One-line human form of an operation, e.g. ``p3 write 'x' 5 -> ok [1.20, 1.31]``."""
    inv, comp = pair
    status = completion_type(pair)
    if inv.f == "read" and comp is not None and status == "ok":
        what = f"read {inv.key!r} -> {comp.value!r}"
    else:
        what = f"{inv.f} {inv.key!r} {inv.value!r}"
    end = "inf" if comp is None or status == "info" else f"{comp.time:.6f}"
    return f"p{inv.process} {what} {status} [{inv.time:.6f}, {end}]"
