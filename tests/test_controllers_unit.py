"""Pure controller logic: ReplicaSet pod-deletion order and status, expectations,
node-lifecycle taints and taint-based eviction times, Lease leader election against an
in-memory Lease, and pod garbage collection.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from cluster.api.selectors import label_selector_matches as selector_matches
from cluster.api.timestamps import parse_time
from cluster.api.timestamps import rfc3339 as now_rfc3339
from cluster.client import ApiError, FakeClock
from cluster.client.leaderelection import LeaderElectionConfig, LeaderElector
from cluster.controllers.expectations import Expectations
from cluster.controllers.nodelifecycle import desired_taints, effective_tolerations, eviction_time
from cluster.controllers.replicaset import calculate_status, deletion_order, pod_from_template, pods_to_delete


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
