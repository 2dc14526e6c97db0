"""The OpenAPI v3 documents the API server serves, one per group-version, built from the resource table.

``document(group, version)`` describes every path, verb, parameter, body
and answer the server has for the resources of that group-version in
``resources.RESOURCES`` (a new kind or group joins by being served), as
kube-apiserver publishes them (kube-openapi's layout: operationIds such as
``listCoreV1NamespacedPod``, path parameters and ``pretty`` on the path,
``x-kubernetes-action`` and ``x-kubernetes-group-version-kind`` on each
operation, the deprecated ``/watch/`` paths), and where kube-apiserver's
document is known to differ from what it really answers, as the server
really answers:

- a DELETE answers ``Status`` when the object is gone at once and the
  object itself when it is only marked (finalizers, a grace period, a
  namespace); kinds whose strategy says ``return_deleted_object`` (pods)
  always answer the object;
- a collection delete answers the list of what it deleted;
- ``pods/binding`` and ``pods/eviction`` answer a ``Status``;
- ``/scale`` is an ``autoscaling/v1 Scale``; ``pods/log`` is text;
- every error is a ``Status``, under each code the server can answer for
  that verb; bodies are JSON or YAML, patches the four patch media types.

kubectl relies on two details: ``kubectl explain`` finds a kind's schema by
its ``x-kubernetes-group-version-kind`` (``openapi_schemas``), and kubectl
sends ``fieldValidation=Strict`` (and skips client-side validation) once the
PATCH operation of a kind, found by the same extension, lists the
``fieldValidation`` query parameter inline.

Concurrency: pure functions; the server builds the documents once and serves
them as immutable bytes.
"""

from __future__ import annotations

from typing import Any

from . import openapi_params as p
from .openapi_schemas import components, list_schema, ref
from .resources import RESOURCES, ResourceDef, Subresource
from .strategies import STRATEGIES

Op = dict[str, Any]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request: a malformed body, query parameter or selector",
    401: "Unauthorized: no valid bearer token",
    403: "Forbidden: the user may not do this, or the namespace is terminating",
    404: "Not Found",
    409: "Conflict: the object exists already, or changed since the resourceVersion given",
    410: "Gone: the resourceVersion or continue token has been compacted away",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity: the object is invalid",
    429: "Too Many Requests: too many open watches",
    500: "Internal Server Error",
    503: "Service Unavailable: the storage is unavailable",
    504: "Gateway Timeout: the storage did not answer in time, or the resourceVersion is in the future",
}
# The errors each kind of operation can answer (all are Status objects).
_ERRORS_READ = (400, 401, 403, 404, 500, 503, 504)
_ERRORS_LIST = (400, 401, 403, 404, 410, 422, 429, 500, 503, 504)
_ERRORS_WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 504)
_ERRORS_DELETE = (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 504)
_JSON = "application/json"
_BODY_TYPES = (_JSON, "application/yaml")
_PATCH_TYPES = {
    "application/apply-patch+yaml": "V1Patch",
    "application/json-patch+json": "V1JSONPatch",
    "application/merge-patch+json": "V1Patch",
    "application/strategic-merge-patch+json": "V1Patch",
}


# The component schema of a subresource's kind when it is not its owner's.
_SUBRESOURCE_SCHEMAS = {"Scale": "V1Scale", "Eviction": "V1Eviction", "Binding": "V1Binding"}


def _tag(group: str, version: str) -> str:
    """``core_v1``, ``apps_v1``, ``coordination_v1``: kube-openapi's tag of a group-version."""
    return (group.removesuffix(".k8s.io").replace(".", "_") or "core") + "_" + version


def camel_group(group: str, version: str) -> str:
    """``CoreV1``, ``AppsV1``, ``CoordinationV1``, ``RbacAuthorizationV1``: kube-openapi's operation prefix."""
    if not group:
        return "Core" + version.capitalize()
    name = group.removesuffix(".k8s.io")
    return "".join(part.capitalize() for part in name.split(".")) + version.capitalize()


