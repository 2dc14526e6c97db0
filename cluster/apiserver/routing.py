"""Routing: a request path to the resource it names, and the verb a request is.

``/api/v1/...`` (the core group) and ``/apis/<group>/<version>/...`` name
``[watch/][namespaces/<ns>/]<resource>[/<name>[/<subresource>]]``; shorter
paths are discovery (``route`` answers None), anything else is a 404.
``verb`` maps the method (and ``?watch``) to the authorisation verb, with
405 for a method the route does not take.

Concurrency: pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from . import errors
from .errors import APIError
from .options import parse_bool
from .resources import ResourceDef, lookup

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
# The namespace's own subresources: /api/v1/namespaces/<name>/status is not a list of "status" in <name>.
NAMESPACE_SUBRESOURCES = ("status", "finalize")


def not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource")


@dataclass
class Route:
    rdef: ResourceDef
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool


def route(parts: list[str]) -> Route | None:
    """The resource ``parts`` (the path's segments, from ``api``/``apis`` on) name; None for discovery."""
    if parts[0] == "api":
        if len(parts) < 3:
            return None
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    watch_path = False
    if rest[0] == "watch":
        watch_path = True
        rest = rest[1:]
        if not rest:
            raise not_found()
    ns: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    rdef = lookup(group, version, plural)
    if rdef is None:
        raise not_found()
    if len(rest) > 3:
        raise not_found()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if ns is not None and not rdef.namespaced:
        raise not_found()
    if rdef.namespaced and ns is None and name is not None:
        raise not_found()
    if sub is not None and rdef.subresource(sub) is None:
        raise not_found()
    return Route(rdef, ns, name, sub, watch_path)


def verb(method: str, query: MultiMapping[str], r: Route) -> str:
    """The authorisation verb of a ``method`` request on route ``r`` (405 if the route does not take it)."""
    if method == "GET":
        if r.name is None:
            return "watch" if r.watch_path or parse_bool(query.get("watch")) else "list"
        return "watch" if r.watch_path else "get"
    if method == "POST":
        if r.name is not None and r.subresource not in ("binding", "eviction"):
            raise errors.method_not_allowed()
        return "create"
    if method == "PUT":
        if r.name is None:
            raise errors.method_not_allowed()
        return "update"
    if method == "PATCH":
        if r.name is None:
            raise errors.method_not_allowed()
        return "patch"
    if method == "DELETE":
        if r.subresource:
            raise errors.method_not_allowed()
        return "delete" if r.name is not None else "deletecollection"
    raise errors.method_not_allowed()
