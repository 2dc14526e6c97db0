"""The ``components.schemas`` of the served OpenAPI v3 documents.

Each served type becomes one component named as the official Python client
names it (``V1Pod``, ``V1PodSpec``, ``CoreV1Event``), from ``schema_data``
(field types, required fields, descriptions) and ``patch.PATCH_META``
(``x-kubernetes-patch-strategy`` and ``-merge-key``, which client-side
apply and ``kubectl explain`` read). Beside them, the types the schema data
has no entry for but the operations need: the ``<Kind>List`` of every served
kind, ``V1WatchEvent``, ``V1Patch`` and ``V1APIResourceList``. Every
component that is a kind carries ``x-kubernetes-group-version-kind``: that
is how kubectl finds a kind's schema (``kubectl explain``).

Concurrency: pure functions over read-only module data; the documents are
built once per API server.
"""

from __future__ import annotations

from typing import Any

from .patch import PATCH_META
from .resources import RESOURCES, ResourceDef, group_versions
from .schema_data import SCHEMAS

Schema = dict[str, Any]

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
)

# Kinds served as subresources (not in RESOURCES as kinds of their own), with their group-version-kinds.
_SUBRESOURCE_KINDS = {
    "V1Scale": {"group": "autoscaling", "kind": "Scale", "version": "v1"},
    "V1Eviction": {"group": "policy", "kind": "Eviction", "version": "v1"},
    "V1Binding": {"group": "", "kind": "Binding", "version": "v1"},
    "V1Status": {"group": "", "kind": "Status", "version": "v1"},
}

_PRIMITIVES: dict[str, Schema] = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "format": "int64"},
    "number": {"type": "number", "format": "double"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
    "int-or-string": {"x-kubernetes-int-or-string": True},
    "quantity": {"x-kubernetes-int-or-string": True, "pattern": "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"},
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def list_schema(r: ResourceDef) -> str:
    """The component name of ``r``'s list kind (``V1PodList``)."""
    return r.schema + "List"


def schema_of(t: Any) -> Schema:
    """The JSON schema of a ``schema_data`` field type."""
    if isinstance(t, list):
        if t[0] == "list":
            return {"type": "array", "items": schema_of(t[1])}
        return {"type": "object", "additionalProperties": schema_of(t[1])}
    if t in SCHEMAS:
        # allOf around the $ref (as kube-openapi writes it): siblings of a bare $ref, such as the
        # description and patch strategy added below, are ignored by OpenAPI 3.0 tools.
        return {"allOf": [ref(t)]}
    return dict(_PRIMITIVES.get(t, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}))


def _gvks(name: str) -> list[dict[str, str]]:
    out = [{"group": r.group, "kind": r.kind, "version": r.version} for r in RESOURCES if r.schema == name]
    if name in _SUBRESOURCE_KINDS:
        out.append(_SUBRESOURCE_KINDS[name])
    if name == "V1DeleteOptions":
        # Kubernetes registers DeleteOptions in every group-version; kubectl looks it up by the resource's.
        out = [{"group": g, "kind": "DeleteOptions", "version": v} for g, v in group_versions()]
    return out


def component(name: str) -> Schema:
    """The component schema of the ``schema_data`` type ``name``."""
    s = SCHEMAS[name]
    props: dict[str, Any] = {}
    for f, t in sorted(s["fields"].items()):
        prop = schema_of(t)
        doc = s.get("docs", {}).get(f)
        if not doc:
            inner = t[1] if isinstance(t, list) else t
            doc = SCHEMAS[inner].get("description", "") if isinstance(inner, str) and inner in SCHEMAS else ""
        if doc:
            prop["description"] = doc
        meta = PATCH_META.get((name, f))
        if meta is not None:
            prop["x-kubernetes-patch-strategy"] = meta[0]
            if meta[1]:
                prop["x-kubernetes-patch-merge-key"] = meta[1]
        props[f] = prop
    out: Schema = {"type": "object", "description": s.get("description", ""), "properties": props}
    if s["required"]:
        out["required"] = list(s["required"])
    gvks = _gvks(name)
    if gvks:
        out["x-kubernetes-group-version-kind"] = gvks
    return out


