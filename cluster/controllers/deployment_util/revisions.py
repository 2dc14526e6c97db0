"""Deployment and ReplicaSet vocabulary: the annotation keys and condition reasons, accessors and
counts over ReplicaSets, the pod-template hash, finding the new and old ReplicaSets, and the
revision annotations a new ReplicaSet carries (``deploymentutil``).

Concurrency: pure functions on caller-owned dicts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from ...api.meta import meta
from ...api.timestamps import parse_time

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000

# condition reasons (deploymentutil)
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
RS_UPDATED_REASON = "ReplicaSetUpdated"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


# ------------------------------------------------------------- accessors
def replicas(obj: dict[str, Any]) -> int:
    v = (obj.get("spec") or {}).get("replicas")
    return 1 if v is None else int(v)


def st(obj: dict[str, Any] | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def name(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def revision(rs: dict[str, Any]) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: list[dict[str, Any]]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def creation_key(rs: dict[str, Any]) -> tuple[float, str]:
    return (parse_time(meta(rs).get("creationTimestamp")) or 0.0, name(rs))


def by_creation(rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rss, key=creation_key)


def filter_active(rss: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def replica_count(rss: Sequence[dict[str, Any] | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_count(rss: Sequence[dict[str, Any] | None]) -> int:
    return sum(st(rs, "replicas") for rs in rss if rs is not None)


def ready_count(rss: Sequence[dict[str, Any] | None]) -> int:
    return sum(st(rs, "readyReplicas") for rs in rss if rs is not None)


def available_count(rss: Sequence[dict[str, Any] | None]) -> int:
    """Available pods, counting at most ``spec.replicas`` per ReplicaSet: a ReplicaSet just scaled
    down may still report the pods it is deleting (its status lags), and the ReplicaSet controller
    deletes unavailable pods first, so what survives is at most ``min(available, spec)``."""
    return sum(min(st(rs, "availableReplicas"), replicas(rs)) for rs in rss if rs is not None)


# ------------------------------------------------------------ templates
def _strip_hash(tmpl: dict[str, Any] | None) -> dict[str, Any]:
    t = copy.deepcopy(tmpl or {})
    md = t.setdefault("metadata", {})
    labels = dict(md.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        md["labels"] = labels
    else:
        md.pop("labels", None)
    for k in [k for k, v in md.items() if v in (None, {}, [])]:
        md.pop(k)
    if not md:
        t.pop("metadata")
    return t


def equal_ignore_hash(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return _canon(_strip_hash(a)) == _canon(_strip_hash(b))


def _canon(o: Any) -> str:
    return json.dumps(o, sort_keys=True, separators=(",", ":"))


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: dict[str, Any] | None, collision_count: int | None = None) -> str:
    """A short stable hash of the pod template (``controller.ComputeHash``: FNV-32a, then
    ``rand.SafeEncodeString`` of its decimal digits)."""
    data = _canon(_strip_hash(template)).encode()
    if collision_count:
        data += str(collision_count).encode()
    return "".join(SAFE_CHARS[int(c) % len(SAFE_CHARS)] for c in str(_fnv32a(data)))


def find_new_rs(d: dict[str, Any], rss: list[dict[str, Any]]) -> dict[str, Any] | None:
    tmpl = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), tmpl):
            return rs
    return None


def find_old_rss(new_rs: dict[str, Any] | None, rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    nuid = meta(new_rs).get("uid") if new_rs else None
    return [rs for rs in rss if meta(rs).get("uid") != nuid]
