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

import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Iterable

# ----------------------------------------------------------------- quantities
_BIN = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DEC = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QRE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")

CPU, MEMORY, PODS, EPHEMERAL = "cpu", "memory", "pods", "ephemeral-storage"
DEFAULT_MILLI_CPU_REQUEST = 100          # kube-scheduler's non-zero defaults, for scoring only
DEFAULT_MEMORY_REQUEST = 200 * 2 ** 20
DEFAULT_MAX_PODS = 110


def parse_quantity(q: Any) -> Decimal:
    """A Kubernetes quantity (``500m``, ``1Gi``, ``2``, ``1e3``) as a Decimal; ValueError if malformed."""
    if isinstance(q, bool):
        raise ValueError(f"bad quantity {q!r}")
    if isinstance(q, (int, float)):
        return Decimal(str(q))
    s = str(q).strip()
    m = _QRE.match(s)
    if not m:
        raise ValueError(f"bad quantity {q!r}")
    num, suf = m.group(1), m.group(2)
    try:
        base = Decimal(num)
    except InvalidOperation:
        raise ValueError(f"bad quantity {q!r}") from None
    if suf in _BIN:
        return base * _BIN[suf]
    if suf in _DEC:
        return base.scaleb(_DEC[suf])
    if suf[:1] in ("e", "E"):
        return base.scaleb(int(suf[1:]))
    raise ValueError(f"bad quantity {q!r}")


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


def _add(a: dict[str, int], b: dict[str, int]) -> None:
    for k, v in b.items():
        a[k] = a.get(k, 0) + v


def _max_into(a: dict[str, int], b: dict[str, int]) -> None:
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
        _add(total, req)
        cpu_nz += req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST
        mem_nz += req.get(MEMORY) or DEFAULT_MEMORY_REQUEST
    for c in spec.get("initContainers") or []:
        req = resource_list((c.get("resources") or {}).get("requests"))
        _max_into(total, req)
        cpu_nz = max(cpu_nz, req.get(CPU) or 0)
        mem_nz = max(mem_nz, req.get(MEMORY) or 0)
    overhead = resource_list(spec.get("overhead"))
    _add(total, overhead)
    cpu_nz += overhead.get(CPU, 0)
    mem_nz += overhead.get(MEMORY, 0)
    total = {k: v for k, v in total.items() if v}
    return PodRequests(total, cpu_nz, mem_nz)


def node_allocatable(node: dict[str, Any]) -> dict[str, int]:
    st = node.get("status") or {}
    alloc = resource_list(st.get("allocatable") or st.get("capacity"))
    alloc.setdefault(PODS, DEFAULT_MAX_PODS)
    return alloc


# ------------------------------------------------------------------- owners
def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controller_uid(obj: dict[str, Any]) -> str | None:
    ref = controller_ref(obj)
    return ref.get("uid") if ref else None


# ------------------------------------------------------- taints / tolerations
def toleration_tolerates(tol: dict[str, Any], taint: dict[str, Any]) -> bool:
    """core/v1 ``Toleration.ToleratesTaint``: effect (empty = all), key (empty = all, needs Exists),
    operator Equal (default; values must match) or Exists."""
    eff = tol.get("effect") or ""
    if eff and eff != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def untolerated_taint(taints: Iterable[dict[str, Any]], tolerations: list[dict[str, Any]],
                      effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> dict[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates (None: all tolerated)."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def matching_tolerations(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]
                         ) -> tuple[bool, list[dict[str, Any]]]:
    """(all taints tolerated, the tolerations used) - ``GetMatchingTolerations`` of the taint manager."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        found = False
        for tol in tolerations:
            if toleration_tolerates(tol, taint):
                used.append(tol)
                found = True
                break
        if not found:
            return False, []
    return True, used


def min_toleration_seconds(tolerations: list[dict[str, Any]]) -> float:
    """Shortest ``tolerationSeconds`` among ``tolerations`` (inf when none is bounded; <0 counts as 0)."""
    best = math.inf
    for t in tolerations:
        s = t.get("tolerationSeconds")
        if s is None:
            continue
        best = min(best, max(0.0, float(s)))
    return best


def taint_str(taint: dict[str, Any]) -> str:
    return f"{{{taint.get('key', '')}: {taint.get('value', '') or ''}}}"


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
    na = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None and not node_selector_matches(req, node):
        return False
    return True


# ------------------------------------------------------------------ nodes
def node_condition(node: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def node_ready_status(node: dict[str, Any]) -> str:
    """``True``, ``False``, ``Unknown``, or ``""`` when the node has no Ready condition."""
    c = node_condition(node, "Ready")
    return str(c.get("status") or "Unknown") if c else ""


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
        _add(self.requested, req.exact)
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
    for name, want in pod_req.exact.items():
        if name == PODS:
            continue
        alloc = ni.allocatable.get(name)
        if alloc is None:
            if name == EPHEMERAL:
                continue  # nodes that don't report ephemeral storage don't limit it
            alloc = 0
        if want > alloc - ni.requested.get(name, 0):
            out.append(f"Insufficient {name}")
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
    if nspec.get("unschedulable") and not tolerates(tolerations, {"key": "node.kubernetes.io/unschedulable",
                                                                   "effect": "NoSchedule"}):
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
    for alloc, used in ((ni.allocatable.get(CPU, 0), ni.cpu_nz + pod_req.cpu_nz),
                        (ni.allocatable.get(MEMORY, 0), ni.mem_nz + pod_req.mem_nz)):
        if alloc <= 0 or used > alloc:
            continue
        total += (alloc - used) * 100.0 / alloc
    return total / 2.0


def prefer_no_schedule_count(pod: dict[str, Any], ni: NodeInfo) -> int:
    tols = [t for t in (pod.get("spec") or {}).get("tolerations") or []
            if (t.get("effect") or "") in ("", "PreferNoSchedule")]
    return sum(1 for taint in (ni.node.get("spec") or {}).get("taints") or []
               if taint.get("effect") == "PreferNoSchedule" and not tolerates(tols, taint))


def preferred_affinity_weight(pod: dict[str, Any], ni: NodeInfo) -> int:
    na = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
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
