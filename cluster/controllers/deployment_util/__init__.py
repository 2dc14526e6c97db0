"""Pure Deployment arithmetic (``pkg/controller/deployment/util`` and the pure
halves of ``rolling.go``, ``recreate.go``, ``sync.go``, ``progress.go``).

Everything takes plain Deployment / ReplicaSet dicts and returns numbers or
*plans* (``{replicaset name: new spec.replicas}``); the controller applies
plans with optimistic-concurrency writes. Unit tests simulate whole rollouts
with these functions alone.

- ``revisions``: annotation keys, condition reasons, accessors, template hash, new/old ReplicaSets;
- ``fenceposts``: maxSurge/maxUnavailable;
- ``rs_annotations``: what a Deployment's ReplicaSets carry (replicas, revision, history);
- ``rollout``: the rolling-update plan and proportional scaling;
- ``status``: status, conditions, progress deadline, history cleanup.

Concurrency: pure functions on caller-owned dicts.
"""

from __future__ import annotations

from ...api.conditions import get_condition as get_cond
from .fenceposts import is_rolling, max_surge, max_unavailable, new_rs_new_replicas, resolve_fenceposts, scaled_value
from .revisions import (
    ANNOTATIONS_TO_SKIP,
    DESIRED_REPLICAS,
    FAILED_RS_CREATE_REASON,
    FOUND_NEW_RS_REASON,
    HASH_LABEL,
    LAST_APPLIED,
    MAX_REPLICAS,
    MAX_REV_HISTORY_CHARS,
    MIN_AVAILABLE_REASON,
    MIN_UNAVAILABLE_REASON,
    NEW_RS_AVAILABLE_REASON,
    NEW_RS_REASON,
    PAUSED_REASON,
    RESUMED_REASON,
    REVISION,
    REVISION_HISTORY,
    ROLLBACK_TO,
    RS_UPDATED_REASON,
    SAFE_CHARS,
    TIMED_OUT_REASON,
    actual_count,
    annotations_of,
    available_count,
    by_creation,
    compute_hash,
    creation_key,
    equal_ignore_hash,
    filter_active,
    find_new_rs,
    find_old_rss,
    max_revision,
    name,
    ready_count,
    replica_count,
    replicas,
    revision,
    st,
)
from .rollout import (
    cleanup_unhealthy,
    desired_annotation,
    find_active_or_latest,
    is_saturated,
    is_scaling_event,
    max_replicas_annotation,
    reconcile_new_rs,
    reconcile_old_rss,
    rolling_step,
    scale_down_old_for_rolling,
    scale_plan,
)
from .rs_annotations import copy_deployment_annotations, set_new_rs_annotations, set_replicas_annotations
from .status import (
    calculate_status,
    cleanup_victims,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    new_condition,
    progress_deadline,
    remove_cond,
    rollout_conditions,
    set_cond,
)

__all__ = [
    "REVISION",
    "REVISION_HISTORY",
    "DESIRED_REPLICAS",
    "MAX_REPLICAS",
    "HASH_LABEL",
    "LAST_APPLIED",
    "ROLLBACK_TO",
    "ANNOTATIONS_TO_SKIP",
    "MAX_REV_HISTORY_CHARS",
    "NEW_RS_REASON",
    "FOUND_NEW_RS_REASON",
    "NEW_RS_AVAILABLE_REASON",
    "RS_UPDATED_REASON",
    "TIMED_OUT_REASON",
    "PAUSED_REASON",
    "RESUMED_REASON",
    "FAILED_RS_CREATE_REASON",
    "MIN_AVAILABLE_REASON",
    "MIN_UNAVAILABLE_REASON",
    "SAFE_CHARS",
    "replicas",
    "st",
    "name",
    "annotations_of",
    "revision",
    "max_revision",
    "creation_key",
    "by_creation",
    "filter_active",
    "replica_count",
    "actual_count",
    "ready_count",
    "available_count",
    "equal_ignore_hash",
    "compute_hash",
    "find_new_rs",
    "find_old_rss",
    "scaled_value",
    "is_rolling",
    "resolve_fenceposts",
    "max_unavailable",
    "max_surge",
    "new_rs_new_replicas",
    "set_replicas_annotations",
    "copy_deployment_annotations",
    "set_new_rs_annotations",
    "reconcile_new_rs",
    "cleanup_unhealthy",
    "scale_down_old_for_rolling",
    "reconcile_old_rss",
    "rolling_step",
    "desired_annotation",
    "max_replicas_annotation",
    "is_scaling_event",
    "find_active_or_latest",
    "is_saturated",
    "scale_plan",
    "get_cond",
    "new_condition",
    "set_cond",
    "remove_cond",
    "calculate_status",
    "deployment_complete",
    "deployment_progressing",
    "progress_deadline",
    "deployment_timed_out",
    "rollout_conditions",
    "cleanup_victims",
]
