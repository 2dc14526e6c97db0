"""Unit tests of the kubelet's pure parts: no processes, no network."""

from __future__ import annotations

from typing import Any

from cluster.api.resources import pod_requests
from cluster.kubelet.admission import admission_rejection


def mkpod(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"nodeName": "n1", "containers": containers, **spec}
    if init:
        s["initContainers"] = init
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"}, "spec": s}


def ctr(name: str = "c", **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "raykube/web", **kw}


# ---------------------------------------------------------------- admission
def test_admission_fit_uses_the_scheduler_requests() -> None:
    cap = {"cpu": 3000, "memory": 6 * 2**30, "pods": 2}

    def req(cpu: str = "0", mem: str = "0", **spec: Any) -> Any:
        return pod_requests(mkpod([ctr(resources={"requests": {"cpu": cpu, "memory": mem}})], **spec))

    assert admission_rejection(req("1"), [req("1")], cap) is None
    assert admission_rejection(req("4"), [], cap) == (
        "OutOfcpu", "Node didn't have enough resource: cpu, requested: 4000m, used: 0m, capacity: 3000m")
    assert admission_rejection(req("1", "4Gi"), [req("1", "3Gi")], cap) == (
        "OutOfmemory", f"Node didn't have enough resource: memory, requested: {4 * 2**30}, used: {3 * 2**30}, "
                       f"capacity: {6 * 2**30}")
    assert admission_rejection(req(), [req(), req()], cap) == (
        "OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2")
    # init containers are a floor, overhead is added (as the scheduler counts)
    init = pod_requests(mkpod([ctr(resources={"requests": {"cpu": "1"}})],
                              init=[ctr("i", resources={"requests": {"cpu": "2500m"}})], overhead={"cpu": "600m"}))
    assert admission_rejection(init, [], cap) == (
        "OutOfcpu", "Node didn't have enough resource: cpu, requested: 3100m, used: 0m, capacity: 3000m")
