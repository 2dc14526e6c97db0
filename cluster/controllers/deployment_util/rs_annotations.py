"""The annotations a Deployment's ReplicaSets carry: desired and max replicas, the revision and
its history, and the Deployment's own annotations copied over (``deploymentutil``).

Concurrency: pure functions; they mutate only the ReplicaSet dict they are given.
"""

from __future__ import annotations

from typing import Any

from ...api.meta import meta
from .fenceposts import max_surge
from .revisions import (
    ANNOTATIONS_TO_SKIP,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    MAX_REV_HISTORY_CHARS,
    REVISION,
    REVISION_HISTORY,
    annotations_of,
    replicas,
)


# ---------------------------------------------------------- annotations
def set_replicas_annotations(rs: dict[str, Any], desired: int, max_total: int) -> bool:
    ann = meta(rs).setdefault("annotations", {}) if "metadata" in rs else {}
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_total))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def copy_deployment_annotations(d: dict[str, Any], rs: dict[str, Any]) -> bool:
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
        if k in ANNOTATIONS_TO_SKIP or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: dict[str, Any], rs: dict[str, Any], new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, raise the revision (keeping
    the superseded one in ``revision-history`` on a rollback), replica annotations for a new one."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs["metadata"].setdefault("annotations", {})
    old = ann.get(REVISION)
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return changed
    if old_int < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            hist = ann.get(REVISION_HISTORY, "")
            revs = [r for r in hist.split(",") if r] + [old]
            while revs and len(",".join(revs)) > MAX_REV_HISTORY_CHARS:
                revs.pop(0)
            ann[REVISION_HISTORY] = ",".join(revs)
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed
