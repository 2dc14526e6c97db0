"""The node lifecycle controller (``pkg/controller/nodelifecycle`` with its taint
manager), driven by the timing profile.

Every ``node_monitor_period``:

- **health**: a node's kubelet is alive while its Lease in ``kube-node-lease``
  is renewed (or its Ready condition's ``lastHeartbeatTime`` moves). What
  counts is when *this controller observed* the change (no clock comparison
  across machines), and every node starts with a full grace period when the
  controller starts. Nothing observed for ``node_monitor_grace`` -> the
  node's Ready (and pressure) conditions become ``Unknown`` with reason
  ``NodeStatusUnknown``, "Kubelet stopped posting node status.", and the
  Ready condition of its pods becomes False;
- **taints** follow the Ready condition: ``node.kubernetes.io/not-ready``
  (Ready=False) or ``node.kubernetes.io/unreachable`` (Ready=Unknown), each
  as NoSchedule and NoExecute (with ``timeAdded``), removed when the node is
  Ready again; ``spec.unschedulable`` gives ``node.kubernetes.io/unschedulable:NoSchedule``;
- **eviction**: a pod on a node with NoExecute taints is deleted at once if
  it does not tolerate one of them, else when the shortest matching
  ``tolerationSeconds`` has passed since the taint was added. Pods get the
  not-ready/unreachable tolerations from the API server's admission (the
  profile's ``default_toleration_seconds``: 0 in ``demo``, evict at once; 300
  in ``kubernetes``); a pod without them counts as having them;
- **full disruption**: when every node is unhealthy, nothing is evicted
  (upstream's rule: that looks like the control plane's own network failing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..api.meta import is_deleting, meta
from ..api.nodes import node_ready_status
from ..api.pods import is_pod_terminal
from ..api.taints import matching_tolerations, min_toleration_seconds
from ..api.timestamps import parse_time, rfc3339
from ..client import LEASES, NODES, PODS, ApiError, key_of
from .base import Context, Controller

log = logging.getLogger("raykube.controllers.nodelifecycle")

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MANAGED_KEYS = (NOT_READY, UNREACHABLE, UNSCHEDULABLE)
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")


def desired_taints(node: dict[str, Any], now_str: str) -> list[dict[str, Any]]:
    """The node's taints with the controller-managed ones recomputed from its Ready condition."""
    spec = node.get("spec") or {}
    current = spec.get("taints") or []
    others = [t for t in current if t.get("key") not in MANAGED_KEYS]
    ready = node_ready_status(node)
    want: list[tuple[str, str]] = []
    if ready == "False":
        want = [(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]
    elif ready == "Unknown":
        want = [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
    if spec.get("unschedulable"):
        want.append((UNSCHEDULABLE, "NoSchedule"))
    managed = []
    for key, effect in want:
        existing = next((t for t in current if t.get("key") == key and t.get("effect") == effect), None)
        if existing is not None:
            managed.append(existing)
        else:
            t = {"key": key, "effect": effect}
            if effect == "NoExecute":
                t["timeAdded"] = now_str
            managed.append(t)
    return others + managed


def effective_tolerations(pod: dict[str, Any], default_seconds: int) -> list[dict[str, Any]]:
    """The pod's tolerations, plus the not-ready/unreachable ones with ``default_seconds`` where missing
    (pods get them at admission; one stored without them is treated as if it had them)."""
    out: list[dict[str, Any]] = []
    have = set()
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        key = t.get("key")
        if key in (NOT_READY, UNREACHABLE) and t.get("effect") in (None, "", "NoExecute"):
            have.add(key)
        out.append(t)
    for key in (NOT_READY, UNREACHABLE):
        if key not in have:
            out.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": default_seconds})
    return out


def eviction_time(pod: dict[str, Any], taints: list[dict[str, Any]], default_seconds: int) -> float | None:
    """Epoch seconds at which the pod must be evicted because of the node's NoExecute ``taints``
    (None: never; a time in the past: now)."""
    ne = [t for t in taints if t.get("effect") == "NoExecute"]
    if not ne:
        return None
    ok, used = matching_tolerations(effective_tolerations(pod, default_seconds), ne)
    if not ok:
        return 0.0
    secs = min_toleration_seconds(used)
    if secs == float("inf"):
        return None
    added = max((parse_time(t.get("timeAdded")) or 0.0) for t in ne)
    return added + secs


def node_index(pod: dict[str, Any]) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.profile = ctx.profile
        self.nodes = ctx.informers.get(NODES)
        self.leases = ctx.informers.get(LEASES)
        self.pods = ctx.informers.get(PODS)
        if "node" not in self.pods.store._index_funcs:
            self.pods.store.add_index("node", node_index)
        # node -> (lease renewTime, Ready lastHeartbeatTime) last seen, and when (monotonic)
        self._seen: dict[str, tuple[Any, Any]] = {}
        self._probe: dict[str, float] = {}
        self._marked_not_ready: set[str] = set()
        self._evicting: set[str] = set()
        self.stats = {"marked_unknown": 0, "evicted": 0, "taints_updated": 0}
        self.nodes.add_event_handler(
            lambda n: self.enqueue(meta(n)["name"]),
            lambda o, n: self._node_updated(o, n),
            lambda n: self._node_deleted(meta(n)["name"]),
        )
        self.pods.add_event_handler(self._pod_event, lambda o, n: self._pod_event(n), None)

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old is new:
            self.enqueue(meta(new)["name"])
            return
        if (old.get("spec") or {}) != (new.get("spec") or {}) or node_ready_status(old) != node_ready_status(new):
            self.enqueue(meta(new)["name"])

    def _node_deleted(self, name: str) -> None:
        for d in (self._seen, self._probe):
            d.pop(name, None)
        self._marked_not_ready.discard(name)

    def _pod_event(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or is_deleting(pod):
            return
        n = self.nodes.store.get(node)
        if n is not None and any(t.get("effect") == "NoExecute" for t in (n.get("spec") or {}).get("taints") or []):
            self.enqueue(node)

    def background(self) -> list[Any]:
        return [self._monitor()]

    # -------------------------------------------------------------- health
    def _observe(self, name: str, node: dict[str, Any], now: float) -> None:
        lease = self.leases.store.get(f"kube-node-lease/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        hb = None
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                hb = c.get("lastHeartbeatTime")
        sig = (renew, hb)
        if self._seen.get(name) != sig or name not in self._probe:
            self._seen[name] = sig
            self._probe[name] = now

    async def _monitor(self) -> None:
        period = self.profile.node_monitor_period
        while True:
            try:
                await self.monitor_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("node monitor pass failed: %r", exc)
            await self.clock.sleep(period)

    async def monitor_once(self) -> None:
        now = self.clock.now()
        grace = self.profile.node_monitor_grace
        for node in self.nodes.store.list():
            name = meta(node)["name"]
            self._observe(name, node, now)
            stale = now - self._probe[name] > grace
            if stale and node_ready_status(node) != "Unknown":
                await self._mark_unknown(node)
                continue
            have = (node.get("spec") or {}).get("taints") or []
            if node_ready_status(node) != "True" or _taint_keys(desired_taints(node, "")) != _taint_keys(have):
                self.enqueue(name)

    async def _mark_unknown(self, node: dict[str, Any]) -> None:
        name = meta(node)["name"]
        t = rfc3339()
        status = dict(node.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or []]
        types = {c.get("type") for c in conds}
        for ctype in ("Ready", *PRESSURE_CONDITIONS):
            if ctype not in types:
                if ctype != "Ready":
                    continue
                conds.append({"type": "Ready"})
        for c in conds:
            if c.get("type") in ("Ready", *PRESSURE_CONDITIONS) and c.get("status") != "Unknown":
                c.update(
                    {
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                        "lastTransitionTime": t,
                    }
                )
                c.setdefault("lastHeartbeatTime", t)
        status["conditions"] = conds
        body = {"apiVersion": "v1", "kind": "Node", "metadata": meta(node), "spec": node.get("spec"), "status": status}
        try:
            await self.client.update_status(NODES, body)
            self.stats["marked_unknown"] += 1
            log.info("node %s: no heartbeat for %.1f s; Ready=Unknown", name, self.profile.node_monitor_grace)
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady", kind="Node")
        except ApiError as exc:
            log.debug("marking %s Unknown: %s", name, exc)

    # ---------------------------------------------------------------- sync
    async def sync(self, name: str) -> None:
        node = self.nodes.store.get(name)
        if node is None:
            return
        want = desired_taints(node, rfc3339())
        have = (node.get("spec") or {}).get("taints") or []
        if _taint_keys(want) != _taint_keys(have):
            try:
                patch = {
                    "metadata": {"resourceVersion": meta(node)["resourceVersion"]},
                    "spec": {"taints": want or None},
                }
                node = await self.client.patch(NODES, name, patch)
                self.stats["taints_updated"] += 1
            except ApiError as exc:
                if exc.not_found:
                    return
                raise
        ready = node_ready_status(node)
        if ready == "True":
            self._marked_not_ready.discard(name)
        elif name not in self._marked_not_ready:
            await self._mark_pods_not_ready(name)
            self._marked_not_ready.add(name)
        await self._evict(node)

    async def _mark_pods_not_ready(self, name: str) -> None:
        t = rfc3339()
        for pod in self.pods.store.by_index("node", name):
            if is_pod_terminal(pod):
                continue
            ready = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
            if ready and ready[0].get("status") == "False":
                continue
            patch = {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "False", "lastTransitionTime": t, "reason": "NodeNotReady"}
                    ]
                }
            }
            try:
                await self.client.patch(
                    PODS,
                    meta(pod)["name"],
                    patch,
                    meta(pod).get("namespace"),
                    patch_type="strategic",
                    subresource="status",
                )
            except ApiError:
                pass

    def _full_disruption(self) -> bool:
        nodes = self.nodes.store.list()
        return bool(nodes) and all(node_ready_status(n) != "True" for n in nodes)

    async def _evict(self, node: dict[str, Any]) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("effect") == "NoExecute" for t in taints):
            return
        if self._full_disruption():
            return
        name = meta(node)["name"]
        now = time.time()
        soonest: float | None = None
        for pod in self.pods.store.by_index("node", name):
            if is_deleting(pod) or is_pod_terminal(pod):
                continue
            at = eviction_time(pod, taints, self.profile.default_toleration_seconds)
            if at is None:
                continue
            if at <= now:
                await self._evict_pod(pod)
            else:
                soonest = at if soonest is None else min(soonest, at)
        if soonest is not None:
            self.enqueue_after(name, max(0.1, soonest - now))

    async def _evict_pod(self, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        md = meta(pod)
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}", kind="Pod")
        try:
            await self.client.patch(
                PODS,
                md["name"],
                {
                    "status": {
                        "conditions": [
                            {
                                "type": "DisruptionTarget",
                                "status": "True",
                                "reason": "DeletionByTaintManager",
                                "message": "Taint manager: deleting due to NoExecute taint",
                                "lastTransitionTime": rfc3339(),
                            }
                        ]
                    }
                },
                md.get("namespace"),
                patch_type="strategic",
                subresource="status",
            )
        except ApiError:
            pass
        try:
            await self.client.delete(PODS, md["name"], md.get("namespace"), preconditions={"uid": md.get("uid")})
            self.stats["evicted"] += 1
            log.info("evicted pod %s from node %s", key, (pod.get("spec") or {}).get("nodeName"))
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise


def _taint_keys(taints: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((t.get("key", ""), t.get("value", "") or "", t.get("effect", "")) for t in taints)
