"""Pure controller logic: rolling-update arithmetic (rounding, one step at a time,
whole simulated rollouts that must respect maxSurge/maxUnavailable), proportional
scaling, revisions and rollback annotations, Deployment status and conditions,
ReplicaSet pod-deletion order and status, expectations, node-lifecycle taints and
taint-based eviction times, and Lease leader election against an in-memory Lease.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from cluster.api.selectors import label_selector_matches as selector_matches
from cluster.api.timestamps import parse_time
from cluster.api.timestamps import rfc3339 as now_rfc3339
from cluster.client import ApiError, FakeClock
from cluster.client.leaderelection import LeaderElectionConfig, LeaderElector
from cluster.controllers import deployment_util as du
from cluster.controllers.expectations import Expectations
from cluster.controllers.nodelifecycle import desired_taints, effective_tolerations, eviction_time
from cluster.controllers.replicaset import calculate_status, deletion_order, pod_from_template, pods_to_delete


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


# ------------------------------------------------------------------ ReplicaSet
def _pod(
    name: str,
    node: str = "",
    phase: str = "Running",
    ready: bool = True,
    created: int = 0,
    ready_at: int = 0,
    restarts: int = 0,
) -> dict[str, Any]:
    conds = [
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": now_rfc3339(1_700_000_000 + ready_at),
        }
    ]
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "x"},
            "creationTimestamp": now_rfc3339(1_700_000_000 + created),
        },
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


def test_deletion_order() -> None:
    pods = [
        _pod("ready-old", "n1", created=0, ready_at=10),
        _pod("unscheduled", "", phase="Pending", ready=False),
        _pod("pending", "n1", phase="Pending", ready=False),
        _pod("notready", "n1", ready=False),
        _pod("ready-new", "n2", created=5, ready_at=20),
        _pod("restarts", "n2", created=1, ready_at=10, restarts=3),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods, {})]
    assert order[:4] == ["unscheduled", "pending", "notready", "ready-new"]
    assert order[4:] == ["restarts", "ready-old"]
    # pods on crowded nodes go first (other ready pods of the same Deployment share the node)
    a, b = _pod("a", "n1", ready_at=0), _pod("b", "n2", ready_at=0)
    related = [a, b, _pod("c", "n2"), _pod("d", "n2")]
    assert [p["metadata"]["name"] for p in pods_to_delete([a, b], related, 1)] == ["b"]


def test_replicaset_status_and_pod_template() -> None:
    r = {
        "metadata": {"name": "web-abc", "namespace": "default", "uid": "u", "generation": 4},
        "spec": {
            "replicas": 3,
            "minReadySeconds": 30,
            "template": {
                "metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        },
    }
    now = 1_700_000_100
    pods = [_pod("p1", "n", ready_at=0), _pod("p2", "n", ready_at=90), _pod("p3", "n", ready=False)]
    pods[2]["metadata"]["labels"] = {"app": "x", "pod-template-hash": "abc"}
    st = calculate_status(r, pods, now)
    assert st == {
        "replicas": 3,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 4,
    }
    ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-abc",
        "uid": "u",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    p = pod_from_template(r, ref)
    assert p["metadata"]["generateName"] == "web-abc-"
    assert p["metadata"]["labels"]["pod-template-hash"] == "abc" and p["metadata"]["annotations"] == {"a": "b"}
    assert p["metadata"]["ownerReferences"] == [ref]


def test_selector_matching() -> None:
    sel = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    assert selector_matches(sel, {"app": "x", "tier": "a"})
    assert not selector_matches(sel, {"app": "x", "tier": "b"})
    assert not selector_matches(sel, {"app": "x", "tier": "a", "gone": "1"})
    assert not selector_matches({}, {"app": "x"})  # an empty selector selects nothing here


def test_expectations() -> None:
    clock = FakeClock()
    e = Expectations(clock, ttl=300)
    assert e.satisfied("rs")
    e.expect_creations("rs", 2)
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert e.satisfied("rs")
    e.expect_deletions("rs", ["default/a", "default/b"])
    e.deletion_observed("rs", "default/a")
    e.deletion_observed("rs", "default/a")  # the same pod observed twice counts once
    assert not e.satisfied("rs")
    clock.advance(301)
    assert e.satisfied("rs"), "expectations expire so a lost event cannot wedge the controller"


# -------------------------------------------------------------- node lifecycle
def _node(ready: str | None, taints: list[dict[str, Any]] | None = None, unschedulable: bool = False) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": ready}] if ready else []
    return {
        "metadata": {"name": "n"},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"conditions": conds},
    }


def test_desired_taints_follow_ready_condition() -> None:
    keys = lambda ts: sorted((t["key"], t["effect"]) for t in ts)  # noqa: E731
    assert desired_taints(_node("True"), "t") == []
    assert keys(desired_taints(_node("False"), "t")) == [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/not-ready", "NoSchedule"),
    ]
    un = desired_taints(_node("Unknown", [{"key": "mine", "effect": "NoSchedule"}]), "2024-01-01T00:00:00Z")
    assert keys(un) == [
        ("mine", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule"),
    ]
    assert [t for t in un if t["effect"] == "NoExecute"][0]["timeAdded"] == "2024-01-01T00:00:00Z"
    # existing taints keep their timeAdded; recovery removes them; other taints are kept
    again = desired_taints(_node("Unknown", un), "later")
    assert [t for t in again if t["effect"] == "NoExecute"][0]["timeAdded"] == "2024-01-01T00:00:00Z"
    assert keys(desired_taints(_node("True", un), "t")) == [("mine", "NoSchedule")]
    assert keys(desired_taints(_node("True", unschedulable=True), "t")) == [
        ("node.kubernetes.io/unschedulable", "NoSchedule")
    ]


def test_taint_based_eviction_times() -> None:
    added = "2024-01-01T00:00:00Z"
    t0 = parse_time(added)
    assert t0 is not None
    unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": added}]
    admitted = {
        "spec": {
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ]
        }
    }
    # the pod's own tolerationSeconds count, whatever the profile (a pod admitted with 300 s keeps them)
    assert eviction_time(admitted, unreachable, 0) == t0 + 300
    assert eviction_time(admitted, unreachable, 300) == t0 + 300
    # a pod without the tolerations gets them with the profile's default
    assert eviction_time({"spec": {}}, unreachable, 5) == t0 + 5
    # its own toleration wins
    own = {
        "spec": {
            "tolerations": [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 60,
                }
            ]
        }
    }
    assert eviction_time(own, unreachable, 0) == t0 + 60
    forever = {
        "spec": {
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]
        }
    }
    assert eviction_time(forever, unreachable, 0) is None
    # an untolerated NoExecute taint: evict now
    assert eviction_time(admitted, [{"key": "maintenance", "effect": "NoExecute", "timeAdded": added}], 300) == 0.0
    assert eviction_time(admitted, [{"key": "x", "effect": "NoSchedule"}], 0) is None
    assert len(effective_tolerations({"spec": {}}, 7)) == 2


# ------------------------------------------------------------ leader election
class FakeLeases:
    """An in-memory Lease API with resourceVersion checks (what LeaderElector calls)."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.rv = 0

    async def get(self, res: Any, name: str, ns: str | None = None) -> dict[str, Any]:
        if self.obj is None:
            raise ApiError(404, "NotFound", "not found")
        return copy.deepcopy(self.obj)

    async def create(self, res: Any, body: dict[str, Any], ns: str | None = None) -> dict[str, Any]:
        if self.obj is not None:
            raise ApiError(409, "AlreadyExists", "exists")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.obj)

    async def update(self, res: Any, body: dict[str, Any]) -> dict[str, Any]:
        assert self.obj is not None
        if body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "conflict")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.obj)


async def test_leader_election_one_holder_expiry_and_release() -> None:
    api = FakeLeases()
    # (a Lease stores whole seconds: leaseDurationSeconds 1)
    cfg = dict(lease_name="kube-scheduler", lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    a = LeaderElector(api, LeaderElectionConfig(identity="a", **cfg))  # type: ignore[arg-type]
    b = LeaderElector(api, LeaderElectionConfig(identity="b", **cfg))  # type: ignore[arg-type]
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew(), "held and fresh: b must wait"
    assert await a.try_acquire_or_renew(), "the holder renews"
    assert not await b.try_acquire_or_renew(), "b saw the renewal: the lease is fresh again"
    await asyncio.sleep(0.5)
    assert not await b.try_acquire_or_renew(), "not expired yet"
    await asyncio.sleep(0.6)  # a stopped renewing: expired as b observes it
    assert await b.try_acquire_or_renew()
    assert api.obj["spec"]["holderIdentity"] == "b" and api.obj["spec"]["leaseTransitions"] == 1
    assert not await a.try_acquire_or_renew(), "a sees b's fresh record"
    # a restarted replica with the same identity resumes at once
    b2 = LeaderElector(api, LeaderElectionConfig(identity="b", **cfg))  # type: ignore[arg-type]
    assert await b2.try_acquire_or_renew()
    # release: the standby takes over without waiting for expiry
    b2._leading = True
    await b2.release()
    assert api.obj["spec"]["holderIdentity"] == ""
    assert await a.try_acquire_or_renew()


async def test_leader_election_run_only_leader_works() -> None:
    api = FakeLeases()
    cfg = dict(lease_name="kube-controller-manager", lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)
    working: list[str] = []

    def work(name: str) -> Any:
        async def run() -> None:
            working.append(name)
            await asyncio.sleep(3600)

        return run

    ea = LeaderElector(api, LeaderElectionConfig(identity="a", **cfg))  # type: ignore[arg-type]
    eb = LeaderElector(api, LeaderElectionConfig(identity="b", **cfg))  # type: ignore[arg-type]
    ta = asyncio.ensure_future(ea.run(work("a")))
    await asyncio.sleep(0.05)
    tb = asyncio.ensure_future(eb.run(work("b")))
    await asyncio.sleep(0.5)
    assert working == ["a"] and ea.is_leader and not eb.is_leader
    ta.cancel()  # graceful stop releases the Lease
    await asyncio.gather(ta, return_exceptions=True)
    for _ in range(40):
        if working == ["a", "b"]:
            break
        await asyncio.sleep(0.05)
    assert working == ["a", "b"] and eb.is_leader
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)


# ---------------------------------------------------------------------- pod GC
class RecordingClient:
    """Just enough of ``cluster.client.Client`` for pod GC: node GETs and pod DELETEs."""

    def __init__(self, nodes: set[str]) -> None:
        self.nodes = nodes
        self.deleted: list[tuple[str, int | None]] = []

    async def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        if name in self.nodes:
            return {"metadata": {"name": name}}
        raise ApiError(404, "NotFound", f'nodes "{name}" not found')

    async def delete(
        self,
        res: Any,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        self.deleted.append((name, grace_period_seconds))
        return {}


async def test_pod_gc() -> None:
    from dataclasses import replace

    from cluster.client import NODES, PODS
    from cluster.controllers.base import Context, InformerFactory
    from cluster.controllers.podgc import PodGCController
    from cluster.profiles import DEMO

    client = RecordingClient({"alive", "lost"})
    informers = InformerFactory(client, 0)  # type: ignore[arg-type]
    ctx = Context(client, informers, None, replace(DEMO, pod_gc_terminated_threshold=2))  # type: ignore[arg-type]
    gc = PodGCController(ctx, period=1.0, lost_node_grace=5.0)
    nodes, pods = informers.get(NODES), informers.get(PODS)
    nodes.store.put({"metadata": {"name": "alive"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    nodes.store.put({"metadata": {"name": "lost"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})

    def p(
        name: str, node: str = "alive", phase: str = "Running", created: int = 0, deleting_at: float | None = None
    ) -> dict[str, Any]:
        md: dict[str, Any] = {
            "name": name,
            "namespace": "default",
            "uid": name,
            "creationTimestamp": now_rfc3339(1_700_000_000 + created),
        }
        if deleting_at is not None:
            md["deletionTimestamp"] = now_rfc3339(deleting_at)
        return {"metadata": md, "spec": {"nodeName": node}, "status": {"phase": phase}}

    import time as _time

    now = _time.time()
    for obj in [
        p("done1", phase="Succeeded", created=1),
        p("done2", phase="Failed", created=2),
        p("done3", phase="Succeeded", created=3),
        p("done4", phase="Succeeded", created=4),
        p("orphan", node="gone"),
        p("unscheduled-terminating", node="", deleting_at=now + 30),
        p("stuck-on-lost", node="lost", deleting_at=now - 10),
        p("fresh-on-lost", node="lost", deleting_at=now),
        p("terminating-on-alive", deleting_at=now - 100),
        p("running"),
    ]:
        pods.store.put(obj)
    await gc.gc_once()
    got = dict(client.deleted)
    assert set(got) == {"done1", "done2", "orphan", "unscheduled-terminating", "stuck-on-lost"}
    assert got["orphan"] == 0 and got["stuck-on-lost"] == 0  # force deletions
    assert got["done1"] is None  # terminated pods: normal deletion
