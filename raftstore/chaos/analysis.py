"""Pure analysis of a finished run: counts, latencies, availability, elections, recovery.

Every function takes the history (and, where needed, the members' role
events and the fault windows as plain dicts) and returns plain,
JSON-ready data; nothing here does I/O or knows how the run was driven, so
a cluster-level lab can measure its own histories with it.
Single-threaded, stateless.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from raftstore.chaos.history import History, pair_ops

SUCCESSFUL_WRITE_FS = frozenset({"write", "cas", "add"})


def op_counts(history: History) -> dict[str, Any]:
    """Operation counts by completion type, overall and per op kind."""
    by_type: Counter[str] = Counter()
    by_f: dict[str, Counter[str]] = {}
    for inv, comp in pair_ops(history):
        status = "info" if comp is None else comp.type
        by_type[status] += 1
        by_f.setdefault(inv.f, Counter())[status] += 1
    return {
        "total": sum(by_type.values()),
        "ok": by_type["ok"],
        "fail": by_type["fail"],
        "info": by_type["info"],
        "by_f": {f: {"ok": c["ok"], "fail": c["fail"], "info": c["info"]} for f, c in sorted(by_f.items())},
    }


def latency_stats(history: History) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    for inv, comp in pair_ops(history):
        if comp is None:
            continue
        lat.setdefault(f"{inv.f}:{comp.type}", []).append(comp.time - inv.time)
    out = {}
    for k, xs in sorted(lat.items()):
        xs.sort()
        out[k] = {"count": len(xs), "p50": _pct(xs, 0.5), "p99": _pct(xs, 0.99), "max": xs[-1]}
    return out


def _pct(sorted_xs: Sequence[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    i = min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))
    return sorted_xs[i]


def successful_write_times(history: History, start: float = -math.inf, end: float = math.inf) -> list[float]:
    """Completion times of ok writes, cas and adds within [start, end], sorted."""
    out = [
        comp.time
        for inv, comp in pair_ops(history)
        if comp is not None and comp.type == "ok" and inv.f in SUCCESSFUL_WRITE_FS and start <= comp.time <= end
    ]
    out.sort()
    return out


def write_unavailability(times: Sequence[float], start: float, end: float, threshold: float = 0.25) -> dict[str, Any]:
    """Windows longer than ``threshold`` with no successful write completing.

    The gaps considered are start -> first success, between consecutive
    successes, and last success -> end.  ``availability`` is the share of
    [start, end] outside those windows."""
    points = [start, *[t for t in times if start <= t <= end], end]
    windows = [(a, b) for a, b in pairwise(points) if b - a > threshold]
    lengths = [b - a for a, b in windows]
    duration = max(end - start, 1e-9)
    return {
        "threshold": threshold,
        "count": len(windows),
        "median": statistics.median(lengths) if lengths else 0.0,
        "max": max(lengths) if lengths else 0.0,
        "total": sum(lengths),
        "availability": max(0.0, 1.0 - sum(lengths) / duration),
        "windows": [[round(a, 6), round(b, 6)] for a, b in windows],
    }


def availability_bins(times: Sequence[float], start: float, end: float, width: float = 1.0) -> float:
    """Share of ``width``-second bins of [start, end) with at least one successful write."""
    n = max(1, math.ceil((end - start) / width))
    hit = {int((t - start) // width) for t in times if start <= t < end}
    return len(hit) / n


def elections(events: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Elections seen in the members' role/term events within [start, end].

    ``elections`` counts terms in which some member became leader during the
    window; ``term_changes`` counts how far the highest term moved;
    ``leaders`` is the leadership timeline (time, leader, term)."""
    evs = sorted((e for e in events if "time" in e), key=lambda e: e["time"])
    before = [e.get("term", 0) for e in evs if e["time"] < start]
    during = [e for e in evs if start <= e["time"] <= end]
    leader_terms: dict[int, tuple[float, str]] = {}
    for e in during:
        if e.get("role") == "leader":
            leader_terms.setdefault(int(e.get("term", 0)), (e["time"], str(e.get("member"))))
    max_before = max(before, default=0)
    max_during = max((e.get("term", 0) for e in during), default=max_before)
    timeline = [{"time": t, "leader": m, "term": term} for term, (t, m) in sorted(leader_terms.items())]
    return {
        "elections": len(leader_terms),
        "term_at_start": max_before,
        "term_at_end": max(max_before, max_during),
        "term_changes": max(0, max_during - max_before),
        "leaders": timeline,
        "candidacies": sum(1 for e in during if e.get("role") == "candidate"),
    }


def successful_write_spans(history: History) -> list[tuple[float, float]]:
    """(invoke, completion) of every ok write, cas and add, by invocation time."""
    out = [
        (inv.time, comp.time)
        for inv, comp in pair_ops(history)
        if comp is not None and comp.type == "ok" and inv.f in SUCCESSFUL_WRITE_FS
    ]
    out.sort()
    return out


def recovery_after_faults(
    windows: Sequence[dict[str, Any]], spans: Sequence[tuple[float, float]]
) -> list[dict[str, Any]]:
    """For each fault: how long after its start (and after its stop) the first
    successful write *invoked* after that moment completed."""

    def first_after(t: float | None) -> float | None:
        if not t:
            return None
        done = [c for i, c in spans if i >= t]
        return min(done) - t if done else None

    out = []
    for w in windows:
        if w.get("skipped") or w.get("error"):
            continue
        out.append(
            {
                "nemesis": w["nemesis"],
                "start": w["start"],
                "description": w.get("description", ""),
                "first_write_after_start": first_after(w["start"]),
                "first_write_after_stop": first_after(w.get("stop")),
            }
        )
    return out


def overall_verdict(verdicts: Sequence[Any]) -> Any:
    if any(v is False for v in verdicts):
        return False
    if any(v is not True for v in verdicts):  # "unknown" and None
        return "unknown"
    return True


def measure_run(
    history: History,
    raft_events: Sequence[dict[str, Any]],
    windows: Sequence[dict[str, Any]],
    t_start: float,
    t_end: float,
    gap_threshold: float,
) -> dict[str, Any]:
    """The measured part of a run's results, in the order results.json lists it.

    ``windows`` are the fault windows as dicts; ``t_start``/``t_end`` bound
    the workload; ``gap_threshold`` is the shortest write gap counted as
    unavailability."""
    write_times = successful_write_times(history, t_start, t_end)
    unavail = write_unavailability(write_times, t_start, t_end, gap_threshold)
    return {
        "operations": op_counts(history),
        "history_events": len(history),
        "throughput_ok_per_s": op_counts(history)["ok"] / max(1e-9, t_end - t_start),
        "latency": latency_stats(history),
        "availability": {
            "gap_based": unavail["availability"],
            "one_second_bins_with_a_write": availability_bins(write_times, t_start, t_end),
        },
        "write_unavailability": unavail,
        "elections": elections(raft_events, t_start, t_end),
        "faults": windows,
        "recovery": recovery_after_faults(windows, successful_write_spans(history)),
    }
