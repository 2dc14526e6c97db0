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
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from ..api.meta import controller_ref, is_deleting, meta, owner_ref_for, uid_of
from ..api.selectors import label_selector_matches
from ..api.timestamps import parse_time
from ..client import DEPLOYMENTS, PODS, REPLICASETS, ApiError, key_of
from . import deployment_util as du
from .base import Context, Controller

log = logging.getLogger("raykube.controllers.deployment")


class DeploymentController(Controller):
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

    # ----------------------------------------------------- new ReplicaSet
    async def _get_all(
        self, d: dict[str, Any], rss: list[dict[str, Any]], create: bool
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``."""
        existing = du.find_new_rs(d, rss)
        old_rss = du.find_old_rss(existing, rss)
        new_revision = du.max_revision(old_rss) + 1
        status = d.setdefault("status", {})
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_rs_annotations(d, rs, new_revision, True)
            mrs = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if changed or int((rs.get("spec") or {}).get("minReadySeconds") or 0) != mrs:
                rs["spec"]["minReadySeconds"] = mrs
                rs = await self.client.update(REPLICASETS, rs)
            needs = self._set_revision(d, du.annotations_of(rs).get(du.REVISION, ""))
            if du.progress_deadline(d) is not None and du.get_cond(status, "Progressing") is None:
                du.set_cond(
                    status,
                    du.new_condition(
                        "Progressing", "True", du.FOUND_NEW_RS_REASON, f'Found new replica set "{meta(rs)["name"]}"'
                    ),
                )
                needs = True
            if needs:
                await self._write_status(d)
            return rs, old_rss
        if not create:
            return None, old_rss
        tmpl = copy.deepcopy((d.get("spec") or {}).get("template") or {})
        h = du.compute_hash(tmpl, status.get("collisionCount"))
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = h
        sel = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        sel.setdefault("matchLabels", {})[du.HASH_LABEL] = h
        ns = meta(d).get("namespace")
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta(d)['name']}-{h}",
                "namespace": ns,
                "ownerReferences": [owner_ref_for(d, DEPLOYMENTS)],
                "labels": dict(tmpl["metadata"]["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int((d.get("spec") or {}).get("minReadySeconds") or 0),
                "selector": sel,
                "template": tmpl,
            },
        }
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, [*old_rss, rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, False)
        already = False
        try:
            created = await self.client.create(REPLICASETS, rs, ns)
        except ApiError as exc:
            if not exc.already_exists:
                if du.progress_deadline(d) is not None:
                    du.set_cond(
                        status,
                        du.new_condition(
                            "Progressing",
                            "False",
                            du.FAILED_RS_CREATE_REASON,
                            f'Failed to create new replica set "{rs["metadata"]["name"]}": {exc.message}',
                        ),
                    )
                    await self._write_status(d)
                raise
            already = True
            try:
                created = await self.client.get(REPLICASETS, rs["metadata"]["name"], ns)
            except ApiError:
                raise exc from None
            ref = controller_ref(created)
            if not (
                ref
                and ref.get("uid") == uid_of(d)
                and du.equal_ignore_hash(
                    (d.get("spec") or {}).get("template"), (created.get("spec") or {}).get("template")
                )
            ):
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self._write_status(d)
                raise RuntimeError(
                    f"hash collision for {rs['metadata']['name']}; collisionCount now {status['collisionCount']}"
                )
        if not already and du.replicas(created) > 0:
            self.recorder.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {meta(created)['name']} from 0 to {du.replicas(created)}",
                kind="Deployment",
            )
        needs = self._set_revision(d, str(new_revision))
        if not already and du.progress_deadline(d) is not None:
            du.set_cond(
                status,
                du.new_condition(
                    "Progressing", "True", du.NEW_RS_REASON, f'Created new replica set "{meta(created)["name"]}"'
                ),
            )
            needs = True
        if needs:
            await self._write_status(d)
        return created, old_rss

    @staticmethod
    def _set_revision(d: dict[str, Any], rev: str) -> bool:
        """``SetDeploymentRevision``: the Deployment shows its new ReplicaSet's revision."""
        ann = d.setdefault("metadata", {}).setdefault("annotations", {})
        if not rev or ann.get(du.REVISION) == rev:
            return False
        ann[du.REVISION] = rev
        return True

    # ------------------------------------------------------------ writes
    async def _write_status(self, d: dict[str, Any]) -> None:
        """UpdateStatus (annotations ride along, as the status strategy allows); keeps ``d`` current."""
        res = await self.client.update_status(DEPLOYMENTS, d)
        d["metadata"]["resourceVersion"] = meta(res).get("resourceVersion")

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

    # ---------------------------------------------------------- strategies
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

    async def _cleanup(self, d: dict[str, Any], old_rss: list[dict[str, Any]]) -> None:
        for rs in du.cleanup_victims(d, old_rss):
            try:
                await self.client.delete(
                    REPLICASETS, meta(rs)["name"], meta(rs).get("namespace"), preconditions={"uid": uid_of(rs)}
                )
            except ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise

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

    async def _sync_status_only(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = await self._get_all(d, rss, False)
        await self._sync_status(d, [*old_rss, *([new_rs] if new_rs else [])], new_rs, rollout=False)

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
