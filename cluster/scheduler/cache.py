"""The scheduler's cache: per-node capacity and what is already placed there.

Pods count against a node from the moment the scheduler *assumes* them on it
(before the binding is even sent) until they are deleted or terminate, so
pods scheduled in quick succession never overcommit a node while the watch
catches up (kube-scheduler's ``internal/cache``):

- ``assume(pod, node)``: counted at once; ``finish_binding`` starts the
  assumed pod's TTL (an assumed pod never confirmed by the watch within
  ``assume_ttl`` after its binding returned is dropped by ``cleanup``);
- ``forget``: the binding failed, stop counting it;
- ``add_or_update_pod``: the watch shows the pod bound (confirms an assumed
  pod; a terminated pod stops counting); ``remove_pod``: it is gone.

Concurrency: asyncio-only, no locks; the caller is the scheduler's loop.
"""

from __future__ import annotations

from typing import Any

from ..api.meta import controller_uid
from ..api.resources import PodRequests, pod_requests
from ..client.clock import REAL_CLOCK, Clock
from ..client.resources import key_of
from .predicates import NodeInfo


class SchedulerCache:
    def __init__(self, clock: Clock = REAL_CLOCK, assume_ttl: float = 30.0) -> None:
        self.clock = clock
        self.assume_ttl = assume_ttl
        self.nodes: dict[str, NodeInfo] = {}  # includes placeholder entries (node not seen yet)
        self._real: dict[str, None] = {}  # names of nodes we have a Node object for (ordered)
        self.pod_node: dict[str, str] = {}
        self.assumed: dict[str, float | None] = {}  # key -> expiry (None while the binding is in flight)
        self.generation = 0  # bumped on every change (snapshots are cheap to reuse)

    # --------------------------------------------------------------- nodes
    def add_or_update_node(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            self.nodes[name] = NodeInfo.of(node)
        else:
            ni.set_node(node)
        self._real[name] = None
        self.generation += 1

    def remove_node(self, name: str) -> None:
        self._real.pop(name, None)
        ni = self.nodes.get(name)
        if ni is not None and not ni.pods:
            del self.nodes[name]
        elif ni is not None:
            ni.node = {}
        self.generation += 1

    def node_infos(self) -> list[NodeInfo]:
        """Nodes with a Node object, in a stable order."""
        return [self.nodes[n] for n in self._real]

    @property
    def num_nodes(self) -> int:
        return len(self._real)

    # ---------------------------------------------------------------- pods
    def _place(self, key: str, node: str, req: PodRequests, owner: str | None) -> None:
        cur = self.pod_node.get(key)
        if cur is not None and cur != node:
            self._unplace(key)
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(node, {}, {})
        ni.add_pod(key, req, owner)
        self.pod_node[key] = node
        self.generation += 1

    def _unplace(self, key: str) -> None:
        node = self.pod_node.pop(key, None)
        if node is None:
            return
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(key)
            if not ni.pods and node not in self._real:
                del self.nodes[node]
        self.generation += 1

    def assume(self, pod: dict[str, Any], node: str, req: PodRequests | None = None) -> None:
        key = key_of(pod)
        self._place(key, node, req or pod_requests(pod), controller_uid(pod))
        self.assumed[key] = None

    def finish_binding(self, key: str) -> None:
        if key in self.assumed:
            self.assumed[key] = self.clock.now() + self.assume_ttl

    def forget(self, key: str) -> None:
        if self.assumed.pop(key, "absent") != "absent":
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def add_or_update_pod(self, pod: dict[str, Any]) -> None:
        """A pod from the watch. Bound and not terminated: counted on its node (confirming an
        assumed pod); otherwise not counted."""
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node or phase in ("Succeeded", "Failed"):
            if node:
                self.assumed.pop(key, None)
                self._unplace(key)
            return
        self.assumed.pop(key, None)
        if self.pod_node.get(key) == node:
            return  # requests of a bound pod don't change (in-place resize is not supported)
        self._place(key, node, pod_requests(pod), controller_uid(pod))

    def remove_pod(self, key: str) -> None:
        self.assumed.pop(key, None)
        self._unplace(key)

    def cleanup(self) -> list[str]:
        """Drop assumed pods whose binding finished more than ``assume_ttl`` ago without the watch
        confirming them; returns their keys."""
        now = self.clock.now()
        expired = [k for k, exp in self.assumed.items() if exp is not None and exp < now]
        for k in expired:
            self.forget(k)
        return expired