def _content(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {t: {"schema": schema} for t in (types or (_JSON,))}


def _responses(ok: dict[int, dict[str, Any]], errors: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, content in ok.items():
        out[str(code)] = {"description": _REASONS[code], "content": content}
    for code in errors:
        out[str(code)] = {"description": _REASONS[code], "content": _content(ref("V1Status"))}
    return out


class _Ops:
    """The operations of one resource (and its subresources) in one group-version document."""

    def __init__(self, r: ResourceDef) -> None:
        self.r = r
        self.prefix = camel_group(r.group, r.version)
        self.gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        self.tag = _tag(r.group, r.version)
        self.scope = "Namespaced" if r.namespaced else ""

    def op(
        self,
        action: str,
        verb: str,
        suffix: str,
        description: str,
        params: list[dict[str, Any]],
        ok: dict[int, dict[str, Any]],
        errors: tuple[int, ...],
        gvk: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Op:
        o: Op = {
            "description": description,
            "operationId": f"{verb}{self.prefix}{suffix}",
            "parameters": params,
            "responses": _responses(ok, errors),
            "tags": [self.tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk or self.gvk,
        }
        if not params:
            del o["parameters"]
        if body is not None:
            o["requestBody"] = body
        return o

    def _body(self, schema: str) -> dict[str, Any]:
        return {"content": _content(ref(schema), *_BODY_TYPES), "required": True}

    def _patch_body(self) -> dict[str, Any]:
        return {"content": {t: {"schema": ref(s)} for t, s in _PATCH_TYPES.items()}, "required": True}

    # ---------------------------------------------------------- the resource

    def collection(self, suffix: str) -> dict[str, Any]:
        """list / create / deletecollection on ``<plural>`` (in a namespace if the kind is namespaced)."""
        r, kind = self.r, self.r.kind
        item, lst = ref(r.schema), ref(list_schema(r))
        path: dict[str, Any] = {"parameters": p.path_params(r.namespaced, False, kind) + [p.PRETTY]}
        if "list" in r.verbs:
            path["get"] = self.op(
                "list",
                "list",
                suffix,
                f"list or watch objects of kind {kind}",
                p.LIST,
                {200: {_JSON: {"schema": lst}, "application/json;stream=watch": {"schema": ref("V1WatchEvent")}}},
                _ERRORS_LIST,
            )
        if "create" in r.verbs:
            obj = _content(item)
            path["post"] = self.op(
                "post",
                "create",
                suffix,
                f"create a {kind}",
                p.WRITE,
                {200: obj, 201: obj, 202: obj},
                _ERRORS_WRITE,
                body=self._body(r.schema),
            )
        if "deletecollection" in r.verbs:
            path["delete"] = self.op(
                "deletecollection",
                "delete",
                "Collection" + suffix,
                f"delete collection of {kind}",
                p.DELETE + p.LIST_FILTERS,
                {200: _content({"anyOf": [lst, ref("V1Status")]})},
                _ERRORS_DELETE + (410,),
                body=p.delete_body(),
            )
        return path

    def item(self, suffix: str) -> dict[str, Any]:
        """get / replace / patch / delete on ``<plural>/{name}``."""
        r, kind = self.r, self.r.kind
        obj = _content(ref(r.schema))
        path: dict[str, Any] = {"parameters": p.path_params(r.namespaced, True, kind) + [p.PRETTY]}
        if "get" in r.verbs:
            path["get"] = self.op("get", "read", suffix, f"read the specified {kind}", [], {200: obj}, _ERRORS_READ)
        if "update" in r.verbs:
            path["put"] = self.op(
                "put",
                "replace",
                suffix,
                f"replace the specified {kind}",
                p.WRITE,
                {200: obj, 201: obj},
                _ERRORS_WRITE,
                body=self._body(r.schema),
            )
        if "patch" in r.verbs:
            path["patch"] = self.op(
                "patch",
                "patch",
                suffix,
                f"partially update the specified {kind}",
                p.PATCH,
                {200: obj, 201: obj},
                _ERRORS_WRITE,
                body=self._patch_body(),
            )
        if "delete" in r.verbs:
            # What the server answers: the object when it stays (marked for deletion) or the kind always
            # answers it, a Status when it is gone.
            gone = ref(r.schema) if STRATEGIES[r.group_resource].return_deleted_object else None
            schema = gone or {"anyOf": [ref("V1Status"), ref(r.schema)]}
            path["delete"] = self.op(
                "delete",
                "delete",
                suffix,
                f"delete a {kind}",
                p.DELETE,
                {200: _content(schema), 202: _content(schema)},
                _ERRORS_DELETE,
                body=p.delete_body(),
            )
        return path

    def watch(self, suffix: str, named: bool, namespaced: bool) -> dict[str, Any]:
        """The deprecated ``/watch/`` paths (a list, or one object by name)."""
        kind = self.r.kind
        if named:
            desc = (
                f"watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list "
                "operation instead, filtered to a single item with the 'fieldSelector' parameter."
            )
        else:
            desc = f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        event = ref("V1WatchEvent")
        return {
            "parameters": p.path_params(namespaced, named, kind) + [p.PRETTY] + p.LIST,
            "get": self.op(
                "watch" if named else "watchlist",
                "watch",
                suffix,
                desc,
                [],
                {200: {_JSON: {"schema": event}, "application/json;stream=watch": {"schema": event}}},
                _ERRORS_LIST,
            ),
        }

    # ------------------------------------------------------- subresources

    def subresource(self, s: Subresource, suffix: str) -> dict[str, Any]:
        r, kind = self.r, self.r.kind
        path: dict[str, Any] = {"parameters": p.path_params(r.namespaced, True, kind) + [p.PRETTY]}
        sub = s.name.capitalize()
        if s.name == "log":
            path["get"] = self.op(
                "get",
                "read",
                suffix + sub,
                f"read log of the specified {kind}",
                p.LOG,
                {200: {"text/plain": {"schema": {"type": "string"}}}},
                _ERRORS_READ,
            )
            return path
        if s.name in ("binding", "eviction"):
            schema = _SUBRESOURCE_SCHEMAS[s.kind]
            status = _content(ref("V1Status"))
            path["post"] = self.op(
                "post",
                "create",
                suffix + sub,
                f"create {s.name} of a {kind}",
                p.WRITE,
                {200: status, 201: status, 202: status},
                _ERRORS_WRITE,
                gvk={"group": s.group, "version": s.version, "kind": s.kind},
                body=self._body(schema),
            )
            return path
        # status, scale, finalize: the object itself (or its Scale), read and written.
        schema = _SUBRESOURCE_SCHEMAS.get(s.kind, r.schema)
        gvk = {"group": s.group, "version": s.version, "kind": s.kind} if s.kind == "Scale" else self.gvk
        obj = _content(ref(schema))
        if "get" in s.verbs:
            path["get"] = self.op(
                "get", "read", suffix + sub, f"read {s.name} of the specified {kind}", [], {200: obj}, _ERRORS_READ, gvk
            )
        if "update" in s.verbs:
            path["put"] = self.op(
                "put",
                "replace",
                suffix + sub,
                f"replace {s.name} of the specified {kind}",
                p.WRITE,
                {200: obj, 201: obj},
                _ERRORS_WRITE,
                gvk,
                self._body(schema),
            )
        if "patch" in s.verbs:
            path["patch"] = self.op(
                "patch",
                "patch",
                suffix + sub,
                f"partially update {s.name} of the specified {kind}",
                p.PATCH,
                {200: obj, 201: obj},
                _ERRORS_WRITE,
                gvk,
                self._patch_body(),
            )
        return path


def resource_paths(r: ResourceDef) -> dict[str, Any]:
    """Every path of resource ``r``, with its operations."""
    ops = _Ops(r)
    kind, gv = r.kind, r.gv_path
    out: dict[str, Any] = {}
    scoped = f"{gv}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{gv}/{r.plural}"
    suffix = ops.scope + kind
    out[scoped] = ops.collection(suffix)
    out[scoped + "/{name}"] = ops.item(suffix)
    for s in r.subresources:
        out[f"{scoped}/{{name}}/{s.name}"] = ops.subresource(s, suffix)
    if "watch" in r.verbs:
        watch_scoped = f"{gv}/watch/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{gv}/watch/{r.plural}"
        out[watch_scoped] = ops.watch(suffix + "List", False, r.namespaced)
        out[watch_scoped + "/{name}"] = ops.watch(suffix, True, r.namespaced)
    if r.namespaced and "list" in r.verbs:
        # Across all namespaces: list and watch only.
        every = ops.collection(kind + "ForAllNamespaces")
        out[f"{gv}/{r.plural}"] = {"parameters": [p.PRETTY], "get": every["get"]}
        if "watch" in r.verbs:
            out[f"{gv}/watch/{r.plural}"] = ops.watch(kind + "ListForAllNamespaces", False, False)
    return out


def document(group: str, version: str, title_version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of ``group``/``version``."""
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    gv = f"/apis/{group}/{version}" if group else f"/api/{version}"
    prefix = camel_group(group, version)
    paths: dict[str, Any] = {
        gv + "/": {
            "get": {
                "description": "get available resources",
                "operationId": f"get{prefix}APIResources",
                "responses": _responses({200: _content(ref("V1APIResourceList"))}, (401, 403)),
                "tags": [_tag(group, version)],
            }
        }
    }
    extra: list[str] = []
    for r in rs:
        paths.update(resource_paths(r))
        for s in r.subresources:
            extra.append(_SUBRESOURCE_SCHEMAS.get(s.kind, r.schema))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (raykube)", "version": title_version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components(rs, extra),
            "securitySchemes": {"BearerToken": {"type": "apiKey", "in": "header", "name": "authorization"}},
        },
        "security": [{"BearerToken": []}],
    }
