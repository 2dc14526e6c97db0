"""Pod garbage collection (``pkg/controller/podgc``), every ``period`` seconds:

- terminated pods (Succeeded/Failed) beyond the profile's
  ``pod_gc_terminated_threshold``: the oldest are deleted;
- pods bound to a node that no longer exists (checked with a live GET, not
  just the cache): force-deleted;
- unscheduled pods that are terminating: force-deleted;
- pods still terminating on a node that lost its kubelet (Ready=Unknown)
  ``lost_node_grace`` seconds after their deletion deadline: force-deleted,
  so a dead machine doesn't leave ``Terminating`` pods forever. Upstream
  does this only for nodes tainted ``node.kubernetes.io/out-of-service``;
  here it is on by default (``force_delete_on_lost_nodes``) since a raykube
  node that is gone is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..api.meta import meta
from ..api.nodes import node_ready_status
from ..api.pods import is_pod_terminal
from ..api.timestamps import parse_time
from ..client import NODES, PODS, ApiError, key_of
from .base import Context, Controller

log = logging.getLogger("raykube.controllers.podgc")


class PodGCController(Controller):
    name = "podgc"
    workers = 1

    def __init__(
        self, ctx: Context, period: float = 5.0, force_delete_on_lost_nodes: bool = True, lost_node_grace: float = 5.0
    ) -> None:
        super().__init__(ctx)
        self.period = period
        self.force_lost = force_delete_on_lost_nodes
        self.lost_node_grace = lost_node_grace
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.threshold = ctx.profile.pod_gc_terminated_threshold
        self.stats = {"terminated": 0, "orphaned": 0, "unscheduled_terminating": 0, "lost_node": 0}

    def background(self) -> list[Any]:
        return [self._loop()]

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep(self.period)
            try:
                await self.gc_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("pod GC pass failed: %r", exc)

    async def sync(self, key: Any) -> None:  # no work queue use
        return None

    async def gc_once(self) -> None:
        pods = self.pods.store.list()
        now = time.time()
        # 1. terminated pods over the threshold
        if self.threshold > 0:
            terminated = [p for p in pods if is_pod_terminal(p)]
            excess = len(terminated) - self.threshold
            if excess > 0:
                terminated.sort(key=lambda p: parse_time(meta(p).get("creationTimestamp")) or 0.0)
                for p in terminated[:excess]:
                    if await self._force_delete(p, grace=None):
                        self.stats["terminated"] += 1
        # 2. orphaned pods, 3. unscheduled terminating, 4. terminating on lost nodes
        missing_checked: dict[str, bool] = {}
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            md = meta(p)
            if not node:
                if md.get("deletionTimestamp"):
                    if await self._force_delete(p):
                        self.stats["unscheduled_terminating"] += 1
                continue
            n = self.nodes.store.get(node)
            if n is None:
                if node not in missing_checked:
                    missing_checked[node] = await self._node_missing(node)
                if missing_checked[node] and await self._force_delete(p):
                    self.stats["orphaned"] += 1
                    log.info("deleted pod %s bound to missing node %s", key_of(p), node)
                continue
            if self.force_lost and md.get("deletionTimestamp") and node_ready_status(n) == "Unknown":
                deadline = parse_time(md.get("deletionTimestamp")) or now
                if now > deadline + self.lost_node_grace:
                    if await self._force_delete(p):
                        self.stats["lost_node"] += 1
                        log.info("force-deleted pod %s terminating on lost node %s", key_of(p), node)

    async def _node_missing(self, name: str) -> bool:
        try:
            await self.client.get(NODES, name)
            return False
        except ApiError as exc:
            return exc.not_found

    async def _force_delete(self, pod: dict[str, Any], grace: int | None = 0) -> bool:
        md = meta(pod)
        try:
            await self.client.delete(
                PODS, md["name"], md.get("namespace"), grace_period_seconds=grace, preconditions={"uid": md.get("uid")}
            )
            return True
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return False
            raise
