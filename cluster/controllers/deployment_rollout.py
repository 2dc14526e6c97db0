"""The Deployment controller's rollout actions: scaling ReplicaSets and the two strategies.

``DeploymentRollout`` is a layer of ``deployment.DeploymentController``
(``rolling.go``, ``recreate.go`` and ``sync.go``'s ``scale``): it carries out one
step per sync - **RollingUpdate** scales the new ReplicaSet up within
``maxSurge``, else old ones down within ``maxUnavailable``; **Recreate** scales
old ones to 0, waits until their pods are gone, then the new one up; a replicas
change during a rollout (or a paused Deployment) is spread proportionally - and
then syncs the status. The plans themselves are ``deployment_util``'s pure
functions; this layer only writes them (``_scale_rs``: replicas and the
desired/max-replicas annotations, with a ``ScalingReplicaSet`` event).

Concurrency: as ``DeploymentStatusSync`` - one worker per Deployment at a time;
it reads the ReplicaSet and pod informer caches between awaits.
"""

from __future__ import annotations

import copy
from typing import Any

from ..api.meta import meta, uid_of
from ..client import REPLICASETS, Informer, key_of
from . import deployment_util as du
from .deployment_revisions import DeploymentRevisions


class DeploymentRollout(DeploymentRevisions):
    # set by DeploymentController.__init__
    rs_informer: Informer
    pod_informer: Informer

    async def _scale_rs(self, d: dict[str, Any], rs: dict[str, Any], new_size: int, op: str) -> dict[str, Any]:
        cur = du.replicas(rs)
        rs2 = copy.deepcopy(rs)
        size_changed = cur != new_size
        ann_changed = du.set_replicas_annotations(rs2, du.replicas(d), du.replicas(d) + du.max_surge(d))
        if not size_changed and not ann_changed:
            return rs
        rs2["spec"]["replicas"] = new_size
        out = await self.client.update(REPLICASETS, rs2)
        if size_changed:
            what = op or ("up" if new_size > cur else "down")
            self.recorder.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {what} replica set {meta(rs)['name']} from {cur} to {new_size}",
                kind="Deployment",
            )
        return out

    async def _apply_plan(
        self, d: dict[str, Any], rss: list[dict[str, Any]], plan: dict[str, int], op: str = ""
    ) -> bool:
        by_name = {du.name(rs): rs for rs in rss}
        scaled = False
        for n, size in plan.items():
            rs = by_name.get(n)
            if rs is None:
                continue
            if du.replicas(rs) != size or du.desired_annotation(rs) != du.replicas(d):
                await self._scale_rs(d, rs, size, op)
                scaled = scaled or du.replicas(rs) != size
        return scaled

    async def _sync_scale(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = await self._get_all(d, rss, False)
        plan = du.scale_plan(d, new_rs, old_rss)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        await self._apply_plan(d, all_rss, plan)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs, rollout=False)

    async def _rollout_rolling(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = await self._get_all(d, rss, True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        target = du.reconcile_new_rs(d, all_rss, new_rs)
        if target is not None:
            new_rs = await self._scale_rs(d, new_rs, target, "")
            await self._sync_status(d, [*old_rss, new_rs], new_rs)
            return
        # Don't scale old ReplicaSets down on a status the ReplicaSet controller hasn't caught up with.
        if any(
            int(meta(rs).get("generation") or 1) > du.st(rs, "observedGeneration")
            for rs in all_rss
            if du.replicas(rs) > 0 or du.st(rs, "replicas") > 0
        ):
            await self._sync_status(d, all_rss, new_rs)
            return
        plan = du.reconcile_old_rss(d, all_rss, old_rss, new_rs)
        if plan and await self._apply_plan(d, all_rss, plan):
            fresh = [self.rs_informer.store.get(key_of(rs)) or rs for rs in all_rss]
            await self._sync_status(d, fresh, new_rs)
            return
        status = du.calculate_status(d, all_rss, new_rs)
        if du.deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs)

    async def _rollout_recreate(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = await self._get_all(d, rss, False)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        active_old = du.filter_active(old_rss)
        if active_old:
            await self._apply_plan(d, all_rss, {du.name(rs): 0 for rs in active_old})
            await self._sync_status(d, all_rss, new_rs)
            return
        if self._old_pods_running(new_rs, old_rss):
            await self._sync_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._get_all(d, rss, True)
            assert new_rs is not None
            all_rss = [*old_rss, new_rs]
        if du.replicas(new_rs) != du.replicas(d):
            new_rs = await self._scale_rs(d, new_rs, du.replicas(d), "up")
            all_rss = [*old_rss, new_rs]
        status = du.calculate_status(d, all_rss, new_rs)
        if du.deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs)

    def _old_pods_running(self, new_rs: dict[str, Any] | None, old_rss: list[dict[str, Any]]) -> bool:
        if any(du.st(rs, "replicas") > 0 for rs in old_rss):
            return True
        for rs in old_rss:
            for p in self.pod_informer.store.by_index("owner", uid_of(rs)):
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    async def _sync_status_only(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = await self._get_all(d, rss, False)
        await self._sync_status(d, [*old_rss, *([new_rs] if new_rs else [])], new_rs, rollout=False)