def list_component(r: ResourceDef) -> Schema:
    """``<Kind>List``: what a list (and a collection delete) of ``r`` answers."""
    return {
        "type": "object",
        "description": f"{r.kind}List is a list of {r.kind} objects.",
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "items": {"type": "array", "items": ref(r.schema), "description": f"List of {r.plural}."},
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"allOf": [ref("V1ListMeta")], "description": "Standard list metadata."},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [{"group": r.group, "kind": r.list_kind, "version": r.version}],
    }


def _meta_components() -> dict[str, Schema]:
    """Types of meta.k8s.io/v1 the operations use that ``schema_data`` has no entry for."""
    every_gv = group_versions()
    return {
        "V1WatchEvent": {
            "type": "object",
            "description": "Event represents a single event to a watched resource.",
            "properties": {
                "type": {"type": "string", "description": "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."},
                "object": {
                    "type": "object",
                    "description": "The object (for ERROR: a Status; for BOOKMARK: only its kind, apiVersion "
                    "and metadata.resourceVersion).",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
            "required": ["type", "object"],
            "x-kubernetes-group-version-kind": [{"group": g, "kind": "WatchEvent", "version": v} for g, v in every_gv],
        },
        "V1Patch": {
            "type": "object",
            "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        },
        "V1JSONPatch": {
            "type": "array",
            "description": "An RFC 6902 JSON patch: a list of operations.",
            "items": {
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                    "path": {"type": "string"},
                    "from": {"type": "string"},
                    "value": {},
                },
                "required": ["op", "path"],
            },
        },
        "V1APIResource": {
            "type": "object",
            "description": "APIResource specifies the name of a resource and whether it is namespaced.",
            "properties": {
                "categories": {"type": "array", "items": {"type": "string"}},
                "group": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "namespaced": {"type": "boolean"},
                "shortNames": {"type": "array", "items": {"type": "string"}},
                "singularName": {"type": "string"},
                "storageVersionHash": {"type": "string"},
                "verbs": {"type": "array", "items": {"type": "string"}},
                "version": {"type": "string"},
            },
            "required": ["name", "singularName", "namespaced", "kind", "verbs"],
        },
        "V1APIResourceList": {
            "type": "object",
            "description": "APIResourceList is a list of APIResource, it is used to expose the name of the "
            "resources supported in a specific group and version, and if the resource is namespaced.",
            "properties": {
                "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                "groupVersion": {"type": "string"},
                "kind": {"type": "string", "description": _KIND_DOC},
                "resources": {"type": "array", "items": ref("V1APIResource")},
            },
            "required": ["groupVersion", "resources"],
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "APIResourceList", "version": "v1"}],
        },
    }


def reachable(roots: list[str]) -> list[str]:
    """The ``schema_data`` types ``roots`` refer to, transitively (roots included), sorted."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        n = todo.pop()
        if n in seen or n not in SCHEMAS:
            continue
        seen.add(n)
        for t in SCHEMAS[n]["fields"].values():
            while isinstance(t, list):
                t = t[1]
            if t in SCHEMAS:
                todo.append(t)
    return sorted(seen)


def components(rs: list[ResourceDef], extra_roots: list[str]) -> dict[str, Schema]:
    """Every component the operations on ``rs`` refer to: their kinds, lists, and what those reach."""
    roots = [r.schema for r in rs] + list(extra_roots) + ["V1Status", "V1DeleteOptions", "V1ListMeta"]
    out = {n: component(n) for n in reachable(roots)}
    for r in rs:
        out[list_schema(r)] = list_component(r)
    out.update(_meta_components())
    return dict(sorted(out.items()))
