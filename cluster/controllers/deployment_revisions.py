"""The Deployment controller's ReplicaSet history: finding or creating the new ReplicaSet, revisions, cleanup.

``DeploymentRevisions`` is a layer of ``deployment.DeploymentController``
(``getAllReplicaSetsAndSyncRevision`` and ``cleanupDeployment`` upstream):
``_get_all`` splits the claimed ReplicaSets into the new one (whose template
matches the Deployment's, hash label aside) and the old ones, creates the new
one if asked - ``<name>-<pod-template-hash>``, revision = max old revision + 1,
a hash collision bumping ``status.collisionCount`` - or moves an existing one's
revision up (a rollback reuses the old ReplicaSet and keeps its
``revision-history``), and shows that revision on the Deployment;
``_cleanup`` deletes old ReplicaSets beyond ``revisionHistoryLimit``.

Concurrency: as ``DeploymentStatusSync`` - one worker per Deployment at a time;
ReplicaSet writes carry the cached resourceVersion (or a UID precondition), so
a decision made on a stale cache fails with 409 and is retried.
"""

from __future__ import annotations

import copy
from typing import Any

from ..api.meta import controller_ref, meta, owner_ref_for, uid_of
from ..client import DEPLOYMENTS, REPLICASETS, ApiError
from . import deployment_util as du
from .deployment_status import DeploymentStatusSync


class DeploymentRevisions(DeploymentStatusSync):
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

    async def _cleanup(self, d: dict[str, Any], old_rss: list[dict[str, Any]]) -> None:
        for rs in du.cleanup_victims(d, old_rss):
            try:
                await self.client.delete(
                    REPLICASETS, meta(rs)["name"], meta(rs).get("namespace"), preconditions={"uid": uid_of(rs)}
                )
            except ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise
