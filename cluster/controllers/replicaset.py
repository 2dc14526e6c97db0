"""The ReplicaSet controller (``pkg/controller/replicaset``).

For each ReplicaSet: claim the pods of its namespace (adopt orphans its
selector matches, release its pods the selector no longer matches), then -
unless its expectations are still pending - create pods from the template
(``generateName``, controller ownerReference with ``blockOwnerDeletion``, in
slow-start batches 1, 2, 4, ...) or delete the surplus (unscheduled before
scheduled, pending before running, not ready before ready, pods on crowded
nodes first, ready for less time first, more restarts first, newer first),
and finally write ``status`` (replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas with ``minReadySeconds``, observedGeneration).

A ReplicaSet being deleted is left alone (only its status is kept up to
date): the garbage collector handles its pods.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from functools import cmp_to_key
from typing import Any

from ..api.meta import controller_ref, is_deleting, meta, owner_ref_for, uid_of
from ..api.pods import is_pod_active, is_pod_available, is_pod_ready, pod_ready_condition, restart_count
from ..api.selectors import label_selector_matches
from ..api.timestamps import parse_time
from ..client import PODS, REPLICASETS, ApiError, UnknownOutcome, key_of
from .base import Context, Controller
from .expectations import Expectations

log = logging.getLogger("raykube.controllers.replicaset")

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
UNKNOWN_OUTCOME_WAIT = 10.0


def owner_index(obj: dict[str, Any]) -> list[str]:
    ref = controller_ref(obj)
    return [str(ref.get("uid"))] if ref and ref.get("uid") else []


def pod_from_template(rs: dict[str, Any], owner_ref: dict[str, Any]) -> dict[str, Any]:
    tmpl = (rs.get("spec") or {}).get("template") or {}
    tmd = tmpl.get("metadata") or {}
    name = meta(rs)["name"]
    prefix = f"{name}-"
    if len(prefix) > 58:
        prefix = prefix[:58]
    md: dict[str, Any] = {
        "generateName": prefix,
        "namespace": meta(rs).get("namespace"),
        "labels": dict(tmd.get("labels") or {}),
        "ownerReferences": [owner_ref],
    }
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(tmpl.get("spec") or {})}


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _ready_since(pod: dict[str, Any]) -> float:
    c = pod_ready_condition(pod)
    return parse_time(c.get("lastTransitionTime") if c else None) or 0.0


def deletion_order(pods: list[dict[str, Any]], ranks: dict[str, int]) -> list[dict[str, Any]]:
    """Pods sorted so that the ones to delete first come first (``ActivePodsWithRanks``)."""

    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        na, nb = bool((a.get("spec") or {}).get("nodeName")), bool((b.get("spec") or {}).get("nodeName"))
        if na != nb:
            return -1 if not na else 1
        pa = _PHASE_RANK.get((a.get("status") or {}).get("phase", "Pending"), 0)
        pb = _PHASE_RANK.get((b.get("status") or {}).get("phase", "Pending"), 0)
        if pa != pb:
            return -1 if pa < pb else 1
        ra, rb = is_pod_ready(a), is_pod_ready(b)
        if ra != rb:
            return -1 if not ra else 1
        ka, kb = ranks.get(key_of(a), 0), ranks.get(key_of(b), 0)
        if ka != kb:
            return -1 if ka > kb else 1
        if ra and rb:
            ta, tb = _ready_since(a), _ready_since(b)
            if ta != tb:
                return -1 if ta > tb else 1
        ca, cb = restart_count(a), restart_count(b)
        if ca != cb:
            return -1 if ca > cb else 1
        ta = parse_time(meta(a).get("creationTimestamp")) or 0.0
        tb = parse_time(meta(b).get("creationTimestamp")) or 0.0
        if ta != tb:
            return -1 if ta > tb else 1
        return -1 if meta(a).get("name", "") > meta(b).get("name", "") else 1

    return sorted(pods, key=cmp_to_key(cmp))


def pods_to_delete(pods: list[dict[str, Any]], related: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` pods to delete; ``related`` (pods of sibling ReplicaSets too) rank pods by how many
    related pods share their node."""
    per_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            per_node[node] = per_node.get(node, 0) + 1
    ranks = {key_of(p): per_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods}
    return deletion_order(pods, ranks)[:n]


