"""The typed CRUD verbs of ``rest.Client``: get, list, list_all, create, update, patch, delete.

``Verbs`` turns a ``Resource`` plus names, bodies and options into one
``Transport.request`` each (``list_all`` follows ``continue`` pages): paths,
query parameters, the ``apiVersion``/``kind`` a bare object lacks, patch content
types, ``DeleteOptions``. It adds no retries or state of its own.

Concurrency: none of its own; as ``Transport`` (one event loop, many tasks).
"""

from __future__ import annotations

from typing import Any

from .resources import Resource
from .transport import Transport

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class Verbs(Transport):
    async def get(
        self, res: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        return await self.request("GET", res.path(self._ns(res, namespace), name, subresource))

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page of a list. ``namespace=None`` on a namespaced resource lists the client's
        default namespace unless ``all_namespaces``."""
        ns = None if all_namespaces else self._ns(res, namespace)
        return await self.request(
            "GET",
            res.path(ns),
            params={
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "limit": limit,
                "continue": continue_,
                "resourceVersion": resource_version,
            },
        )

    async def list_all(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item (following ``continue``) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        cont: str | None = None
        rv = ""
        while True:
            page = await self.list(
                res,
                namespace,
                all_namespaces=all_namespaces,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size or None,
                continue_=cont,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion", ""))
            cont = meta.get("continue")
            if not cont:
                return items, rv

    async def create(
        self,
        res: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        ns = self._ns(res, namespace or (obj.get("metadata") or {}).get("namespace"))
        return await self.request(
            "POST",
            res.path(ns),
            body=_with_type(res, obj),
            params={"fieldManager": field_manager, "dryRun": "All" if dry_run else None},
        )

    async def update(
        self, res: Resource, obj: dict[str, Any], *, subresource: str | None = None, field_manager: str | None = None
    ) -> dict[str, Any]:
        """PUT (optimistic concurrency: ``metadata.resourceVersion`` must be current, else 409)."""
        md = obj.get("metadata") or {}
        ns = self._ns(res, md.get("namespace"))
        return await self.request(
            "PUT",
            res.path(ns, md["name"], subresource),
            body=_with_type(res, obj),
            params={"fieldManager": field_manager},
        )

    async def update_status(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.update(res, obj, subresource="status")

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        ct = PATCH_TYPES.get(patch_type, patch_type)
        if patch_type == "apply" and field_manager is None:
            field_manager = "raykube"
        return await self.request(
            "PATCH",
            res.path(self._ns(res, namespace), name, subresource),
            body=patch,
            content_type=ct,
            params={"fieldManager": field_manager, "force": None if force is None else str(force).lower()},
        )

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] | None = None
        if propagation_policy or grace_period_seconds is not None or preconditions:
            body = {"kind": "DeleteOptions", "apiVersion": "v1"}
            if propagation_policy:
                body["propagationPolicy"] = propagation_policy
            if grace_period_seconds is not None:
                body["gracePeriodSeconds"] = grace_period_seconds
            if preconditions:
                body["preconditions"] = preconditions
        return await self.request("DELETE", res.path(self._ns(res, namespace), name), body=body)


def _with_type(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    if "apiVersion" in obj and "kind" in obj:
        return obj
    return {"apiVersion": res.api_version, "kind": res.kind, **obj}
