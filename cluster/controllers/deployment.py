"""The Deployment controller (``pkg/controller/deployment``).

Per Deployment (level-triggered, from the informer caches):

1. claim ReplicaSets (adopt matching orphans, release non-matching ones);
2. deleted -> status only; paused -> only scaling, Progressing=Unknown;
3. a replicas change with a rollout in flight -> proportional scaling;
4. otherwise roll out: **RollingUpdate** (one step per sync: scale the new
   ReplicaSet up within ``maxSurge``, else old ones down within
   ``maxUnavailable``) or **Recreate** (old ones to 0, wait until their pods
   are gone, then the new one up);
5. find or create the new ReplicaSet: ``<name>-<pod-template-hash>`` with the
   hash label in its template and selector, controller ownerReference,
   ``deployment.kubernetes.io/revision`` = max old revision + 1 (a rollback
   reuses the old ReplicaSet and moves its revision up, keeping
   ``revision-history``), the Deployment's annotations copied;
6. when complete, delete old ReplicaSets beyond ``revisionHistoryLimit``;
7. write status: observedGeneration, replicas, updatedReplicas,
   readyReplicas, availableReplicas, unavailableReplicas, and the
   ``Available`` and ``Progressing`` conditions that ``kubectl rollout status``
   reads (with ``progressDeadlineSeconds``).

All ReplicaSet writes carry the cached resourceVersion, so a decision made on
a stale cache fails with 409 and is simply retried on fresh data.

``kubectl rollout undo`` needs nothing special: kubectl copies the old
ReplicaSet's template (minus the hash label) and annotations into the
Deployment, and step 5 finds that ReplicaSet again.

This module is the controller's shell - informer handlers, ``sync`` (the
steps above, in order) and claiming (step 1) - on three layers, each a base
class in a module of its own: ``deployment_rollout`` (steps 3 and 4),
``deployment_revisions`` (steps 5 and 6) and ``deployment_status`` (step 7);
the decisions are ``deployment_util``'s pure functions.

Concurrency: one asyncio loop, ``workers`` (4) coroutines; the work queue
syncs a Deployment in one worker at a time, on a deep copy of the cached object.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..api.meta import controller_ref, is_deleting, meta, owner_ref_for, uid_of
from ..api.selectors import label_selector_matches
from ..client import DEPLOYMENTS, PODS, REPLICASETS, ApiError, key_of
from . import deployment_util as du
from .base import Context
from .deployment_rollout import DeploymentRollout

log = logging.getLogger("raykube.controllers.deployment")


class DeploymentController(DeploymentRollout):
    name = "deployment"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.d_informer = ctx.informers.get(DEPLOYMENTS)
        self.rs_informer = ctx.informers.get(REPLICASETS)
        self.pod_informer = ctx.informers.get(PODS)
        from .replicaset import owner_index

        if "owner" not in self.pod_informer.store._index_funcs:
            self.pod_informer.store.add_index("owner", owner_index)
        self.d_informer.add_event_handler(
            lambda o: self.enqueue(key_of(o)),
            lambda old, new: self.enqueue(key_of(new)),
            lambda o: self.enqueue(key_of(o)),
        )
        self.rs_informer.add_event_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_informer.add_event_handler(None, None, self._pod_deleted)

    # ------------------------------------------------------------ handlers
    def _owner_key(self, rs: dict[str, Any]) -> str | None:
        ref = controller_ref(rs)
        if not ref or ref.get("kind") != "Deployment":
            return None
        key = f"{meta(rs).get('namespace')}/{ref.get('name')}"
        d = self.d_informer.store.get(key)
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return key

    def _matching(self, rs: dict[str, Any]) -> list[str]:
        labels = meta(rs).get("labels") or {}
        return [
            key_of(d)
            for d in self.d_informer.store.by_index("namespace", meta(rs).get("namespace", ""))
            if label_selector_matches((d.get("spec") or {}).get("selector"), labels)
        ]

    def _rs_added(self, rs: dict[str, Any]) -> None:
        key = self._owner_key(rs)
        if key:
            self.enqueue(key)
        elif controller_ref(rs) is None:
            for k in self._matching(rs):
                self.enqueue(k)

    def _rs_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        okey, nkey = self._owner_key(old), self._owner_key(new)
        if okey and okey != nkey:
            self.enqueue(okey)
        if nkey:
            self.enqueue(nkey)
        elif controller_ref(new) is None:
            for k in self._matching(new):
                self.enqueue(k)

    def _rs_deleted(self, rs: dict[str, Any]) -> None:
        key = self._owner_key(rs)
        if key:
            self.enqueue(key)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.store.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is None:
            return
        key = self._owner_key(rs)
        if key:
            d = self.d_informer.store.get(key)
            if d is not None and not du.is_rolling(d):
                self.enqueue(key)  # Recreate waits for old pods to be gone

    # ---------------------------------------------------------------- sync
    async def sync(self, key: str) -> None:
        d0 = self.d_informer.store.get(key)
        if d0 is None:
            return
        d = copy.deepcopy(d0)
        spec = d.get("spec") or {}
        sel = spec.get("selector")
        if not sel or not ((sel.get("matchLabels") or {}) or (sel.get("matchExpressions") or [])):
            self.recorder.event(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
                kind="Deployment",
            )
            if int(meta(d).get("generation") or 1) > int((d.get("status") or {}).get("observedGeneration") or 0):
                d.setdefault("status", {})["observedGeneration"] = meta(d).get("generation")
                await self._write_status(d)
            return
        rss = await self._claim_replicasets(d)
        if is_deleting(d):
            await self._sync_status_only(d, rss)
            return
        await self._check_paused_conditions(d)
        if spec.get("paused"):
            await self._sync_scale(d, rss)
            return
        new_rs = du.find_new_rs(d, rss)
        old_rss = du.find_old_rss(new_rs, rss)
        if du.is_scaling_event(d, new_rs, old_rss):
            await self._sync_scale(d, rss)
            return
        if du.is_rolling(d):
            await self._rollout_rolling(d, rss)
        else:
            await self._rollout_recreate(d, rss)

    # ------------------------------------------------------------ claiming
    async def _claim_replicasets(self, d: dict[str, Any]) -> list[dict[str, Any]]:
        ns = meta(d).get("namespace", "")
        uid = uid_of(d)
        sel = (d.get("spec") or {}).get("selector")
        out: list[dict[str, Any]] = []
        for rs in self.rs_informer.store.by_index("namespace", ns):
            ref = controller_ref(rs)
            matches = label_selector_matches(sel, meta(rs).get("labels") or {})
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    out.append(rs)
                elif not is_deleting(d):
                    refs = [r for r in meta(rs).get("ownerReferences") or [] if r.get("uid") != uid]
                    await self._patch_refs(rs, refs)
                continue
            if not matches or is_deleting(d) or is_deleting(rs):
                continue
            try:
                fresh = await self.client.get(DEPLOYMENTS, meta(d)["name"], ns)
            except ApiError:
                continue
            if uid_of(fresh) != uid or is_deleting(fresh):
                continue
            refs = list(meta(rs).get("ownerReferences") or []) + [owner_ref_for(d, DEPLOYMENTS)]
            if await self._patch_refs(rs, refs):
                out.append(rs)
        return out

    async def _patch_refs(self, rs: dict[str, Any], refs: list[dict[str, Any]]) -> bool:
        try:
            await self.client.patch(
                REPLICASETS,
                meta(rs)["name"],
                {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(rs)["resourceVersion"]}},
                meta(rs).get("namespace"),
            )
            return True
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return False
            raise
