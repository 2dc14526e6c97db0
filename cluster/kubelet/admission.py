"""The kubelet's admission: can this node take one more pod? (kubelet's ``lifecycle`` predicate)

``admission_rejection(pod, admitted, capacity)`` -> None, or ``(reason,
message)`` to fail the pod (``OutOfpods``, ``OutOfcpu``, ``OutOfmemory``), as
Kubernetes does for pods bound to a node that cannot fit them. Requests are
``cluster.api.resources.pod_requests`` - the scheduler's own computation
(containers summed, each init container as a floor, overhead added) - so a
pod the scheduler placed is never turned away for a different arithmetic.

Concurrency: pure functions.
"""

from __future__ import annotations

from ..api.resources import CPU, MEMORY, PODS, PodRequests, add_into, insufficient_resources

CHECKED = (PODS, CPU, MEMORY)  # what the node reports capacity for, in the order they are checked


def admission_rejection(
    pod: PodRequests, admitted: list[PodRequests], capacity: dict[str, int]
) -> tuple[str, str] | None:
    """``pod`` against ``capacity`` (cpu in millicores, memory in bytes, pods) minus what the ``admitted``
    pods (still running on the node) request; a request of 0 always fits."""
    used: dict[str, int] = {}
    for other in admitted:
        add_into(used, other.exact)
    used[PODS] = len(admitted)
    want = {name: 1 if name == PODS else pod.exact.get(name, 0) for name in CHECKED}
    short = insufficient_resources(want, used, {name: capacity.get(name, 0) for name in CHECKED})
    if not short:
        return None
    name = short[0]
    n, u, cap = want[name], used.get(name, 0), capacity.get(name, 0)
    unit = "m" if name == CPU else ""
    return f"OutOf{name}", (
        f"Node didn't have enough resource: {name}, requested: {n}{unit}, used: {u}{unit}, capacity: {cap}{unit}"
    )
