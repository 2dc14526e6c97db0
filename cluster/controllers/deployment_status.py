"""The Deployment controller's status: computing, comparing and writing it, and requeueing a stuck rollout.

``DeploymentStatusSync`` is the bottom layer of ``deployment.DeploymentController``
(``pkg/controller/deployment``'s ``syncRolloutStatus``, ``checkPausedConditions``
and ``requeueStuckDeployment``): ``_sync_status`` computes the status from the
ReplicaSets (``deployment_util.calculate_status``, plus the ``Progressing`` and
``Available`` conditions during a rollout) and writes it only when it changed;
a rollout still short of ``progressDeadlineSeconds`` is requeued for the moment
the deadline passes, so it is marked timed out even if nothing else happens.
Every status write goes through ``_write_status``, which keeps the caller's copy
at the written resourceVersion for the next write in the same sync.

Concurrency: one asyncio loop; the work queue syncs a Deployment in one worker
at a time, and each sync works on its own deep copy of the cached object.
"""

from __future__ import annotations

import time
from typing import Any

from ..api.meta import meta
from ..api.timestamps import parse_time
from ..client import DEPLOYMENTS, key_of
from . import deployment_util as du
from .base import Controller


class DeploymentStatusSync(Controller):
    async def _write_status(self, d: dict[str, Any]) -> None:
        """UpdateStatus (annotations ride along, as the status strategy allows); keeps ``d`` current."""
        res = await self.client.update_status(DEPLOYMENTS, d)
        d["metadata"]["resourceVersion"] = meta(res).get("resourceVersion")

    async def _check_paused_conditions(self, d: dict[str, Any]) -> None:
        if du.progress_deadline(d) is None:
            return
        status = d.setdefault("status", {})
        cond = du.get_cond(status, "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
            return
        paused = bool((d.get("spec") or {}).get("paused"))
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED_REASON
        if paused and not paused_cond:
            du.set_cond(status, du.new_condition("Progressing", "Unknown", du.PAUSED_REASON, "Deployment is paused"))
        elif not paused and paused_cond:
            du.set_cond(status, du.new_condition("Progressing", "Unknown", du.RESUMED_REASON, "Deployment is resumed"))
        else:
            return
        await self._write_status(d)

    async def _sync_status(
        self, d: dict[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any] | None, rollout: bool = True
    ) -> None:
        now = time.time()
        new_status = du.calculate_status(d, all_rss, new_rs, now)
        if rollout:
            du.rollout_conditions(d, new_status, new_rs, now)
        old = d.get("status") or {}
        if _status_equal(old, new_status):
            self._requeue_stuck(d, new_status, now)
            return
        d["status"] = new_status
        await self._write_status(d)
        self._requeue_stuck(d, new_status, now)

    def _requeue_stuck(self, d: dict[str, Any], status: dict[str, Any], now: float) -> None:
        deadline = du.progress_deadline(d)
        if deadline is None:
            return
        cond = du.get_cond(status, "Progressing")
        if cond is None or cond.get("reason") in (du.NEW_RS_AVAILABLE_REASON, du.TIMED_OUT_REASON):
            return
        if du.deployment_complete(d, status):
            return
        t = parse_time(cond.get("lastUpdateTime")) or now
        after = t + deadline - now
        self.enqueue_after(key_of(d), max(1.0, after + 1.0))


def _status_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(s: dict[str, Any]) -> dict[str, Any]:
        s = dict(s)
        s["conditions"] = sorted(
            ({k: v for k, v in c.items()} for c in s.get("conditions") or []), key=lambda c: c.get("type", "")
        )
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            s[k] = int(s.get(k) or 0)
        return s

    return norm(a) == norm(b)
