"""Routing: a request path to the resource it names, the verb a request is, and the verbs a path serves.

``/api/v1/...`` (the core group) and ``/apis/<group>/<version>/...`` name
``[watch/][namespaces/<ns>/]<resource>[/<name>[/<subresource>]]``; shorter
paths are discovery (``route`` answers None), anything else is a 404.
``verb`` maps the method (and ``?watch``) to the authorisation verb (405 for
a method no verb maps to); ``served_verbs`` says which verbs the path takes,
as kube-apiserver's installer registers them: a collection lists, watches,
creates and deletes collections; all namespaces at once (a namespaced
resource without ``namespaces/<ns>``) only lists and watches; an object is
got, updated, patched and deleted; a ``watch/`` path only watches; a
subresource takes its own verbs - each cut to the verbs the resource (or
subresource) declares in ``resources``, which are also the ones discovery
advertises. The server authorises the verb first and then answers 405 for one
the path does not serve, as kube-apiserver does.

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
    if sub is not None and (rdef.subresource(sub) is None or watch_path):
        raise not_found()
    return Route(rdef, ns, name, sub, watch_path)


METHOD_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
COLLECTION_VERBS = frozenset({"list", "watch", "create", "deletecollection"})
ALL_NAMESPACES_VERBS = frozenset({"list", "watch"})
OBJECT_VERBS = frozenset({"get", "update", "patch", "delete"})


def verb(method: str, query: MultiMapping[str], r: Route) -> str:
    """The authorisation verb of a ``method`` request on route ``r`` (405 for a method no verb maps to)."""
    v = METHOD_VERBS.get(method)
    if v is None:
        raise method_not_allowed(method.lower(), r)
    if r.subresource is not None:
        return v
    if r.name is None:
        if v == "get":
            return "watch" if r.watch_path or parse_bool(query.get("watch")) else "list"
        if v == "delete":
            return "deletecollection"
    elif v == "get" and r.watch_path:
        return "watch"
    return v


def served_verbs(r: Route) -> frozenset[str]:
    """The verbs the path of ``r`` serves (anything else is a 405)."""
    rdef = r.rdef
    if r.subresource is not None:
        sub = rdef.subresource(r.subresource)
        return frozenset(sub.verbs) if sub is not None else frozenset()
    if r.watch_path:
        shape = frozenset({"watch"})
    elif r.name is not None:
        shape = OBJECT_VERBS
    elif rdef.namespaced and r.namespace is None:
        shape = ALL_NAMESPACES_VERBS
    else:
        shape = COLLECTION_VERBS
    return shape & frozenset(rdef.verbs)


def check_served(v: str, r: Route) -> None:
    """405 unless the path of ``r`` serves verb ``v``."""
    if v not in served_verbs(r):
        raise method_not_allowed(v, r)


def method_not_allowed(v: str, r: Route) -> APIError:
    """kube-apiserver's MethodNotSupported Status: ``<verb> is not supported on resources of kind "<resource>"``."""
    resource = r.rdef.plural + (f"/{r.subresource}" if r.subresource else "")
    e = errors.method_not_allowed(f'{v} is not supported on resources of kind "{resource}"')
    e.details = {"kind": resource} | ({"group": r.rdef.group} if r.rdef.group else {})
    return e
