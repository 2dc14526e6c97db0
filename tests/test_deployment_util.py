"""Pure Deployment logic: rolling-update arithmetic (rounding, one step at a time, whole
simulated rollouts that must respect maxSurge/maxUnavailable), proportional scaling,
revisions and rollback annotations, Deployment status and conditions, history cleanup.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cluster.api.timestamps import rfc3339 as now_rfc3339
from cluster.controllers import deployment_util as du


def dep(
    replicas: int = 10, surge: Any = "25%", unavail: Any = "25%", strategy: str = "RollingUpdate", **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "strategy": {"type": strategy},
        "progressDeadlineSeconds": 600,
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}},
        "selector": {"matchLabels": {"app": "x"}},
        **extra,
    }
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavail}
    return {
        "metadata": {"name": "d", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": spec,
        "status": {},
    }


def rs(
    name: str, spec: int, available: int | None = None, created: int = 0, revision: int | None = None, **ann: str
) -> dict[str, Any]:
    a = {} if revision is None else {du.REVISION: str(revision)}
    a.update(ann)
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "annotations": a,
            "generation": 1,
            "creationTimestamp": now_rfc3339(1_700_000_000 + created),
        },
        "spec": {"replicas": spec},
        "status": {
            "replicas": spec,
            "availableReplicas": spec if available is None else available,
            "readyReplicas": spec if available is None else available,
            "observedGeneration": 1,
        },
    }


# ------------------------------------------------------------------ fenceposts
def test_surge_rounds_up_unavailable_rounds_down() -> None:
    assert du.scaled_value("25%", 10, True) == 3
    assert du.scaled_value("25%", 10, False) == 2
    assert du.scaled_value(2, 10, True) == 2
    assert du.scaled_value("3", 10, True) == 3
    assert du.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert du.resolve_fenceposts("25%", "25%", 3) == (1, 0)
    assert du.resolve_fenceposts(0, 0, 5) == (0, 1)  # both zero: maxUnavailable becomes 1
    assert du.resolve_fenceposts("0%", "0%", 5) == (0, 1)
    assert du.resolve_fenceposts("10%", "10%", 1) == (1, 0)
    assert du.max_unavailable(dep(3, 1, 5)) == 3  # capped at replicas
    assert du.max_unavailable(dep(0)) == 0
    assert du.max_unavailable(dep(5, strategy="Recreate")) == 0 and du.max_surge(dep(5, strategy="Recreate")) == 0


def test_new_rs_new_replicas() -> None:
    d = dep(10, "25%", "25%")
    old, new = rs("old", 10, created=0), rs("new", 0, created=1)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3  # up to 13 pods in total
    assert du.new_rs_new_replicas(d, [rs("old", 8), rs("new", 5)], rs("new", 5)) == 5  # already 13
    assert du.new_rs_new_replicas(d, [rs("old", 1), rs("new", 9)], rs("new", 9)) == 10  # never past replicas
    assert du.new_rs_new_replicas(dep(10, strategy="Recreate"), [new], new) == 10


def test_one_rolling_step_at_a_time() -> None:
    d = dep(10, "25%", "25%")
    old, new = rs("old", 10, created=0), rs("new", 0, created=1)
    assert du.rolling_step(d, new, [old]) == {"new": 3}  # surge first
    new = rs("new", 3, available=0, created=1)
    # 13 pods, min available 8, 3 new unavailable -> may remove 13 - 8 - 3 = 2 old
    assert du.rolling_step(d, new, [old]) == {"old": 8}
    old = rs("old", 8, created=0)
    assert du.rolling_step(d, new, [old]) == {"new": 5}  # room for 2 more under 13
    new = rs("new", 5, available=0, created=1)
    assert du.rolling_step(d, new, [old]) == {}  # 13 pods, 5 unavailable: wait
    new = rs("new", 5, available=3, created=1)
    assert du.rolling_step(d, new, [old]) == {"old": 5}  # 3 new available: 3 old may go
    # an old ReplicaSet that just scaled down may still report its deleted pods as available:
    # at most spec.replicas of them count
    stale = rs("old", 2, available=6, created=0)
    assert du.available_count([stale]) == 2


def _simulate(
    replicas: int, surge: Any, unavail: Any, *, new_ready: bool = True, max_steps: int = 200
) -> tuple[list[tuple[int, int]], dict[str, Any], dict[str, Any]]:
    d = dep(replicas, surge, unavail)
    old, new = rs("old", replicas, created=0), rs("new", 0, created=1)
    history: list[tuple[int, int]] = []
    for _ in range(max_steps):
        plan = du.rolling_step(d, new, [old])
        for r in (old, new):
            if du.name(r) in plan:
                r["spec"]["replicas"] = plan[du.name(r)]
                # worst case for availability: deleted pods were available ones... but the ReplicaSet
                # controller deletes unavailable pods first, so availability drops only below spec
                r["status"]["availableReplicas"] = min(r["status"]["availableReplicas"], plan[du.name(r)])
        total = du.replica_count([old, new])
        avail = du.available_count([old, new])
        history.append((total, avail))
        if not plan:
            # time passes: pods start; new ones become available only if they can
            changed = False
            for r in (old, new):
                target = r["spec"]["replicas"] if (r is old or new_ready) else 0
                if r["status"]["availableReplicas"] != target:
                    r["status"]["availableReplicas"] = target
                    changed = True
            if not changed:
                break
    return history, old, new


@pytest.mark.parametrize(
    "replicas,surge,unavail",
    [
        (10, "25%", "25%"),
        (3, 1, 0),
        (3, 0, 1),
        (5, "100%", 0),
        (6, 1, 1),
        (1, 0, 1),
        (1, 1, 0),
        (7, "30%", "10%"),
        (4, 0, "50%"),
    ],
)
def test_simulated_rollout_respects_bounds_and_completes(replicas: int, surge: Any, unavail: Any) -> None:
    d = dep(replicas, surge, unavail)
    history, old, new = _simulate(replicas, surge, unavail)
    hi = replicas + du.max_surge(d)
    lo = replicas - du.max_unavailable(d)
    assert max(t for t, _ in history) <= hi
    assert min(a for _, a in history) >= lo
    assert du.replicas(new) == replicas and du.replicas(old) == 0
    assert new["status"]["availableReplicas"] == replicas


def test_stuck_rollout_keeps_minimum_availability() -> None:
    history, old, new = _simulate(10, "25%", "25%", new_ready=False)
    assert min(a for _, a in history) >= 8
    assert max(t for t, _ in history) <= 13
    assert du.replicas(old) >= 8  # it never tore down more old pods than maxUnavailable allows


def test_proportional_scaling_mid_rollout() -> None:
    d = dep(20, "25%", "25%")
    old = rs("old", 8, created=0, **{du.MAX_REPLICAS: "13", du.DESIRED_REPLICAS: "10"})
    new = rs("new", 4, available=0, created=1, **{du.MAX_REPLICAS: "13", du.DESIRED_REPLICAS: "10"})
    assert du.is_scaling_event(d, new, [old])
    plan = du.scale_plan(d, new, [old])
    assert sum(plan.values()) == 20 + du.max_surge(d) == 25
    assert plan["old"] > 8 and plan["new"] > 4
    assert plan == {"old": 17, "new": 8}
    # only one active ReplicaSet: it simply gets the new size
    assert du.scale_plan(dep(7), rs("new", 3), [rs("old", 0)]) == {"new": 7}
    # the new ReplicaSet is saturated: old ones go to zero
    sat = rs("new", 5, created=1, **{du.DESIRED_REPLICAS: "5"})
    assert du.scale_plan(dep(5), sat, [rs("old", 2)]) == {"old": 0}


def test_hash_and_equal_ignore_hash() -> None:
    t1 = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    t2 = copy.deepcopy(t1)
    t2["metadata"]["labels"][du.HASH_LABEL] = "abc"
    assert du.equal_ignore_hash(t1, t2)
    t3 = copy.deepcopy(t1)
    t3["spec"]["containers"][0]["image"] = "b"
    assert not du.equal_ignore_hash(t1, t3)
    h = du.compute_hash(t1)
    assert h == du.compute_hash(t2) and h != du.compute_hash(t3) and h != du.compute_hash(t1, 1)
    assert set(h) <= set(du.SAFE_CHARS) and 1 <= len(h) <= 10


def test_revision_annotations_on_rollback() -> None:
    d = dep(3)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "undo", du.LAST_APPLIED: "{}"}
    new = {"metadata": {"name": "n"}, "spec": {"replicas": 0}}
    assert du.set_new_rs_annotations(d, new, 1, False)
    ann = new["metadata"]["annotations"]
    assert ann[du.REVISION] == "1" and ann[du.DESIRED_REPLICAS] == "3" and ann[du.MAX_REPLICAS] == "4"
    assert ann["kubernetes.io/change-cause"] == "undo" and du.LAST_APPLIED not in ann
    # rolled back to: its revision moves up, the old one is remembered
    assert du.set_new_rs_annotations(d, new, 3, True)
    assert ann[du.REVISION] == "3" and ann[du.REVISION_HISTORY] == "1"
    assert du.set_new_rs_annotations(d, new, 5, True) and ann[du.REVISION_HISTORY] == "1,3"
    assert not du.set_new_rs_annotations(d, new, 2, True)  # never lowered
    assert du.max_revision([rs("a", 0, revision=4), rs("b", 0, revision=2), rs("c", 0)]) == 4


def test_status_and_conditions() -> None:
    d = dep(3, 1, 0)
    new = rs("new", 3, created=1)
    st = du.calculate_status(d, [rs("old", 0), new], new)
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"], st["unavailableReplicas"]) == (3, 3, 3, 0)
    assert du.get_cond(st, "Available")["status"] == "True"
    du.rollout_conditions(d, st, new, 0.0)
    assert du.get_cond(st, "Progressing")["reason"] == du.NEW_RS_AVAILABLE_REASON
    assert du.deployment_complete(d, st)
    half = rs("new", 3, available=1, created=1)
    st2 = du.calculate_status(d, [rs("old", 1), half], half)
    assert du.get_cond(st2, "Available")["status"] == "False"
    d2 = copy.deepcopy(d)
    d2["status"] = {"updatedReplicas": 0}
    du.rollout_conditions(d2, st2, half, 0.0)
    assert du.get_cond(st2, "Progressing")["reason"] == du.RS_UPDATED_REASON
    # no progress for longer than progressDeadlineSeconds -> timed out
    d3 = dep(3, 1, 0, progressDeadlineSeconds=10)
    st3 = {
        "conditions": [du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, "x", 1000.0)],
        "replicas": 3,
        "updatedReplicas": 1,
    }
    d3["status"] = copy.deepcopy(st3)
    du.rollout_conditions(d3, st3, half, 1020.0)
    assert du.get_cond(st3, "Progressing")["reason"] == du.TIMED_OUT_REASON


def test_revision_history_cleanup() -> None:
    d = dep(3, revisionHistoryLimit=2)
    olds = [rs("r1", 0, revision=1, created=1), rs("r2", 0, revision=2, created=2), rs("r3", 1, revision=3, created=3)]
    assert [du.name(r) for r in du.cleanup_victims(d, olds)] == ["r1"]  # lowest revision first
    d["spec"]["revisionHistoryLimit"] = 0
    assert [du.name(r) for r in du.cleanup_victims(d, olds)] == ["r1", "r2"]  # r3 still has a pod
