"""Content negotiation: request bodies in, response bodies out.

In: a request body is JSON (duplicate fields noted for fieldValidation),
YAML, or the protobuf kubectl's typed ``create`` commands send (``protobuf``
decodes what it can; the rest is a 415 that says how to send it instead);
bodies over ``max_body_bytes`` are a 413. ``patch_type`` reads a PATCH's
Content-Type.

Out: JSON always; the ``Accept`` header picks the representation - the
object itself, a ``meta.k8s.io`` ``Table`` (server-side printing,
``tables``) or ``PartialObjectMetadata`` - for objects, lists and watch
events alike. Warnings collected on the way go out as ``Warning`` headers.

Concurrency: coroutines and pure functions on the API server's loop; nothing
is shared between requests.
"""

from __future__ import annotations

import json
import time
from typing import Any

import yaml
from aiohttp import web

from . import errors, jsonvalue, protobuf, tables
from .errors import APIError
from .options import WriteOptions
from .resources import ResourceDef

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "unsupported",
}
YAML_TYPES = ("application/yaml", "application/apply-patch+yaml", "text/yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"
CHUNK = 256 * 1024


# ------------------------------------------------------------------- in


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def parse_json(raw: bytes) -> tuple[Any, list[str]]:
    """The JSON document ``raw`` and the object keys it repeats (400 for anything Go's decoder refuses)."""
    dups: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in pairs:
            if k in d:
                dups.append(k)
            d[k] = v
        return d

    try:
        value = json.loads(raw, object_pairs_hook=hook, parse_constant=_no_constant)
        return jsonvalue.normalize(value, len(raw)), dups
    except RecursionError:
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: exceeded max depth of {jsonvalue.MAX_DEPTH}"
        ) from None
    except ValueError as exc:  # UnicodeDecodeError and jsonvalue.BodyError included
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


def parse_yaml(raw: bytes) -> Any:
    """The YAML document ``raw`` as JSON values (400 for what sigs.k8s.io/yaml would refuse)."""
    try:
        value = yaml.load(raw, Loader=jsonvalue.YAML_LOADER)  # a SafeLoader without timestamps
        return jsonvalue.normalize(value, len(raw), yaml_keys=True)
    except RecursionError:
        raise errors.bad_request(f"error decoding YAML: exceeded max depth of {jsonvalue.MAX_DEPTH}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # PyYAML's constructors raise plain ValueErrors too (an int or float it cannot make).
        raise errors.bad_request(f"error decoding YAML: {exc}") from None


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        await _drain(request, limit * 8)
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        total += len(chunk)
        if total > limit:
            await _drain(request, limit * 8)
            raise errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request: web.Request, budget: int) -> None:
    # Read (and drop) the rest of an oversized body so the client gets the 413 instead of a reset.
    try:
        n = 0
        async for chunk in request.content.iter_chunked(CHUNK):
            n += len(chunk)
            if n > budget:
                break
    except Exception:
        pass


async def read_object(request: web.Request, limit: int, *, required: bool = True) -> tuple[Any, list[str]]:
    """The request's body decoded as its Content-Type says, and its duplicate JSON fields."""
    raw = await read_body(request, limit)
    if not raw.strip():
        if required:
            raise errors.bad_request("the request body is empty; an object is required")
        return None, []
    ct = (request.content_type or "").lower()
    if ct in YAML_TYPES:
        return parse_yaml(raw), []
    if ct == PROTOBUF:
        try:
            return jsonvalue.normalize(protobuf.decode(raw), len(raw)), []
        except (
            ValueError,
            OverflowError,
            OSError,
            RecursionError,
        ) as exc:  # ProtobufError, bad UTF-8, a time out of range
            raise errors.APIError(
                415,
                "UnsupportedMediaType",
                f"this protobuf request body cannot be decoded "
                f"({exc}); send it as JSON or YAML instead (with kubectl: create the object "
                f"from a manifest, e.g. kubectl create ... --dry-run=client -o yaml | "
                f"kubectl apply -f -)",
            ) from None
    if ct.startswith(PROTOBUF) or ct.endswith("+cbor") or ct == "application/cbor":
        raise errors.APIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - "
            f"accepted media types include: application/json, application/yaml (got {ct})",
        )
    return parse_json(raw)