def calculate_status(rs: dict[str, Any], pods: list[dict[str, Any]], now: float) -> dict[str, Any]:
    spec = rs.get("spec") or {}
    tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    mrs = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for p in pods:
        labels = meta(p).get("labels") or {}
        if all(labels.get(k) == v for k, v in tmpl_labels.items()):
            fully += 1
        if is_pod_ready(p):
            ready += 1
            if is_pod_available(p, mrs, now):
                available += 1
    st = dict(rs.get("status") or {})
    st.update(
        {
            "replicas": len(pods),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": meta(rs).get("generation", 1),
        }
    )
    return st


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rs_informer = ctx.informers.get(REPLICASETS)
        self.pod_informer = ctx.informers.get(PODS)
        if "owner" not in self.pod_informer.store._index_funcs:
            self.pod_informer.store.add_index("owner", owner_index)
        self.expectations = Expectations(ctx.clock)
        self.rs_informer.add_event_handler(
            lambda o: self.enqueue(key_of(o)), lambda old, new: self.enqueue(key_of(new)), self._rs_deleted
        )
        self.pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ------------------------------------------------------------ handlers
    def _rs_deleted(self, rs: dict[str, Any]) -> None:
        self.expectations.delete(key_of(rs))

    def _owner_key(self, pod: dict[str, Any]) -> str | None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return None
        key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
        rs = self.rs_informer.store.get(key)
        if rs is None or uid_of(rs) != ref.get("uid"):
            return None
        return key

    def _matching_rs(self, pod: dict[str, Any]) -> list[str]:
        labels = meta(pod).get("labels") or {}
        return [
            key_of(rs)
            for rs in self.rs_informer.store.by_index("namespace", meta(pod).get("namespace", ""))
            if label_selector_matches((rs.get("spec") or {}).get("selector"), labels)
        ]

    def _pod_added(self, pod: dict[str, Any]) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif controller_ref(pod) is None:
            for k in self._matching_rs(pod):
                self.enqueue(k)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion") and old is new:
            # resync: level-triggered check of the owner
            key = self._owner_key(new)
            if key:
                self.enqueue(key)
            return
        if is_deleting(new) and not is_deleting(old):
            self._pod_deleted(new)
            return
        okey, nkey = self._owner_key(old), self._owner_key(new)
        if okey and okey != nkey:
            self.enqueue(okey)
        if nkey:
            self.enqueue(nkey)
            mrs = int(((self.rs_informer.store.get(nkey) or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if mrs > 0 and is_pod_ready(new) and not is_pod_ready(old):
                self.enqueue_after(nkey, mrs + 1)
        elif controller_ref(new) is None and (meta(old).get("labels") != meta(new).get("labels") or okey):
            for k in self._matching_rs(new):
                self.enqueue(k)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        key = self._owner_key(pod)
        if key is None:
            ref = controller_ref(pod)
            if ref and ref.get("kind") == "ReplicaSet":
                key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
            else:
                return
        self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue(key)

    # ---------------------------------------------------------------- sync
    async def sync(self, key: str) -> None:
        rs = self.rs_informer.store.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        need_sync = self.expectations.satisfied(key)
        ns = meta(rs).get("namespace", "")
        selector = (rs.get("spec") or {}).get("selector")
        pods = [p for p in self.pod_informer.store.by_index("namespace", ns) if is_pod_active(p)]
        claimed = await self._claim_pods(rs, selector, pods)
        deleted: set[str] = set()
        err: Exception | None = None
        if need_sync and not is_deleting(rs):
            try:
                deleted = await self._manage_replicas(rs, claimed)
            except Exception as exc:  # noqa: BLE001 - still update the status, then retry
                err = exc
        live = [p for p in claimed if key_of(p) not in deleted]
        await self._update_status(rs, live)
        if err is not None:
            raise err
        mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs > 0:
            now = time.time()
            if any(is_pod_ready(p) and not is_pod_available(p, mrs, now) for p in live):
                self.enqueue_after(key, mrs)

    async def _claim_pods(
        self, rs: dict[str, Any], selector: dict[str, Any] | None, pods: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        uid = uid_of(rs)
        out: list[dict[str, Any]] = []
        can_adopt: bool | None = None
        for p in pods:
            ref = controller_ref(p)
            labels = meta(p).get("labels") or {}
            matches = label_selector_matches(selector, labels)
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    out.append(p)
                elif not is_deleting(rs):
                    await self._release(p, uid)
                continue
            if not matches or is_deleting(rs) or is_deleting(p):
                continue
            if can_adopt is None:
                can_adopt = await self._fresh_owner_ok(rs)
            if can_adopt and await self._adopt(rs, p):
                out.append(p)
        return out

    async def _fresh_owner_ok(self, rs: dict[str, Any]) -> bool:
        """Before adopting, re-read the owner: it must still be the same object and not being deleted."""
        try:
            fresh = await self.client.get(REPLICASETS, meta(rs)["name"], meta(rs).get("namespace"))
        except ApiError:
            return False
        return uid_of(fresh) == uid_of(rs) and not is_deleting(fresh)

    async def _adopt(self, rs: dict[str, Any], pod: dict[str, Any]) -> bool:
        refs = list(meta(pod).get("ownerReferences") or []) + [owner_ref_for(rs, REPLICASETS)]
        try:
            await self.client.patch(
                PODS,
                meta(pod)["name"],
                {"metadata": {"ownerReferences": refs, "resourceVersion": meta(pod)["resourceVersion"]}},
                meta(pod).get("namespace"),
            )
            return True
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return False
            raise

    async def _release(self, pod: dict[str, Any], uid: str) -> None:
        refs = [r for r in meta(pod).get("ownerReferences") or [] if r.get("uid") != uid]
        try:
            await self.client.patch(
                PODS,
                meta(pod)["name"],
                {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(pod)["resourceVersion"]}},
                meta(pod).get("namespace"),
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    def _related_pods(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        """Pods of every ReplicaSet with the same controller (the Deployment's other ReplicaSets)."""
        ref = controller_ref(rs)
        if ref is None:
            return self.pod_informer.store.by_index("owner", uid_of(rs))
        out: list[dict[str, Any]] = []
        for other in self.rs_informer.store.by_index("namespace", meta(rs).get("namespace", "")):
            oref = controller_ref(other)
            if oref and oref.get("uid") == ref.get("uid"):
                out.extend(self.pod_informer.store.by_index("owner", uid_of(other)))
        return out

    async def _manage_replicas(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> set[str]:
        key = key_of(rs)
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n)
            owner = owner_ref_for(rs, REPLICASETS)
            created, first_err, unknown = await self._slow_start(rs, owner, n)
            if created + unknown < n:
                # creations that failed or were never sent will not be observed
                self.expectations.creation_observed(key, n - created - unknown)
            if unknown:
                # the connection broke after sending: the pod may exist; keep expecting it, briefly
                self.expectations.expire_soon(key, UNKNOWN_OUTCOME_WAIT)
            if first_err is not None:
                raise first_err
            return set()
        if diff > 0:
            n = min(diff, BURST_REPLICAS)
            victims = pods_to_delete(pods, self._related_pods(rs), n)
            vkeys = [key_of(p) for p in victims]
            self.expectations.expect_deletions(key, vkeys)
            results = await asyncio.gather(*(self._delete_pod(rs, p) for p in victims), return_exceptions=True)
            done: set[str] = set()
            first: Exception | None = None
            for p, r in zip(victims, results):
                if isinstance(r, Exception):
                    self.expectations.deletion_observed(key, key_of(p))
                    first = first or r
                else:
                    done.add(key_of(p))
            if first is not None:
                raise first
            return done
        return set()

    async def _slow_start(self, rs: dict[str, Any], owner: dict[str, Any], n: int) -> tuple[int, Exception | None, int]:
        """Create in batches of 1, 2, 4, ... stopping at the first failing batch (so a quota or
        admission error costs one request, not ``n``). Returns (created, first error, outcomes unknown)."""
        batch = SLOW_START_INITIAL_BATCH
        remaining = n
        created = unknown = 0
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(*(self._create_pod(rs, owner) for _ in range(size)), return_exceptions=True)
            errs = [r for r in results if isinstance(r, Exception)]
            unknown += sum(1 for r in errs if isinstance(r, UnknownOutcome))
            created += size - len(errs)
            if errs:
                return created, errs[0], unknown
            remaining -= size
            batch *= 2
        return created, None, unknown

    async def _create_pod(self, rs: dict[str, Any], owner: dict[str, Any]) -> None:
        pod = pod_from_template(rs, owner)
        try:
            created = await self.client.create(PODS, pod, meta(rs).get("namespace"))
        except ApiError as exc:
            if exc.code == 403 and "being terminated" in exc.message:
                return  # namespace terminating: nothing to do (the creation will never be observed)
            self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}", kind="ReplicaSet")
            raise
        self.recorder.event(
            rs, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name')}", kind="ReplicaSet"
        )

    async def _delete_pod(self, rs: dict[str, Any], pod: dict[str, Any]) -> None:
        md = meta(pod)
        try:
            await self.client.delete(PODS, md["name"], md.get("namespace"), preconditions={"uid": md.get("uid")})
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return
            raise
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}", kind="ReplicaSet")

    async def _update_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        new = calculate_status(rs, pods, time.time())
        if new == (rs.get("status") or {}):
            return
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": dict(meta(rs)),
            "spec": rs.get("spec"),
            "status": new,
        }
        try:
            await self.client.update_status(REPLICASETS, body)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
