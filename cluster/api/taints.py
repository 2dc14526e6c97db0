"""Taints and tolerations (``core/v1`` ``Toleration.ToleratesTaint`` and the taint manager's helpers).

Concurrency: pure functions; callers own the objects.
"""

from __future__ import annotations

import math
from typing import Any, Iterable


def toleration_tolerates(tol: dict[str, Any], taint: dict[str, Any]) -> bool:
    """core/v1 ``Toleration.ToleratesTaint``: effect (empty = all), key (empty = all, needs Exists),
    operator Equal (default; values must match) or Exists."""
    eff = tol.get("effect") or ""
    if eff and eff != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def untolerated_taint(
    taints: Iterable[dict[str, Any]],
    tolerations: list[dict[str, Any]],
    effects: tuple[str, ...] = ("NoSchedule", "NoExecute"),
) -> dict[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates (None: all tolerated)."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def matching_tolerations(
    tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]
) -> tuple[bool, list[dict[str, Any]]]:
    """(all taints tolerated, the tolerations used) - ``GetMatchingTolerations`` of the taint manager."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        found = False
        for tol in tolerations:
            if toleration_tolerates(tol, taint):
                used.append(tol)
                found = True
                break
        if not found:
            return False, []
    return True, used


def min_toleration_seconds(tolerations: list[dict[str, Any]]) -> float:
    """Shortest ``tolerationSeconds`` among ``tolerations`` (inf when none is bounded; <0 counts as 0)."""
    best = math.inf
    for t in tolerations:
        s = t.get("tolerationSeconds")
        if s is None:
            continue
        best = min(best, max(0.0, float(s)))
    return best


def taint_str(taint: dict[str, Any]) -> str:
    return f"{{{taint.get('key', '')}: {taint.get('value', '') or ''}}}"
