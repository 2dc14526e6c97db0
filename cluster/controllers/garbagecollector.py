"""The garbage collector (``pkg/controller/garbagecollector``): ownerReferences.

It watches every resource the API server serves (from discovery; events
excluded) and keeps a graph: uid -> object, owner uid -> dependents.

- **dependent check** (an object whose owner may be gone): owners are
  resolved from the graph, or with a live GET when the graph doesn't know
  them (the informer may simply lag). No owner left -> delete the object
  (Background, or whatever its own orphan/foreground finalizer says); some
  owner left -> just drop the references to the vanished ones; an owner being
  deleted in the foreground and the object has dependents itself -> delete
  it in the foreground too, so the deletion propagates down the chain.
- **orphan** finalizer on a deleted owner: remove the references to it from
  all its dependents, then remove the finalizer (the API server then deletes
  the owner).
- **foregroundDeletion** finalizer: delete all dependents; when none with
  ``blockOwnerDeletion`` is left, remove the finalizer.
- Background deletion (the default): the API server deletes the owner at
  once, and the dependent check deletes its dependents.

Every deletion carries a uid precondition; every reference edit carries the
object's resourceVersion.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api.meta import meta, uid_of
from ..client import ApiError, Informer, Resource
from .base import Context, Controller
from .discovery import Discovered, group_of, kind_map

log = logging.getLogger("raykube.controllers.gc")

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
Ident = tuple[str, str, str]  # (resource, namespace, name)


def _key(ns: str, name: str) -> str:
    return f"{ns}/{name}" if ns else name


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def __init__(self, ctx: Context, discovered: list[Discovered]) -> None:
        super().__init__(ctx)
        self.kinds = kind_map(discovered)
        self.res: dict[str, tuple[Resource, Informer]] = {}
        self.uids: dict[str, Ident] = {}
        self.deps: dict[str, set[Ident]] = {}
        self.stats = {"deleted": 0, "orphaned": 0, "finalizers_removed": 0}
        for d in discovered:
            r = d.resource
            if r.plural == "events" or not {"list", "watch", "delete"} <= d.verbs:
                continue
            inf = ctx.informers.get(r)
            rkey = str(r)
            self.res[rkey] = (r, inf)
            inf.add_event_handler(
                lambda o, k=rkey: self._upsert(k, None, o),
                lambda old, new, k=rkey: self._upsert(k, old, new),
                lambda o, k=rkey: self._removed(k, o),
            )

    # --------------------------------------------------------------- graph
    def _ident(self, rkey: str, obj: dict[str, Any]) -> Ident:
        md = meta(obj)
        return (rkey, str(md.get("namespace") or ""), str(md.get("name") or ""))

    def _get(self, ident: Ident) -> dict[str, Any] | None:
        ent = self.res.get(ident[0])
        if ent is None:
            return None
        return ent[1].store.get(_key(ident[1], ident[2]))

    def _upsert(self, rkey: str, old: dict[str, Any] | None, obj: dict[str, Any]) -> None:
        ident = self._ident(rkey, obj)
        uid = uid_of(obj)
        self.uids[uid] = ident
        md = meta(obj)
        refs = md.get("ownerReferences") or []
        if old is not None and old is not obj:
            for r in meta(old).get("ownerReferences") or []:
                if not any(x.get("uid") == r.get("uid") for x in refs):
                    s = self.deps.get(r.get("uid"))
                    if s is not None:
                        s.discard(ident)
                        if not s:
                            del self.deps[r.get("uid")]
        check_self = False
        for r in refs:
            self.deps.setdefault(str(r.get("uid")), set()).add(ident)
            owner_ident = self.uids.get(str(r.get("uid")))
            if owner_ident is None:
                check_self = True
                continue
            owner = self._get(owner_ident)
            if owner is None:
                check_self = True
            elif meta(owner).get("deletionTimestamp"):
                fins = meta(owner).get("finalizers") or []
                if FOREGROUND in fins:
                    check_self = True
                if FOREGROUND in fins or ORPHAN in fins:
                    self.enqueue(("owner", owner_ident))
        if check_self and not md.get("deletionTimestamp"):
            self.enqueue(("dep", ident))
        if md.get("deletionTimestamp"):
            fins = md.get("finalizers") or []
            if ORPHAN in fins or FOREGROUND in fins:
                self.enqueue(("owner", ident))
        # an owner that changed (e.g. started deleting in the foreground): look at its dependents
        if (
            old is not None
            and old is not obj
            and md.get("deletionTimestamp")
            and not meta(old).get("deletionTimestamp")
        ):
            for dep in list(self.deps.get(uid, ())):
                self.enqueue(("dep", dep))

    def _removed(self, rkey: str, obj: dict[str, Any]) -> None:
        ident = self._ident(rkey, obj)
        uid = uid_of(obj)
        if self.uids.get(uid) == ident:
            del self.uids[uid]
        for r in meta(obj).get("ownerReferences") or []:
            s = self.deps.get(str(r.get("uid")))
            if s is not None:
                s.discard(ident)
                if not s:
                    del self.deps[str(r.get("uid"))]
            owner_ident = self.uids.get(str(r.get("uid")))
            if owner_ident is not None:
                self.enqueue(("owner", owner_ident))
        for dep in list(self.deps.get(uid, ())):
            self.enqueue(("dep", dep))

    # ---------------------------------------------------------------- sync
    async def sync(self, item: tuple[str, Ident]) -> None:
        kind, ident = item
        if kind == "dep":
            await self._attempt_delete(ident)
        else:
            await self._process_owner(ident)

    async def _owner_state(self, ref: dict[str, Any], dep_ns: str) -> str:
        """``solid`` (exists), ``waiting`` (exists, deleting its dependents first), ``absent``
        or ``unknown`` (a kind we can't resolve: leave it alone)."""
        uid = str(ref.get("uid"))
        ident = self.uids.get(uid)
        owner = self._get(ident) if ident else None
        if owner is None:
            res = self.kinds.get((group_of(str(ref.get("apiVersion") or "")), str(ref.get("kind") or "")))
            if res is None:
                return "unknown"
            if res.namespaced and not dep_ns:
                return "absent"  # a cluster-scoped object can't have a namespaced owner
            try:
                owner = await self.client.get(res, str(ref.get("name")), dep_ns if res.namespaced else None)
            except ApiError as exc:
                if exc.not_found:
                    return "absent"
                raise
            if uid_of(owner) != uid:
                return "absent"
        md = meta(owner)
        if md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _attempt_delete(self, ident: Ident) -> None:
        obj = self._get(ident)
        if obj is None:
            return
        md = meta(obj)
        if md.get("deletionTimestamp"):
            return
        refs = md.get("ownerReferences") or []
        if not refs:
            return
        solid, dangling, waiting = [], [], []
        for r in refs:
            s = await self._owner_state(r, ident[1])
            if s in ("solid", "unknown"):
                solid.append(r)
            elif s == "waiting":
                waiting.append(r)
            else:
                dangling.append(r)
        if solid:
            if not dangling and not waiting:
                return
            gone = {r.get("uid") for r in dangling + waiting}
            await self._patch_refs(ident, obj, [r for r in refs if r.get("uid") not in gone])
            return
        if waiting and self.deps.get(uid_of(obj)):
            await self._delete(ident, obj, "Foreground")
            return
        fins = md.get("finalizers") or []
        policy = "Orphan" if ORPHAN in fins else "Foreground" if FOREGROUND in fins else "Background"
        await self._delete(ident, obj, policy)

    async def _process_owner(self, ident: Ident) -> None:
        obj = self._get(ident)
        if obj is None:
            return
        md = meta(obj)
        if not md.get("deletionTimestamp"):
            return
        fins = md.get("finalizers") or []
        uid = uid_of(obj)
        deps = [d for d in list(self.deps.get(uid, ())) if self._get(d) is not None]
        if ORPHAN in fins:
            for d in deps:
                dobj = self._get(d)
                if dobj is None:
                    continue
                refs = [r for r in meta(dobj).get("ownerReferences") or [] if r.get("uid") != uid]
                await self._patch_refs(d, dobj, refs)
                self.stats["orphaned"] += 1
            await self._remove_finalizer(ident, obj, ORPHAN)
            return
        if FOREGROUND in fins:
            blocking = []
            for d in deps:
                dobj = self._get(d)
                if dobj is None:
                    continue
                ref = next((r for r in meta(dobj).get("ownerReferences") or [] if r.get("uid") == uid), None)
                if ref is None:
                    continue
                if ref.get("blockOwnerDeletion"):
                    blocking.append(d)
                if not meta(dobj).get("deletionTimestamp"):
                    self.enqueue(("dep", d))
            if not blocking:
                await self._remove_finalizer(ident, obj, FOREGROUND)

    # -------------------------------------------------------------- writes
    async def _delete(self, ident: Ident, obj: dict[str, Any], policy: str) -> None:
        res = self.res[ident[0]][0]
        try:
            await self.client.delete(
                res, ident[2], ident[1] or None, propagation_policy=policy, preconditions={"uid": uid_of(obj)}
            )
            self.stats["deleted"] += 1
            log.debug("deleted %s %s/%s (%s)", res.plural, ident[1], ident[2], policy)
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    async def _patch_refs(self, ident: Ident, obj: dict[str, Any], refs: list[dict[str, Any]]) -> None:
        res = self.res[ident[0]][0]
        try:
            await self.client.patch(
                res,
                ident[2],
                {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(obj)["resourceVersion"]}},
                ident[1] or None,
            )
        except ApiError as exc:
            if exc.not_found:
                return
            raise

    async def _remove_finalizer(self, ident: Ident, obj: dict[str, Any], fin: str) -> None:
        res = self.res[ident[0]][0]
        fins = [f for f in meta(obj).get("finalizers") or [] if f != fin]
        try:
            await self.client.patch(
                res,
                ident[2],
                {"metadata": {"finalizers": fins or None, "resourceVersion": meta(obj)["resourceVersion"]}},
                ident[1] or None,
            )
            self.stats["finalizers_removed"] += 1
        except ApiError as exc:
            if exc.not_found:
                return
            raise
