"""API discovery for the controllers that must cover every resource the API
server serves (garbage collector, namespace deletion): ``/api/v1`` plus the
preferred version of every group under ``/apis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..client import Client, Resource


@dataclass(frozen=True)
class Discovered:
    resource: Resource
    verbs: frozenset[str]


async def discover(client: Client) -> list[Discovered]:
    out: list[Discovered] = []

    def add(group: str, version: str, doc: dict[str, Any]) -> None:
        for r in doc.get("resources") or []:
            name = r.get("name", "")
            if not name or "/" in name:
                continue  # subresources
            out.append(
                Discovered(
                    Resource(group, version, name, r.get("kind", ""), bool(r.get("namespaced"))),
                    frozenset(r.get("verbs") or []),
                )
            )

    add("", "v1", await client.request("GET", "/api/v1"))
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
        if "/" not in gv:
            continue
        group, version = gv.split("/", 1)
        add(group, version, await client.request("GET", f"/apis/{gv}"))
    return out


def kind_map(found: list[Discovered]) -> dict[tuple[str, str], Resource]:
    """(group, kind) -> Resource, to resolve ownerReferences' apiVersion/kind."""
    return {(d.resource.group, d.resource.kind): d.resource for d in found}


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""
