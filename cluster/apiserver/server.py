"""The Kubernetes-compatible API server: HTTP(S) front end over raftstore.

``APIServer(APIServerConfig(...))``; ``await start()`` binds and returns once
serving (default namespaces ``default``, ``kube-system``, ``kube-node-lease``,
``kube-public`` and the ``kubernetes`` service exist, created idempotently);
``await stop()``; ``url``. ``register_log_source(node, fn)`` plugs in where
``pods/log`` reads a node's container logs.

Request path: authenticate (bearer token -> 401) -> route (discovery,
OpenAPI, or ``/api|apis/.../<resource>[/<name>[/<subresource>]]``, see
``routing``; -> 404) -> authorise (``auth``; -> 403) -> a verb the path
does not serve (``routing.served_verbs``) -> 405 -> read the body
(``negotiation``: > max_body_bytes -> 413; bad JSON -> 400; JSON, YAML, or
the protobuf kubectl's typed clients send) -> ``registry.Registry``
(storage semantics; ``subresources`` for binding, eviction and scale) ->
encode (``negotiation``: JSON, or a ``meta.k8s.io/v1 Table`` /
``PartialObjectMetadata`` when the Accept header asks). Watches stream JSON
lines from ``watch.WatchHub`` (``watchstream``); ``pods/log`` comes from a
log source or the pod's kubelet (``logs``). A collection DELETE is
``deletecollection``. Every response carries an ``Audit-Id`` header, the
request's id; an exception that is not an ``APIError`` is a bug, logged once
with that id and its traceback and answered as a 500 Status. A request
aiohttp cannot parse (a NUL byte in a header) gets aiohttp's 400 and one
warning line in the log (``ProtocolErrorLogger``).

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
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from raftstore.client import RaftstoreClient

from . import auth, discovery, errors, subresources
from .deletecollection import delete_collection
from .errors import APIError
from .lifecycle import ObjectCheck
from .logs import LogSource, PodLogs
from .negotiation import (
    json_response,
    patch_type,
    read_object,
    render_list,
    render_object,
    status_response,
    warning_headers,
)
from .options import WriteOptions, delete_options, list_limit, write_options
from .registry import Registry
from .resources import group_versions, served
from .routing import PUBLIC_PATHS, Route, check_served, not_found, route, verb
from .selector import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from .storage import Store
from .strategy import Settings
from .watch import WatchHub
from .watchstream import WatchStreamer

log = logging.getLogger("cluster.apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")
# Where a request keeps its id (a typed key where aiohttp has them: 3.13 and later).
REQUEST_ID: Any = web.RequestKey("request_id", str) if hasattr(web, "RequestKey") else "request_id"
# Idle client connections are kept open this long (aiohttp's default is 75 s): components keep a pool of
# long-lived connections (``cluster.client.rest``, 300 s) instead of paying a TLS handshake per burst.
KEEPALIVE_SECONDS = 330.0


@dataclass
class APIServerConfig:
    raftstore_endpoints: list[str]
    host: str = "127.0.0.1"
    port: int = 6443
    tls_cert: str | None = None  # PEM paths; None = plain HTTP
    tls_key: str | None = None
    tokens_file: str | None = None  # JSON: {"<token>": {"user": "admin", "groups": ["system:masters"]}, ...}
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


class APIServer:
    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.client: RaftstoreClient | None = None
        self.store: Store | None = None
        self.registry: Registry | None = None
        self.hub: WatchHub | None = None
        self.watches: WatchStreamer | None = None
        self.logs = PodLogs()
        self.authn = auth.Authenticator(config.tokens_file, config.tokens)
        self._runner: web.AppRunner | None = None
        self._port = config.port
        self._openapi_docs, self._openapi_hashes = discovery.build_openapi()
        self._static: dict[str, bytes] = {}

    # ----------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    def register_log_source(self, node_name: str, source: LogSource | None) -> None:
        """Serve ``pods/log`` for pods on ``node_name`` from ``source`` (None unregisters)."""
        self.logs.register(node_name, source)

    async def start(self) -> None:
        self.client = RaftstoreClient(self.config.raftstore_endpoints, timeout=10.0, request_timeout=2.0)
        self.store = Store(self.client)
        lo, hi = self.config.node_port_range
        self.registry = Registry(
            self.store, Settings(self.config.service_cidr, (lo, hi), self.config.default_toleration_seconds)
        )
        self.hub = WatchHub(self.client)
        self.watches = WatchStreamer(
            self.registry,
            self.hub,
            self.store,
            max_watches=self.config.max_watches,
            bookmark_interval=self.config.bookmark_interval,
        )
        await self._bootstrap()
        app = web.Application(client_max_size=self.config.max_body_bytes + 1024)
        # [\s\S]: a newline (%0A) in a path segment must reach the handler too, for a Status 404
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        app.on_response_prepare.append(_audit_id)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            keepalive_timeout=KEEPALIVE_SECONDS,
            logger=ProtocolErrorLogger(logging.getLogger("aiohttp.server"), {}),
        )
        await self._runner.setup()
        ctx = None
        if self.config.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
            ctx.set_alpn_protocols(["http/1.1"])
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=ctx, backlog=1024, reuse_address=True
        )
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the bound port
        if server is not None and getattr(server, "sockets", None):
            self._port = server.sockets[0].getsockname()[1]
        log.info("API server serving at %s", self.url)

    async def _bootstrap(self) -> None:
        assert self.registry is not None and self.hub is not None
        nsdef = served("namespaces")
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
        namespaces = self.registry.namespace_lifecycle.namespaces
        for o in items:
            namespaces[o["metadata"]["name"]] = o
        self.hub.listeners.append(self.registry.on_event)
        await self.hub.start(int(meta["resourceVersion"]))
        for name in DEFAULT_NAMESPACES:
            if name in namespaces:
                continue
            try:
                await self.registry.create(
                    nsdef, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, WriteOptions()
                )
            except APIError as exc:
                if exc.code != 409:
                    raise
        svc = served("services")
        first_ip = str(ipaddress.ip_network(self.config.service_cidr).network_address + 1)
        try:
            await self.registry.create(
                svc,
                "default",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                    "spec": {
                        "clusterIP": first_ip,
                        "ports": [
                            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.config.port or 6443}
                        ],
                    },
                },
                WriteOptions(),
            )
        except APIError as exc:
            if exc.code not in (409, 422):
                raise

    async def stop(self) -> None:
        if self.watches is not None:
            self.watches.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.hub is not None:
            await self.hub.stop()
        await self.logs.close()
        if self.client is not None:
            await self.client.close()

    # ------------------------------------------------------------ routing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Every response carries the request's id (Audit-Id, as kube-apiserver's): the key to its log lines.
        rid = request[REQUEST_ID] = str(uuid.uuid4())
        try:
            return await self._dispatch(request)
        except APIError as e:
            return status_response(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:
            # Anything else is a bug: logged here, once, with its traceback, and answered as a 500 Status.
            log.exception("internal error serving request %s: %s %r", rid, request.method, request.path)
            return status_response(errors.internal(f"{e!r} (request {rid})"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        if path in PUBLIC_PATHS:
            if path.startswith("/version"):
                return json_response(discovery.VERSION_INFO)
            return web.Response(text="ok", content_type="text/plain")
        user = self.authn.authenticate(request.headers.get("Authorization"))
        if user is None:
            raise errors.unauthorized()
        parts = [p for p in path.split("/") if p]
        if not parts:
            return json_response(
                {
                    "paths": sorted(
                        {"/api", "/api/v1", "/apis", "/version", "/openapi/v3", "/healthz"}
                        | {f"/apis/{g}/{v}" for g, v in group_versions() if g}
                    )
                }
            )
        if parts[0] == "openapi":
            return self._openapi(request, parts)
        if parts[0] not in ("api", "apis"):
            raise not_found()
        r = route(parts)
        if r is None:
            return self._discovery(request, parts)
        return await self._resource(request, user, r)

    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed()
        accept = request.headers.get("Accept", "")
        if parts == ["api"] or parts == ["apis"]:
            agg = discovery.wants_aggregated(accept)
            if agg:
                key = f"agg:{parts[0]}:{agg}"
                if key not in self._static:
                    self._static[key] = json.dumps(
                        discovery.aggregated(parts[0] == "api", agg), separators=(",", ":")
                    ).encode()
                ct = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                resp = web.Response(body=self._static[key])
                resp.headers["Content-Type"] = ct
                resp.headers["Vary"] = "Accept"
                return resp
            if parts == ["api"]:
                return json_response(discovery.api_versions(f"{self.config.host}:{self._port}"))
            return json_response(discovery.api_group_list())
        if parts[0] == "api" and len(parts) == 2 and parts[1] == "v1":
            return json_response(discovery.resource_list("", "v1"))
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in discovery.GROUPS and parts[1]:
            return json_response(discovery.api_group(parts[1]))
        if parts[0] == "apis" and len(parts) == 3 and parts[2] in discovery.GROUPS.get(parts[1], []) and parts[1]:
            return json_response(discovery.resource_list(parts[1], parts[2]))
        raise not_found()

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts[:2] == ["openapi", "v3"]:
            if len(parts) == 2:
                return json_response(discovery.openapi_index(self._openapi_hashes))
            key = "/".join(parts[2:])
            doc = self._openapi_docs.get(key)
            if doc is not None:
                etag = f'"{self._openapi_hashes[key]}"'
                if request.headers.get("If-None-Match") == etag:
                    return web.Response(status=304, headers={"ETag": etag})
                resp = web.Response(
                    body=doc,
                    headers={
                        "ETag": etag,
                        "Cache-Control": "public, immutable" if request.query.get("hash") else "no-cache, private",
                    },
                )
                resp.content_type = "application/json"
                return resp
        raise not_found()

    # ----------------------------------------------------------- resources

    async def _resource(self, request: web.Request, user: auth.User, r: Route) -> web.StreamResponse:
        assert self.registry is not None and self.watches is not None
        registry = self.registry
        rdef, ns, name, sub = r.rdef, r.namespace, r.name, r.subresource
        q = request.query
        v = verb(request.method, q, r)
        attrs = auth.Attributes(v, rdef.plural, sub or "", ns or "", name or "", rdef.group)
        decision = auth.authorize(user, attrs)
        if not decision.allowed:
            raise auth.forbidden(user, attrs, decision.reason)
        check_served(v, r)  # after authorisation, as kube-apiserver (its router) answers 405s
        check = decision.object_check
        limit = self.config.max_body_bytes

        if v in ("list", "watch"):
            lsel = parse_label_selector(q.get("labelSelector"))
            fsel = parse_field_selector(q.get("fieldSelector"), rdef.allowed_field_labels, rdef.plural)
            if r.watch_path and name is not None:
                fsel = FieldSelector(fsel.requirements + parse_field_selector(f"metadata.name={name}").requirements)
            if v == "watch":
                return await self.watches.serve(request, rdef, ns, lsel, fsel)
            items, meta = await registry.list(
                rdef,
                ns,
                lsel,
                fsel,
                limit=list_limit(q),
                cont=q.get("continue") or None,
                rv=q.get("resourceVersion"),
                rv_match=q.get("resourceVersionMatch"),
            )
            return render_list(request, rdef, items, meta)

        if v == "get":
            assert name is not None
            if sub == "log":
                return await self.logs.serve(request, registry, ns or "", name)
            obj = await registry.get(rdef, ns, name)
            if sub == "scale":
                return json_response(subresources.scale_of(obj))
            return render_object(request, rdef, obj)

        if v == "create":
            body, dups = await read_object(request, limit)
            opts = write_options(q, dups)
            if sub == "binding":
                await subresources.bind(registry, rdef, ns or "", name or "", body, opts, check)
                return _success(rdef.plural, rdef.group, name or "", opts, 201)
            if sub == "eviction":
                await subresources.evict(registry, rdef, ns or "", name or "", body, opts, check)
                return _success(rdef.plural, rdef.group, name or "", opts, 201)
            obj = await registry.create(rdef, ns, body, opts, check)
            return render_object(request, rdef, obj, 201, opts)

        if v in ("update", "patch"):
            assert name is not None
            ptype = patch_type(request) if v == "patch" else None
            body, dups = await read_object(request, limit)
            opts = write_options(q, dups)
            if sub == "scale":
                scale = await subresources.write_scale(registry, rdef, ns or "", name, ptype, body, opts)
                resp = json_response(scale)
                warning_headers(resp, opts)
                return resp
            if ptype is None:
                obj, created = await registry.update(rdef, ns, name, body, opts, check, sub)
            else:
                obj, created = await registry.patch(rdef, ns, name, ptype, body, opts, check, sub)
            return render_object(request, rdef, obj, 201 if created else 200, opts)

        options = await self._delete_options(request)
        opts = write_options(q)
        if options.get("dryRun"):
            opts.dry_run = True
        if v == "delete":
            assert name is not None
            obj, deleted = await registry.delete(rdef, ns, name, options, opts, check)
            if deleted and not registry.strategy(rdef).return_deleted_object:
                uid = (obj.get("metadata") or {}).get("uid")
                return json_response(errors.success_status(rdef.plural, rdef.group, name, uid))
            return render_object(request, rdef, obj)

        assert v == "deletecollection"
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = parse_field_selector(q.get("fieldSelector"), rdef.allowed_field_labels, rdef.plural)

        def authorize_item(obj: dict[str, Any]) -> ObjectCheck:
            md = obj.get("metadata") or {}
            a = auth.Attributes("delete", rdef.plural, "", md.get("namespace") or "", md.get("name") or "", rdef.group)
            d = auth.authorize(user, a)
            if not d.allowed:
                raise auth.forbidden(user, a, d.reason)
            return _both(check, d.object_check)

        out, meta = await delete_collection(registry, rdef, ns, lsel, fsel, options, opts, authorize_item)
        body = {"kind": rdef.list_kind, "apiVersion": rdef.api_version, "metadata": meta, "items": out}
        return json_response(body)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body, _ = await read_object(request, self.config.max_body_bytes, required=False)
        return delete_options(body, request.query)


def _success(plural: str, group: str, name: str, opts: WriteOptions, code: int) -> web.Response:
    resp = json_response(errors.success_status(plural, group, name), code)
    warning_headers(resp, opts)
    return resp


def _both(first: ObjectCheck, second: ObjectCheck) -> ObjectCheck:
    """One object check that runs both (either may be None)."""
    if first is None or second is None:
        return first or second

    def check(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        assert first is not None and second is not None
        first(old, new)
        second(old, new)

    return check


async def _audit_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID)
    if rid:
        response.headers["Audit-Id"] = rid


class ProtocolErrorLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, with a request it could not parse (a NUL byte in a header, a bad request line)
    logged as one warning line: the client got its 400, and the traceback would only say where aiohttp's
    parser noticed. Anything else aiohttp logs (a real failure) keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.warning("rejected a malformed HTTP request: %s", " ".join(str(exc_info).split()))
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)
