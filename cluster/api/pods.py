"""Pod phase, readiness and availability as controllers judge them (``k8s.io/kubernetes/pkg/api/v1/pod``).

Concurrency: pure functions; callers own the objects.
"""

from __future__ import annotations

from typing import Any

from .conditions import get_condition
from .meta import is_deleting
from .timestamps import parse_time

TERMINAL_PHASES = ("Succeeded", "Failed")


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


def is_pod_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def is_pod_active(pod: dict[str, Any]) -> bool:
    """Not terminated and not being deleted (``controller.IsPodActive``)."""
    return not is_pod_terminal(pod) and not is_deleting(pod)


def restart_count(pod: dict[str, Any]) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])
