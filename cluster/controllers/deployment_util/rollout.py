"""Rollout arithmetic: ``maxSurge``/``maxUnavailable`` fenceposts, the rolling-update plan
(``rolling.go``) and proportional scaling of a rollout in progress (``sync.go``). Plans are
``{replicaset name: new spec.replicas}``.

Rounding as upstream: ``maxSurge`` percent rounds **up**, ``maxUnavailable``
percent rounds **down**; both zero -> ``maxUnavailable`` = 1.

Concurrency: pure functions on caller-owned dicts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from .fenceposts import is_rolling, max_surge, max_unavailable, new_rs_new_replicas
from .revisions import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    annotations_of,
    available_count,
    by_creation,
    creation_key,
    filter_active,
    name,
    replica_count,
    replicas,
    st,
)


# ----------------------------------------------------------- rolling plan
def reconcile_new_rs(d: dict[str, Any], all_rss: Sequence[dict[str, Any] | None], new_rs: dict[str, Any]) -> int | None:
    """Target size of the new ReplicaSet this step, or None to leave it."""
    want = replicas(d)
    cur = replicas(new_rs)
    if cur == want:
        return None
    if cur > want:
        return want
    n = new_rs_new_replicas(d, all_rss, new_rs)
    return n if n != cur else None


def cleanup_unhealthy(old_rss: list[dict[str, Any]], max_cleanup: int) -> dict[str, int]:
    """Scale down unavailable pods of old ReplicaSets first (oldest first), up to ``max_cleanup``."""
    plan: dict[str, int] = {}
    total = 0
    for rs in by_creation(old_rss):
        if total >= max_cleanup:
            break
        spec = replicas(rs)
        if spec == 0:
            continue
        unhealthy = spec - min(st(rs, "availableReplicas"), spec)
        if unhealthy <= 0:
            continue
        down = min(max_cleanup - total, unhealthy)
        plan[name(rs)] = spec - down
        total += down
    return plan


def scale_down_old_for_rolling(
    d: dict[str, Any], all_rss: Sequence[dict[str, Any] | None], old_rss: list[dict[str, Any]]
) -> dict[str, int]:
    """Scale old ReplicaSets down as far as availability allows (oldest first)."""
    min_available = replicas(d) - max_unavailable(d)
    available = available_count(all_rss)
    if available <= min_available:
        return {}
    total = available - min_available
    plan: dict[str, int] = {}
    done = 0
    for rs in by_creation(old_rss):
        if done >= total:
            break
        spec = replicas(rs)
        if spec == 0:
            continue
        down = min(spec, total - done)
        plan[name(rs)] = spec - down
        done += down
    return plan


def _apply(rss: list[dict[str, Any]], plan: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for rs in rss:
        if name(rs) in plan:
            rs = copy.deepcopy(rs)
            old = replicas(rs)
            rs["spec"]["replicas"] = plan[name(rs)]
            # pods being removed were the unavailable ones first
            avail = min(st(rs, "availableReplicas"), plan[name(rs)], old)
            rs.setdefault("status", {})["availableReplicas"] = avail
        out.append(rs)
    return out


def reconcile_old_rss(
    d: dict[str, Any],
    all_rss: Sequence[dict[str, Any] | None],
    old_rss: list[dict[str, Any]],
    new_rs: dict[str, Any] | None,
) -> dict[str, int]:
    """``reconcileOldReplicaSets``: how far to scale old ReplicaSets down this step."""
    old_pods = replica_count(old_rss)
    if old_pods == 0:
        return {}
    all_pods = replica_count(all_rss)
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - min(st(new_rs, "availableReplicas"), replicas(new_rs)) if new_rs else 0
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    active_old = filter_active(old_rss)
    plan = cleanup_unhealthy(active_old, max_scaled_down)
    olds_after = _apply(active_old, plan)
    all_after = olds_after + ([new_rs] if new_rs else [])
    plan.update(scale_down_old_for_rolling(d, all_after, olds_after))
    return plan


def rolling_step(d: dict[str, Any], new_rs: dict[str, Any], old_rss: list[dict[str, Any]]) -> dict[str, int]:
    """One step of a rolling update: scale the new ReplicaSet up if allowed, else old ones down.
    Returns the plan (empty: nothing to do now)."""
    all_rss: Sequence[dict[str, Any] | None] = [*old_rss, new_rs]
    target = reconcile_new_rs(d, all_rss, new_rs)
    if target is not None:
        return {name(new_rs): target}
    return reconcile_old_rss(d, all_rss, old_rss, new_rs)


# --------------------------------------------------- proportional scaling
def desired_annotation(rs: dict[str, Any]) -> int | None:
    try:
        v = annotations_of(rs).get(DESIRED_REPLICAS)
        return int(v) if v is not None else None
    except ValueError:
        return None


def max_replicas_annotation(rs: dict[str, Any]) -> int | None:
    try:
        v = annotations_of(rs).get(MAX_REPLICAS)
        return int(v) if v is not None else None
    except ValueError:
        return None


def is_scaling_event(d: dict[str, Any], new_rs: dict[str, Any] | None, old_rss: list[dict[str, Any]]) -> bool:
    for rs in filter_active([*old_rss, new_rs]):
        want = desired_annotation(rs)
        if want is not None and want != replicas(d):
            return True
    return False


def find_active_or_latest(new_rs: dict[str, Any] | None, old_rss: list[dict[str, Any]]) -> dict[str, Any] | None:
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    active = filter_active([*olds, new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: dict[str, Any], rs: dict[str, Any] | None) -> bool:
    if rs is None:
        return False
    want = desired_annotation(rs)
    return replicas(rs) == replicas(d) and want == replicas(d) and st(rs, "availableReplicas") == replicas(d)


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _rs_fraction(rs: dict[str, Any], d: dict[str, Any]) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    dep_replicas = replicas(d) + max_surge(d)
    annotated = max_replicas_annotation(rs)
    if annotated is None:
        annotated = st(d, "replicas")
    if annotated == 0:
        return 0
    return _round_half_away(replicas(rs) * dep_replicas / annotated) - replicas(rs)


def _proportion(rs: dict[str, Any], d: dict[str, Any], to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac = _rs_fraction(rs, d)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def scale_plan(d: dict[str, Any], new_rs: dict[str, Any] | None, old_rss: list[dict[str, Any]]) -> dict[str, int]:
    """``DeploymentController.scale``: a replicas change of the Deployment spread over its
    ReplicaSets (everything to the only active one; proportionally during a rollout)."""
    one = find_active_or_latest(new_rs, old_rss)
    if one is not None:
        return {} if replicas(one) == replicas(d) else {name(one): replicas(d)}
    if is_saturated(d, new_rs):
        return {name(rs): 0 for rs in filter_active(old_rss)}
    if not is_rolling(d):
        return {}
    all_rss = filter_active([*old_rss, new_rs])
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - replica_count(all_rss)
    if to_add > 0:  # bigger first, newer first on ties
        all_rss.sort(key=lambda r: (-replicas(r), -creation_key(r)[0], creation_key(r)[1]))
    elif to_add < 0:  # bigger first, older first on ties
        all_rss.sort(key=lambda r: (-replicas(r), creation_key(r)))
    sizes: dict[str, int] = {}
    added = 0
    for rs in all_rss:
        if to_add != 0:
            p = _proportion(rs, d, to_add, added)
            sizes[name(rs)] = replicas(rs) + p
            added += p
        else:
            sizes[name(rs)] = replicas(rs)
    if all_rss and to_add != 0:
        first = name(all_rss[0])
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes
