"""Discovery and OpenAPI documents, built once from the resource registry.

- ``/api`` (APIVersions), ``/apis`` (APIGroupList), ``/apis/<g>`` (APIGroup),
  ``/api/v1`` and ``/apis/<g>/<v>`` (APIResourceList, subresources included
  as ``pods/status`` etc., ``deployments/scale`` answering autoscaling/v1
  Scale).
- Aggregated discovery (``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``)
  for ``/api`` and ``/apis`` when the Accept header asks for it, as kubectl
  1.37 does; v2beta1 is served the same way.
- ``/openapi/v3`` (the index) and ``/openapi/v3/<api|apis/g>/<v>``: OpenAPI
  3.0 documents with a component schema per type (from ``schema_data``,
  enough for ``kubectl explain``) and a path per resource whose PATCH operation
  carries ``x-kubernetes-group-version-kind`` and the ``fieldValidation``
  parameter: that is how kubectl learns the server validates fields itself
  (so ``kubectl create/apply`` skip client-side schema validation and send
  ``fieldValidation=Strict``).
- ``/openapi/v2`` is not served (404); kubectl copes with that.

Pure: the server caches the bytes and their ETags.

Concurrency: pure; the documents are built once at server construction and
served as immutable bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from .patch import PATCH_META
from .resources import GROUPS, RESOURCES, ResourceDef
from .schema_data import SCHEMAS

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

VERSION_INFO = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.0-raykube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "python3.11",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def _storage_hash(r: ResourceDef) -> str:
    return base64.b64encode(hashlib.sha256(f"{r.api_version}/{r.kind}".encode()).digest()[:8]).decode()


def resource_list(group: str, version: str) -> dict[str, Any]:
    gv = f"{group}/{version}" if group else version
    items: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        item: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
            "storageVersionHash": _storage_hash(r),
        }
        if r.short_names:
            item["shortNames"] = list(r.short_names)
        if r.categories:
            item["categories"] = list(r.categories)
        items.append(item)
        for s in r.subresources:
            sub: dict[str, Any] = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": list(s.verbs),
            }
            if s.group or s.version != r.version or s.kind in ("Scale", "Eviction"):
                sub["group"] = s.group
                sub["version"] = s.version
            items.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in GROUPS[group]]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_group_list() -> dict[str, Any]:
    groups = [api_group(g) for g in GROUPS if g]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _aggregated_group(group: str, version_tag: str) -> dict[str, Any]:
    versions = []
    for v in GROUPS[group]:
        resources = []
        for r in RESOURCES:
            if r.group != group or r.version != v:
                continue
            item: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.singular,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                item["shortNames"] = list(r.short_names)
            if r.categories:
                item["categories"] = list(r.categories)
            subs = [
                {
                    "subresource": s.name,
                    "responseKind": {
                        "group": s.group if s.kind in ("Scale", "Eviction") else r.group,
                        "version": s.version,
                        "kind": s.kind,
                    },
                    "verbs": list(s.verbs),
                }
                for s in r.subresources
            ]
            if subs:
                item["subresources"] = subs
            resources.append(item)
        versions.append({"version": v, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}


def aggregated(core: bool, version_tag: str = "v2") -> dict[str, Any]:
    groups = [_aggregated_group("", version_tag)] if core else [_aggregated_group(g, version_tag) for g in GROUPS if g]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version_tag}",
        "metadata": {},
        "items": groups,
    }


def wants_aggregated(accept: str) -> str | None:
    """The aggregated-discovery version the Accept header asks for first, if any."""
    for part in accept.split(","):
        p = part.replace(" ", "")
        if "as=APIGroupDiscoveryList" in p and "g=apidiscovery.k8s.io" in p:
            if "v=v2beta1" in p:
                return "v2beta1"
            if "v=v2" in p:
                return "v2"
        elif p.startswith("application/json") or p.startswith("*/*"):
            return None
    return None


# ------------------------------------------------------------ OpenAPI v3


def _schema_ref(t: Any) -> dict[str, Any]:
    if isinstance(t, list):
        if t[0] == "list":
            return {"type": "array", "items": _schema_ref(t[1])}
        return {"type": "object", "additionalProperties": _schema_ref(t[1])}
    if t in SCHEMAS:
        return {"allOf": [{"$ref": f"#/components/schemas/{t}"}]}
    return {
        "string": {"type": "string"},
        "integer": {"type": "integer", "format": "int64"},
        "number": {"type": "number", "format": "double"},
        "boolean": {"type": "boolean"},
        "date-time": {"type": "string", "format": "date-time"},
        "int-or-string": {"x-kubernetes-int-or-string": True},
        "quantity": {"x-kubernetes-int-or-string": True, "pattern": "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"},
    }.get(t, {"type": "object", "x-kubernetes-preserve-unknown-fields": True})


def _component(name: str) -> dict[str, Any]:
    s = SCHEMAS[name]
    props: dict[str, Any] = {}
    for f, t in sorted(s["fields"].items()):
        prop = _schema_ref(t)
        doc = s.get("docs", {}).get(f)
        if not doc:
            inner = t[1] if isinstance(t, list) else t
            doc = SCHEMAS[inner].get("description", "") if isinstance(inner, str) and inner in SCHEMAS else ""
        if doc:
            prop = dict(prop)
            prop["description"] = doc
        meta = PATCH_META.get((name, f))
        if meta is not None:
            prop = dict(prop)
            prop["x-kubernetes-patch-strategy"] = meta[0]
            if meta[1]:
                prop["x-kubernetes-patch-merge-key"] = meta[1]
        props[f] = prop
    out: dict[str, Any] = {"type": "object", "description": s.get("description", ""), "properties": props}
    if s["required"]:
        out["required"] = list(s["required"])
    for r in RESOURCES:
        if r.schema == name:
            out["x-kubernetes-group-version-kind"] = [{"group": r.group, "kind": r.kind, "version": r.version}]
    if name == "V1Scale":
        out["x-kubernetes-group-version-kind"] = [{"group": "autoscaling", "kind": "Scale", "version": "v1"}]
    return out


def _reachable(roots: list[str]) -> list[str]:
    seen: list[str] = []
    todo = list(roots)
    while todo:
        n = todo.pop()
        if n in seen or n not in SCHEMAS:
            continue
        seen.append(n)

        def walk(t: Any) -> None:
            if isinstance(t, list):
                walk(t[1])
            elif t in SCHEMAS:
                todo.append(t)

        for t in SCHEMAS[n]["fields"].values():
            walk(t)
    return sorted(seen)


_PARAMS = {
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request containing "
    "unknown or duplicate fields. Valid values are: Ignore, Warn (default) and Strict.",
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: All.",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
}


def _op(r: ResourceDef, action: str, body: bool, params: list[str]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{r.schema}"}
    op: dict[str, Any] = {
        "operationId": f"{action}{r.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "parameters": [
            {"name": p, "in": "query", "description": _PARAMS[p], "schema": {"type": "string", "uniqueItems": True}}
            for p in params
        ],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}},
            "401": {"description": "Unauthorized"},
        },
    }
    if body:
        ctypes = (
            ["application/json"]
            if action != "patch"
            else [
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ]
        )
        op["requestBody"] = {
            "content": {ct: {"schema": ref if action != "patch" else {"type": "object"}} for ct in ctypes},
            "required": True,
        }
    return op


def openapi_v3(group: str, version: str) -> dict[str, Any]:
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    roots = [r.schema for r in rs] + ["V1Status", "V1DeleteOptions"]
    if any(s.kind == "Scale" for r in rs for s in r.subresources):
        roots.append("V1Scale")
    paths: dict[str, Any] = {}
    write = ["dryRun", "fieldManager", "fieldValidation"]
    for r in rs:
        base = r.gv_path + ("/namespaces/{namespace}" if r.namespaced else "")
        paths[f"{base}/{r.plural}"] = {"get": _op(r, "list", False, []), "post": _op(r, "post", True, write)}
        paths[f"{base}/{r.plural}/{{name}}"] = {
            "get": _op(r, "get", False, []),
            "put": _op(r, "put", True, write),
            "patch": _op(r, "patch", True, write),
            "delete": _op(r, "delete", False, ["dryRun"]),
        }
        for s in r.subresources:
            if s.name in ("status", "scale"):
                paths[f"{base}/{r.plural}/{{name}}/{s.name}"] = {
                    "get": _op(r, "get", False, []),
                    "put": _op(r, "put", True, write),
                    "patch": _op(r, "patch", True, write),
                }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (raykube)", "version": VERSION_INFO["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {n: _component(n) for n in _reachable(roots)}},
    }


def openapi_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_index(hashes: dict[str, str]) -> dict[str, Any]:
    return {"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"} for k, h in sorted(hashes.items())}}


def build_openapi() -> tuple[dict[str, bytes], dict[str, str]]:
    """({"api/v1": document bytes, ...}, {"api/v1": hash, ...})."""
    docs: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    for g, vs in GROUPS.items():
        for v in vs:
            k = openapi_key(g, v)
            docs[k] = json.dumps(openapi_v3(g, v), separators=(",", ":")).encode()
            hashes[k] = hashlib.sha512(docs[k]).hexdigest()[:64].upper()
    return docs, hashes
