"""Pure scheduling logic: resource arithmetic, taints and tolerations, node
affinity, the filters and scores the scheduler runs, and the FailedScheduling
message. No I/O, no clocks: everything here is unit-tested on hand-made dicts.

Filters run in kube-scheduler's plugin order and a node fails at the first
one that rejects it; each returns ``None`` (fits) or a list of reasons in
kube-scheduler's words (``Insufficient cpu``, ``node(s) didn't match Pod's
node affinity/selector``, ``node(s) had untolerated taint {k: v}``, ...).

Scores are 0..100 per plugin, combined with weights as the default profile
does: least-allocated (cpu+memory, weight 1), spreading of pods with the same
controller (weight 2), PreferNoSchedule taints (weight 3), preferred node
affinity (weight 2).

Concurrency: pure functions and plain data classes; callers own the objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.meta import controller_uid
from ..api.nodes import node_ready_status
from ..api.resources import (
    CPU,
    DEFAULT_MAX_PODS,
    MEMORY,
    PODS,
    PodRequests,
    add_into,
    insufficient_resources,
    node_allocatable,
)
from ..api.taints import taint_str, tolerates, untolerated_taint


# --------------------------------------------------------------- affinity
def _expr_matches(expr: dict[str, Any], value: str | None) -> bool:
    op = expr.get("operator")
    vals = expr.get("values") or []
    if op == "In":
        return value is not None and value in vals
    if op == "NotIn":
        return value is None or value not in vals
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(vals) != 1:
            return False
        try:
            a, b = int(value), int(vals[0])
        except (TypeError, ValueError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    """A NodeSelectorTerm: all matchExpressions (labels) and matchFields (``metadata.name``) hold;
    an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    md = node.get("metadata") or {}
    labels = md.get("labels") or {}
    for e in exprs:
        if not _expr_matches(e, labels.get(e.get("key"))):
            return False
    for f in fields:
        if f.get("key") != "metadata.name":
            return False
        if not _expr_matches(f, md.get("name")):
            return False
    return True


