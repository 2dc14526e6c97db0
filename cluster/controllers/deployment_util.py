"""Pure Deployment arithmetic (``pkg/controller/deployment/util`` and the pure
halves of ``rolling.go``, ``recreate.go``, ``sync.go``, ``progress.go``).

Everything takes plain Deployment / ReplicaSet dicts and returns numbers or
*plans* (``{replicaset name: new spec.replicas}``); the controller applies
plans with optimistic-concurrency writes. Unit tests simulate whole rollouts
with these functions alone.

Rounding as upstream: ``maxSurge`` percent rounds **up**, ``maxUnavailable``
percent rounds **down**; both zero -> ``maxUnavailable`` = 1.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from ..api.meta import meta
from ..api.timestamps import parse_time, rfc3339

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})
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


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def revision(rs: dict[str, Any]) -> int:
    try:
        return int(annotations(rs).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: list[dict[str, Any]]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def creation_key(rs: dict[str, Any]) -> tuple[float, str]:
    return (parse_time(meta(rs).get("creationTimestamp")) or 0.0, name(rs))


def by_creation(rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rss, key=creation_key)


def filter_active(rss: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def replica_count(rss: list[dict[str, Any] | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_count(rss: list[dict[str, Any] | None]) -> int:
    return sum(st(rs, "replicas") for rs in rss if rs is not None)


def ready_count(rss: list[dict[str, Any] | None]) -> int:
    return sum(st(rs, "readyReplicas") for rs in rss if rs is not None)


def available_count(rss: list[dict[str, Any] | None]) -> int:
    """Available pods, counting at most ``spec.replicas`` per ReplicaSet: a ReplicaSet just scaled
    down may still report the pods it is deleting (its status lags), and the ReplicaSet controller
    deletes unavailable pods first, so what survives is at most ``min(available, spec)``."""
    return sum(min(st(rs, "availableReplicas"), replicas(rs)) for rs in rss if rs is not None)


# ------------------------------------------------------------- fenceposts
def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"invalid value {v!r}")
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        pct = int(s[:-1])
        x = pct * total / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(s)


def is_rolling(d: dict[str, Any]) -> bool:
    return (((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: dict[str, Any]) -> tuple[Any, Any]:
    ru = (((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {})
    return ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%")


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    _, unavailable = resolve_fenceposts(*_rolling_params(d), replicas(d))
    return min(unavailable, replicas(d))


def max_surge(d: dict[str, Any]) -> int:
    if not is_rolling(d):
        return 0
    surge, _ = resolve_fenceposts(*_rolling_params(d), replicas(d))
    return surge


def new_rs_new_replicas(d: dict[str, Any], all_rss: list[dict[str, Any] | None], new_rs: dict[str, Any]) -> int:
    """How big the new ReplicaSet may be now (``NewRSNewReplicas``)."""
    if not is_rolling(d):
        return replicas(d)
    surge = scaled_value(_rolling_params(d)[0], replicas(d), True)
    current = replica_count(all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + up


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
    for k, v in annotations(d).items():
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


# ----------------------------------------------------------- rolling plan
def reconcile_new_rs(d: dict[str, Any], all_rss: list[dict[str, Any] | None], new_rs: dict[str, Any]) -> int | None:
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


def scale_down_old_for_rolling(d: dict[str, Any], all_rss: list[dict[str, Any] | None],
                               old_rss: list[dict[str, Any]]) -> dict[str, int]:
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


def reconcile_old_rss(d: dict[str, Any], all_rss: list[dict[str, Any] | None], old_rss: list[dict[str, Any]],
                      new_rs: dict[str, Any] | None) -> dict[str, int]:
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
    all_rss: list[dict[str, Any] | None] = [*old_rss, new_rs]
    target = reconcile_new_rs(d, all_rss, new_rs)
    if target is not None:
        return {name(new_rs): target}
    return reconcile_old_rss(d, all_rss, old_rss, new_rs)


# --------------------------------------------------- proportional scaling
def desired_annotation(rs: dict[str, Any]) -> int | None:
    try:
        v = annotations(rs).get(DESIRED_REPLICAS)
        return int(v) if v is not None else None
    except ValueError:
        return None


def max_replicas_annotation(rs: dict[str, Any]) -> int | None:
    try:
        v = annotations(rs).get(MAX_REPLICAS)
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


# --------------------------------------------------------------- status
def get_cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: float | None = None) -> dict[str, Any]:
    t = rfc3339(now)
    return {"type": ctype, "status": status, "reason": reason, "message": message, "lastUpdateTime": t,
            "lastTransitionTime": t}


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


def calculate_status(d: dict[str, Any], all_rss: list[dict[str, Any] | None], new_rs: dict[str, Any] | None,
                     now: float | None = None) -> dict[str, Any]:
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
        set_cond(status, new_condition("Available", "True", MIN_AVAILABLE_REASON,
                                       "Deployment has minimum availability.", now))
    else:
        set_cond(status, new_condition("Available", "False", MIN_UNAVAILABLE_REASON,
                                       "Deployment does not have minimum availability.", now))
    return status


def deployment_complete(d: dict[str, Any], status: dict[str, Any]) -> bool:
    r = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == r and int(status.get("replicas") or 0) == r
            and int(status.get("availableReplicas") or 0) == r
            and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 1))


def deployment_progressing(d: dict[str, Any], new: dict[str, Any]) -> bool:
    old = d.get("status") or {}

    def g(s: dict[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or g(new, "readyReplicas") > g(old, "readyReplicas")
            or old_old > new_old or g(new, "availableReplicas") > g(old, "availableReplicas"))


def progress_deadline(d: dict[str, Any]) -> int | None:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    if v is None or int(v) >= 2 ** 31 - 1:
        return None
    return int(v)


def deployment_timed_out(d: dict[str, Any], status: dict[str, Any], now: float) -> bool:
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_cond(status, "Progressing")
    if cond is None:
        return False
    if cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    t = parse_time(cond.get("lastUpdateTime"))
    return t is not None and t + deadline < now


def rollout_conditions(d: dict[str, Any], new_status: dict[str, Any], new_rs: dict[str, Any] | None,
                       now: float) -> None:
    """``syncRolloutStatus``'s Progressing logic, applied to ``new_status`` in place."""
    if progress_deadline(d) is None:
        remove_cond(new_status, "Progressing")
        return
    cur = get_cond(new_status, "Progressing")
    complete_before = (int(new_status.get("replicas") or 0) == int(new_status.get("updatedReplicas") or 0)
                       and cur is not None and cur.get("reason") == NEW_RS_AVAILABLE_REASON)
    if complete_before:
        return
    rs_name = name(new_rs) if new_rs else ""
    if deployment_complete(d, new_status):
        set_cond(new_status, new_condition("Progressing", "True", NEW_RS_AVAILABLE_REASON,
                                           f'ReplicaSet "{rs_name}" has successfully progressed.', now))
    elif deployment_progressing(d, new_status):
        cond = new_condition("Progressing", "True", RS_UPDATED_REASON, f'ReplicaSet "{rs_name}" is progressing.',
                             now)
        if cur is not None and cur.get("status") == "True":
            cond["lastTransitionTime"] = cur.get("lastTransitionTime")
        remove_cond(new_status, "Progressing")
        new_status["conditions"].append(cond)
    elif deployment_timed_out(d, new_status, now):
        set_cond(new_status, new_condition("Progressing", "False", TIMED_OUT_REASON,
                                           f'ReplicaSet "{rs_name}" has timed out progressing.', now))


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
