"""The Kubernetes-compatible API server: HTTP(S) front end over raftstore.

``APIServer(APIServerConfig(...))``; ``await start()`` binds and returns once
serving (default namespaces ``default``, ``kube-system``, ``kube-node-lease``,
``kube-public`` and the ``kubernetes`` service exist, created idempotently);
``await stop()``; ``url``. ``register_log_source(node, fn)`` plugs in where
``pods/log`` reads a node's container logs.

Request path: authenticate (bearer token -> 401) -> route (discovery,
OpenAPI, or ``/api|apis/.../<resource>[/<name>[/<subresource>]]`` -> 404) ->
authorise (-> 403) -> read the body (> max_body_bytes -> 413; bad JSON ->
400; JSON, YAML, or the protobuf kubectl's typed clients send) -> ``registry.Registry`` (storage semantics) -> encode (JSON, or a
``meta.k8s.io/v1 Table`` / ``PartialObjectMetadata`` when the Accept header
asks). Watches stream JSON lines from ``watch.WatchHub``.

Concurrency model: one aiohttp application on one asyncio event loop (the
caller's: a Ray async actor's, a test's, or ``python -m cluster.apiserver``);
every request is a coroutine; there are no threads and no locks. One
``RaftstoreClient`` is shared by all handlers (it multiplexes requests on a
connection per member); one ``WatchHub`` holds the single raftstore watch
that feeds every API watch. All cross-request coordination is raftstore txn
compares, so several API server processes can serve one raftstore cluster.
Service ClusterIPs come from ``service_cidr``: ``127.96.0.0/16`` by default
(the ``kubernetes`` service gets ``127.96.0.1``). It is a loopback range on
purpose: pods get 127.x addresses too, all of 127.0.0.0/8 routes locally on
Linux, and only loopback traffic is allowed where raykube runs, so the service
proxy can bind ClusterIPs for real TCP. (Kubernetes' usual ``10.96.0.0/16``
can be configured instead.) Pod address ranges must stay out of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import yaml
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from raftstore.client import RaftstoreClient

from . import auth, discovery, errors, protobuf, tables
from .errors import APIError
from .registry import Registry, WriteOptions
from .resources import ResourceDef, by_plural, group_versions, lookup
from .selector import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from .storage import Store
from .strategy import Settings
from .watch import Subscription, WatchHub, WEvent

log = logging.getLogger("cluster.apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")
# Idle client connections are kept open this long (aiohttp's default is 75 s): components keep a pool of
# long-lived connections (``cluster.client.rest``, 300 s) instead of paying a TLS handshake per burst.
KEEPALIVE_SECONDS = 330.0
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "unsupported",
}

# A log source: (namespace, pod, container, params) -> bytes | str | async iterator of bytes (or an awaitable of
# one of those). params: follow, tailLines, sinceSeconds, timestamps, previous, limitBytes (strings).
LogSource = Callable[[str, str, str, dict[str, str]], Any]


@dataclass
class APIServerConfig:
    raftstore_endpoints: list[str]
    host: str = "127.0.0.1"
    port: int = 6443
    tls_cert: str | None = None      # PEM paths; None = plain HTTP
    tls_key: str | None = None
    tokens_file: str | None = None   # JSON: {"<token>": {"user": "admin", "groups": ["system:masters"]}, ...}
    max_body_bytes: int = 3 * 1024 * 1024
    max_watches: int = 10_000
    # Additions (defaults keep the agreed interface):
    service_cidr: str = "127.96.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    bookmark_interval: float = 10.0
    # DefaultTolerationSeconds admission: new pods tolerate not-ready/unreachable nodes this long
    # (kube-apiserver's --default-not-ready/unreachable-toleration-seconds; the launcher sets its profile's).
    default_toleration_seconds: int = 300
    tokens: dict[str, Any] | None = field(default=None, repr=False)  # in-memory tokens table (tests)


def _bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1", "yes")


def _parse_json(raw: bytes) -> tuple[Any, list[str]]:
    dups: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in pairs:
            if k in d:
                dups.append(k)
            d[k] = v
        return d

    try:
        return json.loads(raw, object_pairs_hook=hook), dups
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


@dataclass
class Route:
    rdef: ResourceDef
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool


class APIServer:
    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.client: RaftstoreClient | None = None
        self.store: Store | None = None
        self.registry: Registry | None = None
        self.hub: WatchHub | None = None
        self.authn = auth.Authenticator(config.tokens_file, config.tokens)
        self._runner: web.AppRunner | None = None
        self._port = config.port
        self._log_sources: dict[str, LogSource] = {}
        self._watches: set[Subscription] = set()
        self._openapi_docs, self._openapi_hashes = discovery.build_openapi()
        self._static: dict[str, bytes] = {}
        self._http: ClientSession | None = None
        self._stopping = False

    # ----------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    def register_log_source(self, node_name: str, source: LogSource | None) -> None:
        """Serve ``pods/log`` for pods on ``node_name`` from ``source`` (None unregisters)."""
        if source is None:
            self._log_sources.pop(node_name, None)
        else:
            self._log_sources[node_name] = source

    async def start(self) -> None:
        self.client = RaftstoreClient(self.config.raftstore_endpoints, timeout=10.0, request_timeout=2.0)
        self.store = Store(self.client)
        self.registry = Registry(self.store, Settings(self.config.service_cidr, tuple(self.config.node_port_range),
                                                      self.config.default_toleration_seconds))
        self.hub = WatchHub(self.client)
        await self._bootstrap()
        app = web.Application(client_max_size=self.config.max_body_bytes + 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                     keepalive_timeout=KEEPALIVE_SECONDS)
        await self._runner.setup()
        ctx = None
        if self.config.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
            ctx.set_alpn_protocols(["http/1.1"])
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ctx, backlog=1024,
                           reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the bound port
        if server is not None and getattr(server, "sockets", None):
            self._port = server.sockets[0].getsockname()[1]
        log.info("API server serving at %s", self.url)

    async def _bootstrap(self) -> None:
        assert self.registry is not None and self.hub is not None
        nsdef = by_plural("namespaces")
        assert nsdef is not None
        deadline = time.monotonic() + 60
        while True:
            try:
                items, meta = await self.registry.list(nsdef, None, LabelSelector(), FieldSelector())
                break
            except APIError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("raftstore not ready (%s); retrying", exc)
                await asyncio.sleep(0.5)
        for o in items:
            self.registry.namespaces[o["metadata"]["name"]] = o
        self.hub.listeners.append(self.registry.on_event)
        await self.hub.start(int(meta["resourceVersion"]))
        for name in DEFAULT_NAMESPACES:
            if name in self.registry.namespaces:
                continue
            try:
                await self.registry.create(nsdef, None, {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": name}}, WriteOptions())
            except APIError as exc:
                if exc.code != 409:
                    raise
        svc = by_plural("services")
        assert svc is not None
        first_ip = str(ipaddress.ip_network(self.config.service_cidr).network_address + 1)
        try:
            await self.registry.create(svc, "default", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                           "targetPort": self.config.port or 6443}]}},
                WriteOptions())
        except APIError as exc:
            if exc.code not in (409, 422):
                raise

    async def stop(self) -> None:
        self._stopping = True
        for sub in list(self._watches):
            sub.fail(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.hub is not None:
            await self.hub.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.client is not None:
            await self.client.close()

    # ------------------------------------------------------------ plumbing

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> web.Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        resp = web.Response(body=body, status=status, headers=headers)
        resp.content_type = content_type
        return resp

    def _status(self, e: APIError) -> web.Response:
        return self._json(e.status(), e.code, e.headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except APIError as e:
            return self._status(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # pragma: no cover - reported to the client as a 500 Status
            log.exception("internal error serving %s %s", request.method, request.path)
            return self._status(errors.internal(repr(e)))

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            await self._drain(request, limit * 8)
            raise errors.too_large(limit)
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.content.iter_chunked(256 * 1024):
            total += len(chunk)
            if total > limit:
                await self._drain(request, limit * 8)
                raise errors.too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    async def _drain(request: web.Request, budget: int) -> None:
        # Read (and drop) the rest of an oversized body so the client gets the 413 instead of a reset.
        try:
            n = 0
            async for chunk in request.content.iter_chunked(256 * 1024):
                n += len(chunk)
                if n > budget:
                    break
        except Exception:
            pass

    async def _read_object(self, request: web.Request, *, required: bool = True) -> tuple[Any, list[str]]:
        raw = await self._read_body(request)
        if not raw.strip():
            if required:
                raise errors.bad_request("the request body is empty; an object is required")
            return None, []
        ct = (request.content_type or "").lower()
        if ct in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            try:
                return yaml.safe_load(raw), []
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        if ct == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(raw), []
            except protobuf.ProtobufError as exc:
                raise errors.APIError(415, "UnsupportedMediaType", f"this protobuf request body cannot be decoded "
                                      f"({exc}); send it as JSON or YAML instead (with kubectl: create the object "
                                      f"from a manifest, e.g. kubectl create ... --dry-run=client -o yaml | "
                                      f"kubectl apply -f -)") from None
        if ct.startswith("application/vnd.kubernetes.protobuf") or ct.endswith("+cbor") or ct == "application/cbor":
            raise errors.APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                  f"accepted media types include: application/json, application/yaml (got {ct})")
        return _parse_json(raw)

    def _write_options(self, request: web.Request, duplicates: list[str] | None = None) -> WriteOptions:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid dry run value "{d}": valid values are "All"')
        fv = q.get("fieldValidation", "") or "Warn"
        aliases = {"strict": "Strict", "warn": "Warn", "ignore": "Ignore"}
        if fv.lower() not in aliases:
            raise errors.bad_request(f'Invalid fieldValidation directive: "{fv}": must be one of Ignore, Warn or '
                                     "Strict")
        fm = q.get("fieldManager")
        if fm is not None and len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: must have at most 128 bytes")
        return WriteOptions(dry_run=bool(dry), field_manager=fm, field_validation=aliases[fv.lower()],
                            force=_bool(q.get("force")), duplicates=list(duplicates or []))

    @staticmethod
    def _warning_headers(resp: web.StreamResponse, opts: WriteOptions) -> None:
        for w in opts.warnings:
            resp.headers.add("Warning", f"299 - {json.dumps(w)}")

    # --------------------------------------------------------- negotiation

    @staticmethod
    def _representation(request: web.Request) -> tuple[str, str]:
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

    def _render_object(self, request: web.Request, rdef: ResourceDef, obj: dict[str, Any], status: int = 200,
                       opts: WriteOptions | None = None) -> web.Response:
        mode, ver = self._representation(request)
        if mode == "table":
            meta = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
            body: Any = tables.to_table([obj], rdef.plural, meta, time.time(),
                                        request.query.get("includeObject", "Metadata"))
            body["apiVersion"] = f"meta.k8s.io/{ver}"
        elif mode == "partial":
            body = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}",
                    "metadata": obj.get("metadata") or {}}
        else:
            body = obj
        resp = self._json(body, status)
        if opts is not None:
            self._warning_headers(resp, opts)
        return resp

    # ------------------------------------------------------------ routing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        if path in PUBLIC_PATHS:
            if path.startswith("/version"):
                return self._json(discovery.VERSION_INFO)
            return web.Response(text="ok", content_type="text/plain")
        user = self.authn.authenticate(request.headers.get("Authorization"))
        if user is None:
            raise errors.unauthorized()
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self._json({"paths": sorted({"/api", "/api/v1", "/apis", "/version", "/openapi/v3", "/healthz"}
                                               | {f"/apis/{g}/{v}" for g, v in group_versions() if g})})
        if parts[0] == "openapi":
            return self._openapi(request, parts)
        if parts[0] not in ("api", "apis"):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        route = self._route(parts, request)
        if route is None:
            return self._discovery(request, parts)
        return await self._resource(request, user, route)

    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed()
        accept = request.headers.get("Accept", "")
        if parts == ["api"] or parts == ["apis"]:
            agg = discovery.wants_aggregated(accept)
            if agg:
                key = f"agg:{parts[0]}:{agg}"
                if key not in self._static:
                    self._static[key] = json.dumps(discovery.aggregated(parts[0] == "api", agg),
                                                   separators=(",", ":")).encode()
                ct = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                resp = web.Response(body=self._static[key])
                resp.headers["Content-Type"] = ct
                resp.headers["Vary"] = "Accept"
                return resp
            if parts == ["api"]:
                return self._json(discovery.api_versions(f"{self.config.host}:{self._port}"))
            return self._json(discovery.api_group_list())
        if parts[0] == "api" and len(parts) == 2 and parts[1] == "v1":
            return self._json(discovery.resource_list("", "v1"))
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in discovery.GROUPS and parts[1]:
            return self._json(discovery.api_group(parts[1]))
        if parts[0] == "apis" and len(parts) == 3 and parts[2] in discovery.GROUPS.get(parts[1], []) and parts[1]:
            return self._json(discovery.resource_list(parts[1], parts[2]))
        raise APIError(404, "NotFound", "the server could not find the requested resource")

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts[:2] == ["openapi", "v3"]:
            if len(parts) == 2:
                return self._json(discovery.openapi_index(self._openapi_hashes))
            key = "/".join(parts[2:])
            doc = self._openapi_docs.get(key)
            if doc is not None:
                etag = f'"{self._openapi_hashes[key]}"'
                if request.headers.get("If-None-Match") == etag:
                    return web.Response(status=304, headers={"ETag": etag})
                resp = web.Response(body=doc, headers={"ETag": etag, "Cache-Control": "public, immutable"
                                                       if request.query.get("hash") else "no-cache, private"})
                resp.content_type = "application/json"
                return resp
        raise APIError(404, "NotFound", "the server could not find the requested resource")

    def _route(self, parts: list[str], request: web.Request) -> Route | None:
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
                raise APIError(404, "NotFound", "the server could not find the requested resource")
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        rdef = lookup(group, version, plural)
        if rdef is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if len(rest) > 3:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if ns is not None and not rdef.namespaced:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if rdef.namespaced and ns is None and name is not None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if sub is not None and rdef.subresource(sub) is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        return Route(rdef, ns, name, sub, watch_path)

    @staticmethod
    def _verb(request: web.Request, route: Route) -> str:
        m = request.method
        if m == "GET":
            if route.name is None:
                return "watch" if route.watch_path or _bool(request.query.get("watch")) else "list"
            return "watch" if route.watch_path else "get"
        if m == "POST":
            if route.name is not None and route.subresource not in ("binding", "eviction"):
                raise errors.method_not_allowed()
            return "create"
        if m == "PUT":
            if route.name is None:
                raise errors.method_not_allowed()
            return "update"
        if m == "PATCH":
            if route.name is None:
                raise errors.method_not_allowed()
            return "patch"
        if m == "DELETE":
            if route.subresource:
                raise errors.method_not_allowed()
            return "delete" if route.name is not None else "deletecollection"
        raise errors.method_not_allowed()

    async def _resource(self, request: web.Request, user: auth.User, route: Route) -> web.StreamResponse:
        assert self.registry is not None
        rdef, ns, name, sub = route.rdef, route.namespace, route.name, route.subresource
        verb = self._verb(request, route)
        if sub is not None:
            s = rdef.subresource(sub)
            assert s is not None
            if verb not in s.verbs:
                raise errors.method_not_allowed()
        attrs = auth.Attributes(verb, rdef.plural, sub or "", ns or "", name or "", rdef.group)
        decision = auth.authorize(user, attrs)
        if not decision.allowed:
            raise auth.forbidden(user, attrs, decision.reason)
        check = decision.object_check
        q = request.query

        if verb in ("list", "watch"):
            lsel = parse_label_selector(q.get("labelSelector"))
            fsel = parse_field_selector(q.get("fieldSelector"), rdef.allowed_field_labels, rdef.plural)
            if route.watch_path and name is not None:
                fsel = FieldSelector(fsel.requirements + parse_field_selector(f"metadata.name={name}").requirements)
            if verb == "watch":
                return await self._watch(request, rdef, ns, lsel, fsel)
            return await self._list(request, rdef, ns, lsel, fsel)

        if verb == "get":
            assert name is not None
            if sub == "log":
                return await self._pod_log(request, ns or "", name)
            obj = await self.registry.get(rdef, ns, name)
            if sub == "scale":
                return self._json(self.registry.scale_of(rdef, obj))
            return self._render_object(request, rdef, obj)

        if verb == "create":
            body, dups = await self._read_object(request)
            opts = self._write_options(request, dups)
            if sub == "binding":
                await self.registry.bind(ns or "", name or "", body, opts, check)
                return self._json(errors.success_status("pods", "", name or ""), 201)
            if sub == "eviction":
                return await self._evict(request, ns or "", name or "", body, opts, check)
            obj = await self.registry.create(rdef, ns, body, opts, check)
            return self._render_object(request, rdef, obj, 201, opts)

        if verb == "update":
            assert name is not None
            body, dups = await self._read_object(request)
            opts = self._write_options(request, dups)
            if sub == "scale":
                pinned = bool(isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion"))
                scale = await self.registry.update_scale(rdef, ns or "", name, opts, lambda cur: body, pinned)
                return self._json(scale)
            obj, created = await self.registry.update(rdef, ns, name, body, opts, check, sub)
            return self._render_object(request, rdef, obj, 201 if created else 200, opts)

        if verb == "patch":
            assert name is not None
            ct = (request.content_type or "").lower()
            ptype = PATCH_TYPES.get(ct)
            if ptype is None or ptype == "unsupported":
                raise errors.unsupported_media_type(ct)
            body, dups = await self._read_object(request)
            opts = self._write_options(request, dups)
            if sub == "scale":
                pinned = bool(isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion"))

                def make(cur: dict[str, Any]) -> dict[str, Any]:
                    return self.registry.apply_patch(rdef, cur, "strategic" if ptype == "apply" else ptype, body,
                                                     type_name="V1Scale")  # type: ignore[union-attr]
                scale = await self.registry.update_scale(rdef, ns or "", name, opts, make, pinned)
                return self._json(scale)
            obj, created = await self.registry.patch(rdef, ns, name, ptype, body, opts, check, sub)
            return self._render_object(request, rdef, obj, 201 if created else 200, opts)

        if verb == "delete":
            assert name is not None
            options = await self._delete_options(request)
            opts = self._write_options(request)
            if options.get("dryRun"):
                opts.dry_run = True
            obj, deleted = await self.registry.delete(rdef, ns, name, options, opts, check)
            if deleted and not self.registry.strategy(rdef).return_deleted_object:
                return self._json(errors.success_status(rdef.plural, rdef.group, name,
                                                        (obj.get("metadata") or {}).get("uid")))
            return self._render_object(request, rdef, obj)

        if verb == "deletecollection":
            options = await self._delete_options(request)
            opts = self._write_options(request)
            lsel = parse_label_selector(q.get("labelSelector"))
            fsel = parse_field_selector(q.get("fieldSelector"), rdef.allowed_field_labels, rdef.plural)
            items, meta = await self.registry.list(rdef, ns, lsel, fsel)
            out = []
            for it in items:
                md = it["metadata"]
                try:
                    o, _ = await self.registry.delete(rdef, md.get("namespace"), md["name"], options, opts, check)
                    out.append(o)
                except APIError as exc:
                    if exc.code != 404:
                        raise
            return self._json({"kind": rdef.list_kind, "apiVersion": rdef.api_version,
                               "metadata": {"resourceVersion": meta["resourceVersion"]}, "items": out})
        raise errors.method_not_allowed()

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body, _ = await self._read_object(request, required=False)
        options: dict[str, Any] = body if isinstance(body, dict) else {}
        if body is not None and not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        q = request.query
        if "gracePeriodSeconds" in q:
            try:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise errors.bad_request("gracePeriodSeconds must be an integer") from None
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = _bool(q["orphanDependents"])
        if q.getall("dryRun", []):
            options["dryRun"] = q.getall("dryRun")
        return options

    # --------------------------------------------------------------- list

    async def _list(self, request: web.Request, rdef: ResourceDef, ns: str | None, lsel: LabelSelector,
                    fsel: FieldSelector) -> web.Response:
        assert self.registry is not None
        q = request.query
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer") from None
        if limit < 0:
            limit = 0
        items, meta = await self.registry.list(rdef, ns, lsel, fsel, limit=limit, cont=q.get("continue") or None,
                                               rv=q.get("resourceVersion"), rv_match=q.get("resourceVersionMatch"))
        mode, ver = self._representation(request)
        if mode == "table":
            body: Any = tables.to_table(items, rdef.plural, meta, time.time(), q.get("includeObject", "Metadata"))
            body["apiVersion"] = f"meta.k8s.io/{ver}"
        elif mode == "partial":
            body = {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{ver}", "metadata": meta,
                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}",
                               "metadata": o.get("metadata") or {}} for o in items]}
        else:
            body = {"kind": rdef.list_kind, "apiVersion": rdef.api_version, "metadata": meta, "items": items}
        return self._json(body)

    # -------------------------------------------------------------- watch

    async def _watch(self, request: web.Request, rdef: ResourceDef, ns: str | None, lsel: LabelSelector,
                     fsel: FieldSelector) -> web.StreamResponse:
        assert self.registry is not None and self.hub is not None and self.store is not None
        q = request.query
        if len(self._watches) >= self.config.max_watches:
            raise errors.APIError(429, "TooManyRequests", "too many open watches; try again later",
                                  headers={"Retry-After": "1"})
        rv = q.get("resourceVersion", "") or ""
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        sie_raw = q.get("sendInitialEvents")
        send_initial = None if sie_raw is None else _bool(sie_raw)
        if send_initial is not None:
            causes = []
            if q.get("resourceVersionMatch") != "NotOlderThan":
                causes.append(errors.forbidden_field("resourceVersionMatch", "sendInitialEvents requires setting "
                                                     "resourceVersionMatch to NotOlderThan"))
            if send_initial and not bookmarks:
                causes.append(errors.forbidden_field("allowWatchBookmarks", "sendInitialEvents requires setting "
                                                     "allowWatchBookmarks to true"))
            if causes:
                raise errors.invalid_object("ListOptions", "meta.k8s.io", "", causes)
        try:
            timeout = float(q.get("timeoutSeconds")) if q.get("timeoutSeconds") else 1800 * (1 + random.random())
        except ValueError:
            raise errors.bad_request("timeoutSeconds must be a number") from None
        initial = send_initial is True or (send_initial is None and rv in ("", "0"))
        after = 0
        if not initial:
            if rv in ("", "0"):
                after = self.hub.last_revision
            else:
                try:
                    after = int(rv)
                except ValueError:
                    raise errors.bad_request(f'invalid resource version "{rv}"') from None
        mode, ver = self._representation(request)
        include = q.get("includeObject", "Metadata")
        filtering = not lsel.empty or not fsel.empty
        prefix = rdef.key_prefix(ns)

        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        first = [True]

        def encode(etype: str, obj: dict[str, Any], ev: WEvent | None = None) -> bytes:
            if mode == "table" and etype in ("ADDED", "MODIFIED", "DELETED"):
                t = tables.to_table([obj], rdef.plural, {"resourceVersion": obj["metadata"].get("resourceVersion",
                                                                                                "")},
                                    time.time(), include, no_headers=not first[0])
                t["apiVersion"] = f"meta.k8s.io/{ver}"
                first[0] = False
                return json.dumps({"type": etype, "object": t}, separators=(",", ":")).encode() + b"\n"
            if mode == "partial" and etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}",
                       "metadata": obj.get("metadata") or {}}
            elif ev is not None:
                return ev.line(etype)
            return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"

        def bookmark(rev: int, initial_end: bool = False) -> bytes:
            md: dict[str, Any] = {"resourceVersion": str(rev)}
            if initial_end:
                md["annotations"] = {"k8s.io/initial-events-end": "true"}
            kind = rdef.kind
            api_version = rdef.api_version
            if mode == "table":
                kind, api_version = "Table", f"meta.k8s.io/{ver}"
            elif mode == "partial":
                kind, api_version = "PartialObjectMetadata", f"meta.k8s.io/{ver}"
            return json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                                                              "metadata": md}}, separators=(",", ":")).encode() + b"\n"

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            return lsel.matches((obj.get("metadata") or {}).get("labels")) and fsel.matches(obj)

        sub: Subscription | None = None
        initial_items: list[dict[str, Any]] = []
        snapshot = 0
        if initial:
            initial_items, meta = await self.registry.list(rdef, ns, lsel, fsel)
            snapshot = int(meta["resourceVersion"])
            sub = self.hub.subscribe(prefix, snapshot)
        else:
            if after:
                # 410 for a start point raftstore has compacted, even if the hub's buffer still holds it,
                # so every API server replica answers alike.
                try:
                    await self.store.check_revision(after)
                except APIError as exc:
                    if exc.code != 410:
                        raise
                    await resp.prepare(request)
                    st = errors.gone(f"too old resource version: {after} ({exc.message})").status()
                    await resp.write(json.dumps({"type": "ERROR", "object": st}, separators=(",", ":")).encode()
                                     + b"\n")
                    await resp.write_eof()
                    return resp
            sub = self.hub.subscribe(prefix, after)
        self._watches.add(sub)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_bookmark = loop.time()
        last_rv = snapshot or after
        try:
            await resp.prepare(request)
            if initial:
                buf = [encode("ADDED", o) for o in initial_items]
                if send_initial and bookmarks:
                    buf.append(bookmark(snapshot, initial_end=True))
                    last_bookmark = loop.time()
                if buf:
                    await resp.write(b"".join(buf))
            while not self._stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    ev = await sub.next(min(1.0, remaining))
                except StopAsyncIteration:
                    if sub.error is not None:
                        await resp.write(json.dumps({"type": "ERROR", "object": sub.error.status()},
                                                    separators=(",", ":")).encode() + b"\n")
                    break
                if ev is None:
                    if request.transport is None or request.transport.is_closing():
                        break
                    if bookmarks and loop.time() - last_bookmark >= self.config.bookmark_interval:
                        rev = sub.progress_revision()
                        if rev > last_rv:
                            last_rv = rev
                        await resp.write(bookmark(last_rv))
                        last_bookmark = loop.time()
                    continue
                out = self._translate(ev, filtering, matches)
                last_rv = ev.revision
                if out is None:
                    continue
                etype, obj = out
                chunks = [encode(etype, obj, None if (filtering and etype != _natural(ev)) else ev)]
                # Drain whatever else is already queued into one write.
                while sub.queue and len(chunks) < 500:
                    ev = sub.queue.popleft()
                    sub.last_revision = ev.revision
                    last_rv = ev.revision
                    out = self._translate(ev, filtering, matches)
                    if out is not None:
                        chunks.append(encode(out[0], out[1], None if (filtering and out[0] != _natural(ev)) else ev))
                await resp.write(b"".join(chunks))
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watches.discard(sub)
            sub.close()
        try:
            await resp.write_eof()
        except Exception:
            pass
        return resp

    @staticmethod
    def _translate(ev: WEvent, filtering: bool, matches: Callable[[dict[str, Any] | None], bool]
                   ) -> tuple[str, dict[str, Any]] | None:
        obj = ev.obj()
        if obj is None:
            return None
        if ev.type == "DELETE":
            return ("DELETED", obj) if (not filtering or matches(obj)) else None
        if ev.prev_value is None:
            return ("ADDED", obj) if (not filtering or matches(obj)) else None
        if not filtering:
            return "MODIFIED", obj
        cur, prev = matches(obj), matches(ev.prev())
        if cur and prev:
            return "MODIFIED", obj
        if cur:
            return "ADDED", obj
        if prev:
            return "DELETED", obj
        return None

    # ---------------------------------------------------- pod subresources

    async def _evict(self, request: web.Request, ns: str, name: str, body: Any, opts: WriteOptions,
                     check: Any) -> web.Response:
        assert self.registry is not None
        pods = by_plural("pods")
        assert pods is not None
        if not isinstance(body, dict) or body.get("kind") not in (None, "", "Eviction"):
            raise errors.bad_request("an Eviction (policy/v1) is required")
        ename = (body.get("metadata") or {}).get("name")
        if ename and ename != name:
            raise errors.bad_request(f"name in URL does not match name in Eviction object")
        options = body.get("deleteOptions") or {}
        if options.get("dryRun"):
            opts.dry_run = True
        await self.registry.delete(pods, ns, name, options, opts, check)
        return self._json(errors.success_status("pods", "", name), 201)

    async def _pod_log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        assert self.registry is not None
        pods = by_plural("pods")
        assert pods is not None
        pod = await self.registry.get(pods, ns, name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        all_names = names + [c.get("name") for c in spec.get("initContainers") or []]
        container = request.query.get("container")
        if not container:
            if len(names) != 1:
                raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                         f"[{' '.join(str(n) for n in names)}]")
            container = names[0]
        elif container not in all_names:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        node = spec.get("nodeName")
        if not node:
            raise errors.bad_request(f'pod "{name}" does not have a host assigned')
        params = {k: v for k, v in request.query.items()
                  if k in ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes")}
        source = self._log_sources.get(node)
        if source is not None:
            return await self._stream_log(request, source(ns, name, container, params))
        url = await self._kubelet_log_url(node, ns, name, container)
        if url is None:
            raise errors.unavailable(f'no log source for node "{node}": its kubelet has not registered a log '
                                     f"endpoint (Node status.daemonEndpoints.kubeletEndpoint.Port is unset and no "
                                     f"log source is registered with the API server), so logs of pod {ns}/{name} "
                                     f"cannot be read yet")
        return await self._proxy_log(request, url, params, node)

    async def _kubelet_log_url(self, node: str, ns: str, pod: str, container: str) -> str | None:
        assert self.registry is not None
        nodes = by_plural("nodes")
        assert nodes is not None
        try:
            n = await self.registry.get(nodes, None, node)
        except APIError as exc:
            if exc.code == 404:
                return None
            raise
        st = n.get("status") or {}
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not port:
            return None
        addr = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"),
                    None) or "127.0.0.1"
        scheme = ((n.get("metadata") or {}).get("annotations") or {}).get("raykube.io/kubelet-scheme", "http")
        host = f"[{addr}]" if ":" in addr else addr
        return f"{scheme}://{host}:{port}/containerLogs/{ns}/{pod}/{container}"

    async def _proxy_log(self, request: web.Request, url: str, params: dict[str, str], node: str
                         ) -> web.StreamResponse:
        if self._http is None:
            self._http = ClientSession(connector=TCPConnector(ssl=False),
                                       timeout=ClientTimeout(total=None, sock_connect=5))
        try:
            upstream = await self._http.get(url, params=params)
        except Exception as exc:
            raise errors.unavailable(f'the kubelet of node "{node}" is not reachable at {url}: {exc}') from None
        async with upstream:
            if upstream.status != 200:
                text = await upstream.text()
                if upstream.headers.get("Content-Type", "").startswith("application/json"):
                    try:
                        st = json.loads(text)
                        if st.get("kind") == "Status":
                            return self._json(st, upstream.status)
                    except ValueError:
                        pass
                raise errors.APIError(upstream.status if upstream.status >= 400 else 502, "InternalError",
                                      f"kubelet of node {node}: {text.strip()[:500]}")
            resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (ConnectionResetError, ConnectionError):
                pass
            await resp.write_eof()
            return resp

    async def _stream_log(self, request: web.Request, result: Any) -> web.StreamResponse:
        if isinstance(result, Awaitable) and not hasattr(result, "__aiter__"):
            result = await result
        if isinstance(result, str):
            result = result.encode()
        if isinstance(result, (bytes, bytearray)):
            resp = web.Response(body=bytes(result))
            resp.content_type = "text/plain"
            return resp
        resp2 = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await resp2.prepare(request)
        try:
            async for chunk in _aiter(result):
                await resp2.write(chunk.encode() if isinstance(chunk, str) else chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        await resp2.write_eof()
        return resp2


def _natural(ev: WEvent) -> str:
    if ev.type == "DELETE":
        return "DELETED"
    return "ADDED" if ev.prev_value is None else "MODIFIED"


async def _aiter(it: Any) -> AsyncIterator[Any]:
    if hasattr(it, "__aiter__"):
        async for x in it:
            yield x
    else:
        for x in it:
            yield x

