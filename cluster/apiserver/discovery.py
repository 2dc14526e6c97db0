"""Discovery and OpenAPI documents, built once from the resource registry.

- ``/api`` (APIVersions), ``/apis`` (APIGroupList), ``/apis/<g>`` (APIGroup),
  ``/api/v1`` and ``/apis/<g>/<v>`` (APIResourceList, subresources included
  as ``pods/status`` etc., ``deployments/scale`` answering autoscaling/v1
  Scale).
- Aggregated discovery (``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``)
  for ``/api`` and ``/apis`` when the Accept header asks for it, as kubectl
  1.37 does; v2beta1 is served the same way.
- ``/openapi/v3`` (the index) and ``/openapi/v3/<api|apis/g>/<v>``: the
  OpenAPI 3.0 document of each served group-version, built by ``openapi``
  from the resource table (every path, verb, parameter, body and answer;
  a component schema per type, enough for ``kubectl explain``).
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

from . import openapi
from .resources import GROUPS, RESOURCES, ResourceDef

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


def openapi_v3(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of ``group``/``version`` (see ``openapi``)."""
    return openapi.document(group, version, VERSION_INFO["gitVersion"])


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
