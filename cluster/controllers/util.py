"""Small shared helpers for the scheduler and the controllers: timestamps
(from ``cluster.client.timestamps``), conditions, pod readiness and
availability, owner references, label selectors on cached objects. Pure
functions.
"""

from __future__ import annotations

from typing import Any

from ..client.resources import Resource
from ..client.timestamps import micro_time, parse_time, rfc3339 as now_rfc3339  # noqa: F401 - for the controllers


# ------------------------------------------------------------ metadata
def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def ns_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def is_deleting(obj: dict[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref_for(owner: dict[str, Any], res: Resource, *, block: bool = True) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (``metav1.NewControllerRef``)."""
    return {"apiVersion": res.api_version, "kind": res.kind, "name": name_of(owner), "uid": uid_of(owner),
            "controller": True, "blockOwnerDeletion": block}


# ------------------------------------------------------------ selectors
def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions); an empty/None selector matches nothing
    here (controllers treat an empty selector as invalid, as upstream does for ReplicaSets)."""
    if not selector:
        return False
    ml = selector.get("matchLabels") or {}
    me = selector.get("matchExpressions") or []
    if not ml and not me:
        return False
    labels = labels or {}
    for k, v in ml.items():
        if labels.get(k) != v:
            return False
    for e in me:
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        have = key in labels
        if op == "In":
            if not have or labels[key] not in vals:
                return False
        elif op == "NotIn":
            if have and labels[key] in vals:
                return False
        elif op == "Exists":
            if not have:
                return False
        elif op == "DoesNotExist":
            if have:
                return False
        else:
            return False
    return True


def selector_string(selector: dict[str, Any] | None) -> str:
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for e in (selector or {}).get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        parts.append({"In": f"{key} in ({vals})", "NotIn": f"{key} notin ({vals})", "Exists": f"{key}",
                      "DoesNotExist": f"!{key}"}.get(op, ""))
    return ",".join(p for p in parts if p)


# ------------------------------------------------------------ conditions
def get_condition(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(status: dict[str, Any], cond: dict[str, Any], *, keep_transition: bool = True) -> bool:
    """Replace the condition of ``cond['type']``; keep ``lastTransitionTime`` when the status is
    unchanged. Returns whether anything but timestamps changed."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            changed = any(c.get(k) != cond.get(k) for k in ("status", "reason", "message"))
            if keep_transition and c.get("status") == cond.get("status") and c.get("lastTransitionTime"):
                cond = dict(cond, lastTransitionTime=c["lastTransitionTime"])
            conds[i] = cond
            return changed
    conds.append(cond)
    return True


# ------------------------------------------------------------------ pods
def pod_ready_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    return get_condition(pod.get("status"), "Ready")


def is_pod_ready(pod: dict[str, Any]) -> bool:
    c = pod_ready_condition(pod)
    return bool(c and c.get("status") == "True")


def is_pod_available(pod: dict[str, Any], min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (``podutil.IsPodAvailable``)."""
    c = pod_ready_condition(pod)
    if not c or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    t = parse_time(c.get("lastTransitionTime"))
    return t is not None and t + min_ready_seconds <= now


def is_pod_active(pod: dict[str, Any]) -> bool:
    """Not terminated and not being deleted (``controller.IsPodActive``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_pod_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def restart_count(pod: dict[str, Any]) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])
