"""Resource requests and capacity in integer units: cpu in millicores, everything else (memory,
pods, ephemeral-storage) in whole units, rounded up as the scheduler does.

``pod_requests`` is kube-scheduler's ``computePodResourceRequest`` (containers summed, each init
container as a floor, overhead added) and is what both the scheduler's fit filter and the
kubelet's admission use; ``insufficient_resources`` is the fit check both run (NodeResourcesFit).

Concurrency: pure functions and frozen data; callers own the objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING
from typing import Any

from .quantity import parse_quantity

CPU, MEMORY, PODS, EPHEMERAL = "cpu", "memory", "pods", "ephemeral-storage"
DEFAULT_MILLI_CPU_REQUEST = 100  # kube-scheduler's non-zero defaults, for scoring only
DEFAULT_MEMORY_REQUEST = 200 * 2**20
DEFAULT_MAX_PODS = 110


def to_int_units(name: str, q: Any) -> int:
    """cpu -> millicores, everything else -> integer units (bytes for memory); rounded up."""
    v = parse_quantity(q)
    if name == CPU:
        v = v * 1000
    return int(v.to_integral_value(rounding=ROUND_CEILING))


def resource_list(d: dict[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in (d or {}).items():
        try:
            out[k] = to_int_units(k, v)
        except (ValueError, TypeError):
            continue
    return out


def add_into(a: dict[str, int], b: dict[str, int]) -> None:
    """a += b, per resource."""
    for k, v in b.items():
        a[k] = a.get(k, 0) + v


def max_into(a: dict[str, int], b: dict[str, int]) -> None:
    """a = max(a, b), per resource."""
    for k, v in b.items():
        if v > a.get(k, 0):
            a[k] = v


@dataclass(frozen=True)
class PodRequests:
    """What a pod asks for: ``exact`` for fit (cpu in millicores, memory in bytes, ...),
    ``cpu_nz``/``mem_nz`` with kube-scheduler's non-zero defaults for scoring."""

    exact: dict[str, int]
    cpu_nz: int
    mem_nz: int


def pod_requests(pod: dict[str, Any]) -> PodRequests:
    """Sum of the containers' requests, at least each init container's, plus overhead
    (kube-scheduler's ``computePodResourceRequest``)."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    cpu_nz = mem_nz = 0
    for c in spec.get("containers") or []:
        req = resource_list((c.get("resources") or {}).get("requests"))
        add_into(total, req)
        cpu_nz += req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST
        mem_nz += req.get(MEMORY) or DEFAULT_MEMORY_REQUEST
    for c in spec.get("initContainers") or []:
        req = resource_list((c.get("resources") or {}).get("requests"))
        max_into(total, req)
        cpu_nz = max(cpu_nz, req.get(CPU) or 0)
        mem_nz = max(mem_nz, req.get(MEMORY) or 0)
    overhead = resource_list(spec.get("overhead"))
    add_into(total, overhead)
    cpu_nz += overhead.get(CPU, 0)
    mem_nz += overhead.get(MEMORY, 0)
    total = {k: v for k, v in total.items() if v}
    return PodRequests(total, cpu_nz, mem_nz)


def node_allocatable(node: dict[str, Any]) -> dict[str, int]:
    st = node.get("status") or {}
    alloc = resource_list(st.get("allocatable") or st.get("capacity"))
    alloc.setdefault(PODS, DEFAULT_MAX_PODS)
    return alloc


def insufficient_resources(want: dict[str, int], used: dict[str, int], allocatable: dict[str, int]) -> list[str]:
    """The resources of ``want`` (in its order) that do not fit in ``allocatable`` minus ``used``.

    A request of 0 always fits; a resource the node does not report has nothing allocatable,
    except ephemeral storage, which such a node does not limit (as kube-scheduler)."""
    out: list[str] = []
    for name, n in want.items():
        alloc = allocatable.get(name)
        if alloc is None:
            if name == EPHEMERAL:
                continue
            alloc = 0
        if n and n > alloc - used.get(name, 0):
            out.append(name)
    return out
