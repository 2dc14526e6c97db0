"""The namespace controller (``pkg/controller/namespace``).

A namespace being deleted is ``Terminating`` and keeps the ``kubernetes``
finalizer in ``spec.finalizers``. The controller deletes everything in it -
every namespaced resource discovery lists with ``delete`` (a delete-collection
per resource, objects one by one where that is not served) - then polls until
nothing is left (pods may take their grace period, objects with finalizers
wait for them), reporting progress in the ``NamespaceContentRemaining`` and
``NamespaceFinalizersRemaining`` conditions, and finally removes its finalizer
through ``namespaces/<name>/finalize``, after which the API server deletes the
namespace.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..api.meta import meta
from ..api.timestamps import rfc3339
from ..client import NAMESPACES, ApiError, Resource
from .base import Context, Controller
from .discovery import Discovered, discover

log = logging.getLogger("raykube.controllers.namespace")

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace"
    workers = 2

    def __init__(self, ctx: Context, discovered: list[Discovered]) -> None:
        super().__init__(ctx)
        self.informer = ctx.informers.get(NAMESPACES)
        self._discovered = discovered
        self._discovered_at = time.monotonic()
        self.informer.add_event_handler(self._maybe, lambda o, n: self._maybe(n), None)

    def _maybe(self, ns: dict[str, Any]) -> None:
        if meta(ns).get("deletionTimestamp"):
            self.enqueue(meta(ns)["name"])

    async def _resources(self) -> list[Resource]:
        if time.monotonic() - self._discovered_at > 30:
            try:
                self._discovered = await discover(self.client)
                self._discovered_at = time.monotonic()
            except ApiError:
                pass
        return [
            d.resource for d in self._discovered if d.resource.namespaced and "delete" in d.verbs and "list" in d.verbs
        ]

    async def sync(self, name: str) -> None:
        ns = self.informer.store.get(name)
        if ns is None or not meta(ns).get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for res in await self._resources():
            try:
                items, _ = await self.client.list_all(res, name)
            except ApiError as exc:
                if exc.not_found:
                    continue
                raise
            if not items:
                continue
            live = [i for i in items if not meta(i).get("deletionTimestamp")]
            if live:
                await self._delete_all(res, name, live)
                items, _ = await self.client.list_all(res, name)
            if items:
                remaining[res.plural] = len(items)
                for i in items:
                    for f in meta(i).get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        if remaining:
            await self._set_conditions(ns, remaining, finalizers)
            self.enqueue_after(name, 1.0)
            return
        fins = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "resourceVersion": meta(ns)["resourceVersion"]},
            "spec": {"finalizers": fins},
        }
        try:
            await self.client.request("PUT", NAMESPACES.path(None, name, "finalize"), body=body)
            log.info("namespace %s: content deleted; finalized", name)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _delete_all(self, res: Resource, ns: str, items: list[dict[str, Any]]) -> None:
        try:
            await self.client.request(
                "DELETE",
                res.path(ns),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
            return
        except ApiError as exc:
            if exc.code not in (404, 405):
                raise
        for i in items:
            try:
                await self.client.delete(res, meta(i)["name"], ns, propagation_policy="Background")
            except ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise

    async def _set_conditions(self, ns: dict[str, Any], remaining: dict[str, int], finalizers: dict[str, int]) -> None:
        t = rfc3339()
        conds = [
            {
                "type": "NamespaceContentRemaining",
                "status": "True",
                "reason": "SomeResourcesRemain",
                "message": "Some resources are remaining: "
                + ", ".join(f"{k} has {v} resource instances" for k, v in sorted(remaining.items())),
                "lastTransitionTime": t,
            }
        ]
        if finalizers:
            conds.append(
                {
                    "type": "NamespaceFinalizersRemaining",
                    "status": "True",
                    "reason": "SomeFinalizersRemain",
                    "message": "Some content in the namespace has finalizers remaining: "
                    + ", ".join(f"{k} in {v} resource instances" for k, v in sorted(finalizers.items())),
                    "lastTransitionTime": t,
                }
            )
        old = {c.get("type"): c.get("message") for c in (ns.get("status") or {}).get("conditions") or []}
        if all(old.get(c["type"]) == c["message"] for c in conds):
            return
        try:
            await self.client.patch(
                NAMESPACES,
                meta(ns)["name"],
                {"status": {"conditions": conds}},
                patch_type="strategic",
                subresource="status",
            )
        except ApiError:
            pass
