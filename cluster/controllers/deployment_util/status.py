"""Deployment status and conditions: replica counts, Progressing/Available conditions, the
progress deadline (``progress.go``) and which old ReplicaSets history cleanup deletes.

Concurrency: pure functions on caller-owned dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ...api.conditions import get_condition
from ...api.meta import meta
from ...api.timestamps import parse_time, rfc3339
from .fenceposts import max_unavailable
from .revisions import (
    MIN_AVAILABLE_REASON,
    MIN_UNAVAILABLE_REASON,
    NEW_RS_AVAILABLE_REASON,
    RS_UPDATED_REASON,
    TIMED_OUT_REASON,
    actual_count,
    available_count,
    creation_key,
    name,
    ready_count,
    replica_count,
    replicas,
    revision,
    st,
)


# --------------------------------------------------------------- status
def new_condition(ctype: str, status: str, reason: str, message: str, now: float | None = None) -> dict[str, Any]:
    t = rfc3339(now)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": t,
        "lastTransitionTime": t,
    }


def set_cond(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: same status and reason -> nothing; same status -> keep the
    transition time."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            if c.get("status") == cond["status"] and c.get("reason") == cond["reason"]:
                return
            if c.get("status") == cond["status"]:
                cond = dict(cond, lastTransitionTime=c.get("lastTransitionTime"))
            conds[i] = cond
            return
    conds.append(cond)


def remove_cond(status: dict[str, Any], ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def calculate_status(
    d: dict[str, Any], all_rss: Sequence[dict[str, Any] | None], new_rs: dict[str, Any] | None, now: float | None = None
) -> dict[str, Any]:
    available = available_count(all_rss)
    total = replica_count(all_rss)
    old = d.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": meta(d).get("generation", 1),
        "replicas": actual_count(all_rss),
        "updatedReplicas": actual_count([new_rs]),
        "readyReplicas": ready_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        set_cond(
            status,
            new_condition("Available", "True", MIN_AVAILABLE_REASON, "Deployment has minimum availability.", now),
        )
    else:
        set_cond(
            status,
            new_condition(
                "Available", "False", MIN_UNAVAILABLE_REASON, "Deployment does not have minimum availability.", now
            ),
        )
    return status


def deployment_complete(d: dict[str, Any], status: dict[str, Any]) -> bool:
    r = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == r
        and int(status.get("replicas") or 0) == r
        and int(status.get("availableReplicas") or 0) == r
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 1)
    )


def deployment_progressing(d: dict[str, Any], new: dict[str, Any]) -> bool:
    old = d.get("status") or {}

    def g(s: dict[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or old_old > new_old
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def progress_deadline(d: dict[str, Any]) -> int | None:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    if v is None or int(v) >= 2**31 - 1:
        return None
    return int(v)


def deployment_timed_out(d: dict[str, Any], status: dict[str, Any], now: float) -> bool:
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_condition(status, "Progressing")
    if cond is None:
        return False
    if cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    t = parse_time(cond.get("lastUpdateTime"))
    return t is not None and t + deadline < now


def rollout_conditions(
    d: dict[str, Any], new_status: dict[str, Any], new_rs: dict[str, Any] | None, now: float
) -> None:
    """``syncRolloutStatus``'s Progressing logic, applied to ``new_status`` in place."""
    if progress_deadline(d) is None:
        remove_cond(new_status, "Progressing")
        return
    cur = get_condition(new_status, "Progressing")
    complete_before = (
        int(new_status.get("replicas") or 0) == int(new_status.get("updatedReplicas") or 0)
        and cur is not None
        and cur.get("reason") == NEW_RS_AVAILABLE_REASON
    )
    if complete_before:
        return
    rs_name = name(new_rs) if new_rs else ""
    if deployment_complete(d, new_status):
        set_cond(
            new_status,
            new_condition(
                "Progressing",
                "True",
                NEW_RS_AVAILABLE_REASON,
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
            ),
        )
    elif deployment_progressing(d, new_status):
        cond = new_condition("Progressing", "True", RS_UPDATED_REASON, f'ReplicaSet "{rs_name}" is progressing.', now)
        if cur is not None and cur.get("status") == "True":
            cond["lastTransitionTime"] = cur.get("lastTransitionTime")
        remove_cond(new_status, "Progressing")
        new_status["conditions"].append(cond)
    elif deployment_timed_out(d, new_status, now):
        set_cond(
            new_status,
            new_condition(
                "Progressing", "False", TIMED_OUT_REASON, f'ReplicaSet "{rs_name}" has timed out progressing.', now
            ),
        )


def cleanup_victims(d: dict[str, Any], old_rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Old ReplicaSets beyond ``revisionHistoryLimit`` that may be deleted (lowest revision first;
    only fully scaled-down, status-observed ones)."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not meta(rs).get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    if diff <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), creation_key(rs)))
    out = []
    for rs in alive[:diff]:
        if st(rs, "replicas") != 0 or replicas(rs) != 0:
            continue
        if int(meta(rs).get("generation") or 1) > st(rs, "observedGeneration"):
            continue
        out.append(rs)
    return out
