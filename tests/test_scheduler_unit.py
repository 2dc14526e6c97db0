"""Pure scheduler logic on hand-made nodes and pods: quantities and requests, every
filter, the FailedScheduling message, scores, the cache's assumed pods, the
scheduling queue's back-off and unschedulable pool (on a fake clock), and the
scheduling algorithm on a cache (no API server).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cluster.api.quantity import parse_quantity
from cluster.api.resources import pod_requests, to_int_units
from cluster.api.taints import toleration_tolerates, untolerated_taint
from cluster.client import Client, FakeClock
from cluster.scheduler.cache import SchedulerCache
from cluster.scheduler.predicates import (
    NodeInfo,
    filter_node,
    fit_error_message,
    least_allocated_score,
    num_feasible_nodes_to_find,
    score_nodes,
)
from cluster.scheduler.queue import SchedulingQueue
from cluster.scheduler.scheduler import Scheduler


def node(
    name: str,
    cpu: str = "4",
    mem: str = "8Gi",
    pods: int = 110,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": mem, "pods": str(pods)}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": alloc,
            "capacity": alloc,
            "conditions": [{"type": "Ready", "status": ready}] if ready else [],
        },
    }


def pod(
    name: str = "p", cpu: str | None = "100m", mem: str | None = "64Mi", owner: str | None = None, **spec: Any
) -> dict[str, Any]:
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    md: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        md["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}
        ]
    return {"metadata": md, "spec": {"containers": [{"name": "c", "resources": {"requests": req}}], **spec}}


def fits(p: dict[str, Any], n: dict[str, Any], *placed: dict[str, Any]) -> list[str] | None:
    ni = NodeInfo.of(n)
    for i, q in enumerate(placed):
        ni.add_pod(f"x{i}", pod_requests(q), None)
    return filter_node(p, pod_requests(p), ni)


# ------------------------------------------------------------------ resources
def test_quantities() -> None:
    assert to_int_units("cpu", "500m") == 500
    assert to_int_units("cpu", "2") == 2000
    assert to_int_units("cpu", 1.5) == 1500
    assert to_int_units("memory", "1Gi") == 2**30
    assert to_int_units("memory", "1G") == 10**9
    assert to_int_units("memory", "1e3") == 1000
    assert to_int_units("cpu", "0.1m") == 1  # rounded up
    assert parse_quantity("128Mi") == 128 * 2**20
    with pytest.raises(ValueError):
        parse_quantity("12x")


def test_pod_requests_sum_containers_max_init_plus_overhead() -> None:
    p = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
                {"resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "500m", "memory": "10Mi"}}}],
            "overhead": {"cpu": "10m"},
        }
    }
    r = pod_requests(p)
    assert r.exact == {"cpu": 510, "memory": 100 * 2**20}
    # scoring counts a container without requests as 100m / 200Mi
    assert r.cpu_nz == 510 and r.mem_nz == 100 * 2**20 + 200 * 2**20
    assert pod_requests({"spec": {"containers": [{}]}}).exact == {}


def test_resources_filter() -> None:
    assert fits(pod(cpu="1"), node("n", cpu="2")) is None
    assert fits(pod(cpu="3"), node("n", cpu="2")) == ["Insufficient cpu"]
    assert fits(pod(cpu="1"), node("n", cpu="2"), pod(cpu="1500m")) == ["Insufficient cpu"]
    assert fits(pod(cpu="1", mem="9Gi"), node("n", cpu="2", mem="8Gi")) == ["Insufficient memory"]
    assert fits(pod(cpu="3", mem="9Gi"), node("n", cpu="2")) == ["Insufficient cpu", "Insufficient memory"]
    assert fits(pod(), node("n", pods=1), pod()) == ["Too many pods"]
    # a pod without requests always fits resource-wise
    assert fits(pod(cpu=None, mem=None), node("n", cpu="1"), pod(cpu="1")) is None
    # extended resources the node doesn't have
    gpu = pod()
    gpu["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    assert fits(gpu, node("n")) == ["Insufficient example.com/gpu"]


def test_node_name_selector_and_affinity() -> None:
    n = node("n1", labels={"zone": "a", "size": "5"})
    assert fits(pod(nodeName="n1"), n) is None
    assert fits(pod(nodeName="n2"), n) == ["node(s) didn't match the requested node name"]
    assert fits(pod(nodeSelector={"zone": "a"}), n) is None
    assert fits(pod(nodeSelector={"zone": "b"}), n) == ["node(s) didn't match Pod's node affinity/selector"]

    def aff(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        term: dict[str, Any] = {"matchExpressions": list(exprs)}
        if fields:
            term["matchFields"] = fields
        return pod(
            affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
        )

    ok, bad = None, ["node(s) didn't match Pod's node affinity/selector"]
    cases = [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, ok),
        ({"key": "zone", "operator": "In", "values": ["b"]}, bad),
        ({"key": "zone", "operator": "NotIn", "values": ["b"]}, ok),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, bad),
        ({"key": "missing", "operator": "NotIn", "values": ["a"]}, ok),
        ({"key": "zone", "operator": "Exists"}, ok),
        ({"key": "missing", "operator": "Exists"}, bad),
        ({"key": "missing", "operator": "DoesNotExist"}, ok),
        ({"key": "zone", "operator": "DoesNotExist"}, bad),
        ({"key": "size", "operator": "Gt", "values": ["4"]}, ok),
        ({"key": "size", "operator": "Gt", "values": ["5"]}, bad),
        ({"key": "size", "operator": "Lt", "values": ["6"]}, ok),
        ({"key": "size", "operator": "Lt", "values": ["5"]}, bad),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, bad),  # not an integer
    ]
    for expr, want in cases:
        assert fits(aff(expr), n) == want, expr
    # expressions within a term are ANDed; terms are ORed; matchFields on metadata.name
    assert (
        fits(
            aff({"key": "zone", "operator": "In", "values": ["a"]}, {"key": "size", "operator": "In", "values": ["6"]}),
            n,
        )
        == bad
    )
    assert fits(aff(fields=[{"key": "metadata.name", "operator": "In", "values": ["n1"]}]), n) is None
    assert fits(aff(fields=[{"key": "metadata.name", "operator": "In", "values": ["n2"]}]), n) == bad
    two_terms = pod(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    ]
                }
            }
        }
    )
    assert fits(two_terms, n) is None


def test_toleration_matching() -> None:
    t = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert toleration_tolerates({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, t)
    assert toleration_tolerates({"key": "k", "value": "v"}, t)  # operator defaults to Equal, any effect
    assert not toleration_tolerates({"key": "k", "value": "w"}, t)
    assert toleration_tolerates({"key": "k", "operator": "Exists"}, t)
    assert not toleration_tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, t)
    assert toleration_tolerates({"operator": "Exists"}, t)  # empty key + Exists tolerates everything
    assert not toleration_tolerates({"key": "other", "operator": "Exists"}, t)
    assert untolerated_taint([t, {"key": "p", "effect": "PreferNoSchedule"}], []) == t
    assert untolerated_taint([{"key": "p", "effect": "PreferNoSchedule"}], []) is None


def test_taints_unschedulable_and_not_ready_filters() -> None:
    tainted = node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert fits(pod(), tainted) == ["node(s) had untolerated taint {dedicated: gpu}"]
    assert (
        fits(
            pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]),
            tainted,
        )
        is None
    )
    noexec = node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
    assert fits(pod(), noexec) == ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    assert fits(pod(), node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}])) is None
    assert fits(pod(), node("n", unschedulable=True)) == ["node(s) were unschedulable"]
    assert (
        fits(
            pod(
                tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
            ),
            node("n", unschedulable=True),
        )
        is None
    )
    assert fits(pod(), node("n", ready="False")) == ["node(s) were not ready"]
    assert fits(pod(), node("n", ready="Unknown")) == ["node(s) were not ready"]
    assert fits(pod(), node("n", ready="")) == ["node(s) were not ready"]


def test_failed_scheduling_message() -> None:
    assert fit_error_message(3, {"Insufficient cpu": 3}) == "0/3 nodes are available: 3 Insufficient cpu."
    assert (
        fit_error_message(3, {"Insufficient cpu": 2, "node(s) were unschedulable": 1})
        == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
    )
    assert (
        fit_error_message(2, {"Insufficient cpu": 2, "Insufficient memory": 1})
        == "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."
    )
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"


# ---------------------------------------------------------------------- scores
def test_least_allocated_prefers_emptier_node() -> None:
    busy, idle = NodeInfo.of(node("busy")), NodeInfo.of(node("idle"))
    busy.add_pod("x", pod_requests(pod(cpu="3", mem="6Gi")), None)
    p = pod()
    assert least_allocated_score(pod_requests(p), idle) > least_allocated_score(pod_requests(p), busy)
    scores = score_nodes(p, pod_requests(p), [busy, idle])
    assert scores[1] > scores[0]


def test_spreading_by_owner_beats_small_allocation_differences() -> None:
    a, b = NodeInfo.of(node("a")), NodeInfo.of(node("b"))
    a.add_pod("x1", pod_requests(pod("x1", owner="rs-1")), "rs-1")
    b.add_pod("y1", pod_requests(pod("y1", cpu="200m")), None)  # b is slightly busier, but has no rs-1 pod
    p = pod("new", owner="rs-1")
    scores = score_nodes(p, pod_requests(p), [a, b])
    assert scores[1] > scores[0]
    # an unrelated pod does not care about rs-1's spread: the emptier node wins
    q = pod("other")
    s2 = score_nodes(q, pod_requests(q), [a, b])
    assert s2[0] > s2[1]


def test_prefer_no_schedule_lowers_score_and_preferred_affinity_raises_it() -> None:
    a = NodeInfo.of(node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    b = NodeInfo.of(node("b"))
    p = pod()
    s = score_nodes(p, pod_requests(p), [a, b])
    assert s[1] > s[0]
    tol = pod(tolerations=[{"key": "k", "operator": "Exists"}])
    s = score_nodes(tol, pod_requests(tol), [a, b])
    assert s[0] == s[1]
    c = NodeInfo.of(node("c", labels={"disk": "ssd"}))
    pref = pod(
        affinity={
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                    }
                ]
            }
        }
    )
    s = score_nodes(pref, pod_requests(pref), [b, c])
    assert s[1] > s[0]


def test_percentage_of_nodes_to_score() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420  # 50 - 1000/125 = 42 %
    assert num_feasible_nodes_to_find(10000) == 500  # floor at 5 %
    assert num_feasible_nodes_to_find(150, 10) == 100  # never under 100 nodes


# ------------------------------------------------------------- cache and queue
def test_cache_counts_assumed_pods_until_confirmed_or_expired() -> None:
    clock = FakeClock()
    c = SchedulerCache(clock, assume_ttl=30)
    c.add_or_update_node(node("n", cpu="1"))
    p = pod("a", cpu="600m")
    c.assume(p, "n")
    assert c.nodes["n"].requested["cpu"] == 600 and c.is_assumed("default/a")
    c.finish_binding("default/a")
    clock.advance(10)
    assert c.cleanup() == []
    bound = dict(p, spec=dict(p["spec"], nodeName="n"))
    c.add_or_update_pod(bound)  # the watch confirms it
    assert not c.is_assumed("default/a") and c.nodes["n"].requested["cpu"] == 600
    clock.advance(100)
    assert c.cleanup() == []  # confirmed pods never expire
    c.assume(pod("b", cpu="100m"), "n")
    c.finish_binding("default/b")
    clock.advance(31)
    assert c.cleanup() == ["default/b"] and c.nodes["n"].requested["cpu"] == 600
    c.assume(pod("c", cpu="100m"), "n")
    c.forget("default/c")  # binding failed
    assert c.nodes["n"].requested["cpu"] == 600
    done = dict(bound, status={"phase": "Succeeded"})
    c.add_or_update_pod(done)  # terminated pods free their node
    assert c.nodes["n"].requested.get("cpu", 0) == 0 and c.nodes["n"].pod_count == 0
    c.remove_node("n")
    assert c.num_nodes == 0


async def test_queue_backoff_and_unschedulable_pool() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock, initial_backoff=1, max_backoff=8, max_unschedulable=60)
    q.add("a")
    q.add("b", priority=10)
    assert q.pop_nowait().key == "b"  # higher priority first
    info = q.pop_nowait()
    assert info.key == "a" and q.pop_nowait() is None
    q.requeue_unschedulable(info, q.scheduling_cycle)
    assert q.where("a") == "unschedulable"
    clock.advance(30)
    assert q.pop_nowait() is None  # nothing changed: it stays parked
    assert q.move_all_to_active() == 1  # a node was added
    info = q.pop_nowait()
    assert info.key == "a" and info.attempts == 2
    # a move request during the attempt sends it to backoffQ instead of the pool
    cycle = q.scheduling_cycle
    q.move_all_to_active()
    q.requeue_unschedulable(info, cycle)
    assert q.where("a") == "backoff"
    assert q.pop_nowait() is None
    clock.advance(q.backoff_duration(2) + 0.01)  # 2 s after the 2nd attempt
    assert q.pop_nowait().key == "a"
    assert [q.backoff_duration(n) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    # parked pods are retried after max_unschedulable even if nothing changes
    info = q.info("a")
    q.requeue_unschedulable(info, q.scheduling_cycle)
    clock.advance(61)
    assert q.pop_nowait().key == "a"
    q.delete("a")
    assert len(q) == 1  # "b" is still in flight until done
    q.done("b")
    assert len(q) == 0


async def test_queue_pop_waits_for_backoff() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock, initial_backoff=1)
    q.add("a")
    info = q.pop_nowait()
    q.requeue_error(info)
    task = asyncio.ensure_future(q.pop())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.5)
    got = await asyncio.wait_for(task, 1)
    assert got.key == "a"


def test_find_node_counts_assumed_pods_and_reports_reasons() -> None:
    s = Scheduler(Client("https://127.0.0.1:1"))
    for n in (node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="8", unschedulable=True)):
        s.cache.add_or_update_node(n)
    placed = []
    for i in range(2):
        p = pod(f"p{i}", cpu="700m")
        chosen, _, _ = s.find_node(p)
        assert chosen in ("a", "b")
        s.cache.assume(p, chosen)
        placed.append(chosen)
    assert sorted(placed) == ["a", "b"], "the assumed pod made the first node full"
    chosen, reasons, n = s.find_node(pod("p3", cpu="700m"))
    assert chosen is None and n == 3
    assert fit_error_message(n, reasons) == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