def node_selector_matches(selector: dict[str, Any] | None, node: dict[str, Any]) -> bool:
    """A NodeSelector: any of its terms matches."""
    if not selector:
        return True
    return any(term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def required_affinity_matches(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None and not node_selector_matches(req, node):
        return False
    return True


# --------------------------------------------------------------- node info
@dataclass
class NodeInfo:
    """A node as the scheduler sees it: allocatable, what its pods (bound or assumed) request,
    and per-controller pod counts for spreading."""

    name: str
    node: dict[str, Any]
    allocatable: dict[str, int]
    requested: dict[str, int] = field(default_factory=dict)
    cpu_nz: int = 0
    mem_nz: int = 0
    pod_count: int = 0
    owners: dict[str, int] = field(default_factory=dict)
    pods: dict[str, tuple[PodRequests, str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, node: dict[str, Any]) -> "NodeInfo":
        return cls(node["metadata"]["name"], node, node_allocatable(node))

    def set_node(self, node: dict[str, Any]) -> None:
        self.node = node
        self.allocatable = node_allocatable(node)

    def add_pod(self, key: str, req: PodRequests, owner: str | None) -> None:
        if key in self.pods:
            self.remove_pod(key)
        self.pods[key] = (req, owner)
        add_into(self.requested, req.exact)
        self.cpu_nz += req.cpu_nz
        self.mem_nz += req.mem_nz
        self.pod_count += 1
        if owner:
            self.owners[owner] = self.owners.get(owner, 0) + 1

    def remove_pod(self, key: str) -> bool:
        ent = self.pods.pop(key, None)
        if ent is None:
            return False
        req, owner = ent
        for k, v in req.exact.items():
            self.requested[k] = self.requested.get(k, 0) - v
        self.cpu_nz -= req.cpu_nz
        self.mem_nz -= req.mem_nz
        self.pod_count -= 1
        if owner:
            n = self.owners.get(owner, 0) - 1
            if n > 0:
                self.owners[owner] = n
            else:
                self.owners.pop(owner, None)
        return True


# ---------------------------------------------------------------- filters
R_NOT_READY = "node(s) were not ready"
R_UNSCHEDULABLE = "node(s) were unschedulable"
R_NODE_NAME = "node(s) didn't match the requested node name"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_TOO_MANY_PODS = "Too many pods"


def insufficient(pod_req: PodRequests, ni: NodeInfo) -> list[str]:
    """NodeResourcesFit: every resource the pod requests must fit in allocatable minus requested."""
    out: list[str] = []
    if ni.pod_count + 1 > ni.allocatable.get(PODS, DEFAULT_MAX_PODS):
        out.append(R_TOO_MANY_PODS)
    want = {k: v for k, v in pod_req.exact.items() if k != PODS}
    out += [f"Insufficient {name}" for name in insufficient_resources(want, ni.requested, ni.allocatable)]
    return out


def filter_node(pod: dict[str, Any], pod_req: PodRequests, ni: NodeInfo) -> list[str] | None:
    """Run the filters in kube-scheduler's order; ``None`` if the pod fits on the node,
    else the reasons of the first filter that rejected it."""
    node = ni.node
    spec = pod.get("spec") or {}
    nspec = node.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    # NodeReady (kube-scheduler relies on the not-ready/unreachable NoSchedule taints; we also check
    # the condition so a node is skipped before the node-lifecycle controller has tainted it).
    if node_ready_status(node) != "True":
        return [R_NOT_READY]
    # NodeUnschedulable (tolerated by the node.kubernetes.io/unschedulable:NoSchedule toleration).
    if nspec.get("unschedulable") and not tolerates(
        tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ):
        return [R_UNSCHEDULABLE]
    # NodeName
    want = spec.get("nodeName")
    if want and want != ni.name:
        return [R_NODE_NAME]
    # TaintToleration
    taint = untolerated_taint(nspec.get("taints") or [], tolerations)
    if taint is not None:
        return [f"node(s) had untolerated taint {taint_str(taint)}"]
    # NodeAffinity (nodeSelector + required node affinity)
    if not required_affinity_matches(pod, node):
        return [R_AFFINITY]
    # NodeResourcesFit
    reasons = insufficient(pod_req, ni)
    return reasons or None


def fit_error_message(num_nodes: int, reasons: dict[str, int]) -> str:
    """kube-scheduler's FitError text: ``0/3 nodes are available: 1 node(s) were unschedulable,
    2 Insufficient cpu.`` (reason counts sorted as strings, as upstream)."""
    if num_nodes == 0:
        return "no nodes available to schedule pods"
    msg = f"0/{num_nodes} nodes are available:"
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    if parts:
        msg += " " + ", ".join(parts) + "."
    return msg


# ----------------------------------------------------------------- scores
W_LEAST_ALLOCATED, W_SPREAD, W_TAINT, W_AFFINITY = 1, 2, 3, 2


def least_allocated_score(pod_req: PodRequests, ni: NodeInfo) -> float:
    """(allocatable - requested) / allocatable for cpu and memory (non-zero requests, pod included),
    averaged, 0..100."""
    total = 0.0
    for alloc, used in (
        (ni.allocatable.get(CPU, 0), ni.cpu_nz + pod_req.cpu_nz),
        (ni.allocatable.get(MEMORY, 0), ni.mem_nz + pod_req.mem_nz),
    ):
        if alloc <= 0 or used > alloc:
            continue
        total += (alloc - used) * 100.0 / alloc
    return total / 2.0


def prefer_no_schedule_count(pod: dict[str, Any], ni: NodeInfo) -> int:
    tols = [
        t
        for t in (pod.get("spec") or {}).get("tolerations") or []
        if (t.get("effect") or "") in ("", "PreferNoSchedule")
    ]
    return sum(
        1
        for taint in (ni.node.get("spec") or {}).get("taints") or []
        if taint.get("effect") == "PreferNoSchedule" and not tolerates(tols, taint)
    )


def preferred_affinity_weight(pod: dict[str, Any], ni: NodeInfo) -> int:
    na = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    total = 0
    for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        pref = p.get("preference") or {}
        if term_matches(pref, ni.node):
            total += int(p.get("weight") or 0)
    return total


def score_nodes(pod: dict[str, Any], pod_req: PodRequests, nodes: list[NodeInfo]) -> list[float]:
    """Weighted sum of normalised plugin scores, one per node (higher is better)."""
    if not nodes:
        return []
    owner = controller_uid(pod)
    counts = [ni.owners.get(owner, 0) if owner else 0 for ni in nodes]
    max_count = max(counts)
    taint_counts = [prefer_no_schedule_count(pod, ni) for ni in nodes]
    max_taints = max(taint_counts)
    aff = [preferred_affinity_weight(pod, ni) for ni in nodes]
    max_aff = max(aff)
    out: list[float] = []
    for i, ni in enumerate(nodes):
        s = W_LEAST_ALLOCATED * least_allocated_score(pod_req, ni)
        s += W_SPREAD * (100.0 * (max_count - counts[i]) / max_count if max_count else 100.0)
        s += W_TAINT * (100.0 * (max_taints - taint_counts[i]) / max_taints if max_taints else 100.0)
        s += W_AFFINITY * (100.0 * aff[i] / max_aff if max_aff else 0.0)
        out.append(s)
    return out


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """kube-scheduler's adaptive ``percentageOfNodesToScore``: all nodes up to 100, then
    50% shrinking by 1% per 125 nodes, never under 5% (and never under 100 nodes)."""
    if num_nodes < 100 or percentage >= 100:
        return num_nodes
    pct = percentage
    if pct <= 0:
        pct = max(5, 50 - num_nodes // 125)
    return max(100, num_nodes * pct // 100)