def patch_type(request: web.Request) -> str:
    """ "json", "merge", "strategic" or "apply" from a PATCH's Content-Type (415 for others)."""
    ct = (request.content_type or "").lower()
    ptype = PATCH_TYPES.get(ct)
    if ptype is None or ptype == "unsupported":
        raise errors.unsupported_media_type(ct)
    return ptype


# ------------------------------------------------------------------ out


def representation(request: web.Request) -> tuple[str, str]:
    """("json"|"table"|"partial", meta.k8s.io version) from the Accept header."""
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        p = part.replace(" ", "")
        if not p:
            continue
        if "as=Table" in p and "g=meta.k8s.io" in p:
            return "table", "v1beta1" if "v=v1beta1" in p else "v1"
        if ("as=PartialObjectMetadata" in p) and "g=meta.k8s.io" in p:
            return "partial", "v1beta1" if "v=v1beta1" in p else "v1"
        if p.startswith("application/json") or p.startswith("*/*") or p.startswith("application/*"):
            return "json", "v1"
        if p.startswith("application/yaml"):
            return "json", "v1"
    return "json", "v1"


def table(
    objs: list[dict[str, Any]],
    rdef: ResourceDef,
    meta: dict[str, Any],
    include: str,
    ver: str,
    *,
    no_headers: bool = False,
) -> dict[str, Any]:
    """``objs`` as a ``meta.k8s.io/<ver>`` Table."""
    t = tables.to_table(objs, rdef.plural, meta, time.time(), include, no_headers=no_headers)
    t["apiVersion"] = f"meta.k8s.io/{ver}"
    return t


def partial(obj: dict[str, Any], ver: str) -> dict[str, Any]:
    """``obj`` as a ``meta.k8s.io/<ver>`` PartialObjectMetadata."""
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}", "metadata": obj.get("metadata") or {}}


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> web.Response:
    body = json.dumps(obj, separators=(",", ":")).encode()
    resp = web.Response(body=body, status=status, headers=headers)
    resp.content_type = content_type
    return resp


def status_response(e: APIError) -> web.Response:
    return json_response(e.status(), e.code, e.headers)


def warning_headers(resp: web.StreamResponse, opts: WriteOptions) -> None:
    # Each warning once, as kube-apiserver's recorder dedups them: a write retried on fresh data
    # (guaranteed update) decodes its body, and finds the same unknown fields, again.
    for w in dict.fromkeys(opts.warnings):
        resp.headers.add("Warning", f"299 - {json.dumps(w)}")


def render_object(
    request: web.Request, rdef: ResourceDef, obj: dict[str, Any], status: int = 200, opts: WriteOptions | None = None
) -> web.Response:
    mode, ver = representation(request)
    if mode == "table":
        meta = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
        body: Any = table([obj], rdef, meta, request.query.get("includeObject", "Metadata"), ver)
    elif mode == "partial":
        body = partial(obj, ver)
    else:
        body = obj
    resp = json_response(body, status)
    if opts is not None:
        warning_headers(resp, opts)
    return resp


def render_list(
    request: web.Request, rdef: ResourceDef, items: list[dict[str, Any]], meta: dict[str, Any]
) -> web.Response:
    mode, ver = representation(request)
    if mode == "table":
        body: Any = table(items, rdef, meta, request.query.get("includeObject", "Metadata"), ver)
    elif mode == "partial":
        body = {
            "kind": "PartialObjectMetadataList",
            "apiVersion": f"meta.k8s.io/{ver}",
            "metadata": meta,
            "items": [partial(o, ver) for o in items],
        }
    else:
        body = {"kind": rdef.list_kind, "apiVersion": rdef.api_version, "metadata": meta, "items": items}
    return json_response(body)
