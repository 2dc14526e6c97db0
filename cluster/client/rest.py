"""Async REST client for the raykube (Kubernetes) API, over aiohttp.

One ``Client`` per component (or per process), bearer token, the cluster CA,
and two ``aiohttp`` sessions inside it:

- requests share a pool of at most ``max_connections`` (16) keep-alive
  connections: a burst of concurrent calls queues for a connection instead
  of opening new ones. client-go multiplexes everything over one long-lived
  HTTP/2 connection; on HTTP/1.1 a bounded pool of long-lived connections
  (idle ones kept ``KEEPALIVE_SECONDS``; the API server keeps them longer)
  does the same job, and ``open_connections()`` fills the pool when a
  component starts. A new connection is a TCP connect plus a TLS handshake,
  several round trips through two event loops: on this 2-core machine, in a
  burst of 100 pod starts, one took up to 0.5 s while a request on an open
  connection took ~30 ms, and a kubelet syncing 33 pods at once opened one
  per pod (``0`` = no bound; the API server benchmark uses that to measure
  the server, not the client);
- watches get their own, unbounded pool: a watch holds its connection for
  its whole life, so informers can never starve requests (or the reverse).

Reconnection and retries (what makes a restarted API server invisible to the
components above):

- The request never reached the server (connection refused, DNS, TLS
  handshake) -> retried for any verb until ``retry_deadline``, with jittered
  exponential back-off (50 ms doubling to 1 s). This is what happens while
  the API server actor is being restarted by Ray.
- The connection broke after the request was sent (reset, server
  disconnected, read timeout) -> retried only for reads (GET/HEAD);
  a write raises ``UnknownOutcome`` (the write may or may not have
  happened; the caller decides, as with client-go).
- 429 Too Many Requests -> retried for any verb after ``Retry-After``
  (Kubernetes never processes a 429'd request); 503/504 -> retried for reads.
- Every other HTTP error raises ``ApiError`` with the server's ``Status``
  (``code``, ``reason``, ``message``, ``details``); the error types are in
  ``errors``.

Client-side rate limiting (client-go's QPS/Burst token bucket, ``flowcontrol``)
is off unless ``qps`` is given. Watch streams are decoded by ``watch``.

Concurrency: a ``Client`` belongs to one event loop at a time (its sessions are
made anew when it is used from another loop); any number of tasks on that loop
may share it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import select
import ssl
from typing import Any, AsyncIterator, Mapping

import aiohttp

from ..kubeconfig import KubeConfig
from ..kubeconfig import load as load_kubeconfig
from .errors import ApiError, Unavailable, UnknownOutcome, WatchDisconnected, error_from_response
from .flowcontrol import TokenBucket
from .resources import Resource
from .watch import WatchEvent, WatchStreamDecoder

# Idle pooled connections are kept this long (aiohttp's default is 15 s; Go's 90 s). The API server keeps
# them open a little longer (``cluster.apiserver.server.KEEPALIVE_SECONDS``), so the client closes first.
KEEPALIVE_SECONDS = 300.0

log = logging.getLogger("raykube.client")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class Client:
    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        ca_data: bytes | str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        retry_deadline: float = 30.0,
        qps: float = 0.0,
        burst: int = 0,
        max_connections: int = 16,
        user_agent: str = "raykube-client/0.1",
        namespace: str = "default",
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_deadline = retry_deadline
        self.user_agent = user_agent
        self.namespace = namespace
        self.max_connections = max_connections
        self._ssl: ssl.SSLContext | bool | None = None
        if self.server.startswith("https://"):
            if insecure:
                self._ssl = False
            else:
                cadata = ca_data.decode() if isinstance(ca_data, bytes) else ca_data
                self._ssl = ssl.create_default_context(cafile=ca_file, cadata=cadata)
        self._limiter = TokenBucket(qps, burst or max(1, int(qps))) if qps > 0 else None
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"requests": 0, "retries": 0, "reconnects": 0}

    # ------------------------------------------------------------- setup
    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kw: Any) -> "Client":
        kc: KubeConfig = load_kubeconfig(path, context)
        return cls(
            kc.server,
            token=kc.token,
            ca_file=kc.ca_file,
            ca_data=kc.ca_data,
            insecure=kc.insecure,
            namespace=kc.namespace,
            **kw,
        )

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = aiohttp.TCPConnector(
            ssl=self._ssl if self._ssl is not None else False,
            limit=limit,
            keepalive_timeout=KEEPALIVE_SECONDS,
            enable_cleanup_closed=True,
        )
        return aiohttp.ClientSession(connector=conn, headers=headers, auto_decompress=True)

    def _sess(self) -> aiohttp.ClientSession:
        """The session for requests (bounded pool)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = self._new_session(self.max_connections)
            self._watch_session = None  # a new loop: the old watch session belongs to the old one
            self._loop = loop
        return self._session

    def _watch_sess(self) -> aiohttp.ClientSession:
        """The session for watches (one connection each, unbounded)."""
        self._sess()
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)
        return self._watch_session

    async def open_connections(self, n: int | None = None) -> int:
        """Open up to ``n`` (default ``max_connections``) pooled connections now, with as many concurrent
        ``GET /version`` calls, so that the first burst of work does not pay for TLS handshakes while the
        API server is busy. Best effort: returns how many calls succeeded."""
        n = self.max_connections if n is None else n
        if n <= 0:
            return 0

        async def one(retry: bool) -> bool:
            try:
                await self.request("GET", "/version", retry=retry, timeout=10.0)
                return True
            except (ApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError):
                return False

        if not await one(True):  # waits (up to retry_deadline) for a server that is still starting
            return 0
        return 1 + sum(await asyncio.gather(*(one(False) for _ in range(n - 1))))

    async def _settle_idle_connections(self, max_rounds: int = 16) -> None:
        """Before a write: let the loop finish reading whatever is pending on idle pooled connections.

        A keep-alive connection whose server died (an API server actor SIGKILLed and restarted by Ray)
        has its EOF waiting in the socket; over TLS it takes the loop ~3 iterations to turn that into
        a closed connection that the pool drops. A write sent on it before then gets a reset and ends as
        ``UnknownOutcome``, although the server never saw it. So: while any idle connection's socket is
        readable (one ``select`` with no timeout; nothing is readable on a healthy idle connection, bar
        a TLS session ticket the loop will consume), yield to the loop. Reads are retried anyway."""
        sess = self._session
        conns = getattr(sess.connector, "_conns", None) if sess is not None and sess.connector else None
        if not conns:
            return
        for _ in range(max_rounds):
            fds: list[int] = []
            for idle in list(conns.values()):
                for proto, _t in list(idle):
                    sock = proto.transport.get_extra_info("socket") if proto.transport is not None else None
                    if sock is not None and sock.fileno() >= 0:
                        fds.append(sock.fileno())
            if not fds:
                return
            try:
                readable, _, _ = select.select(fds, [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                return
            await asyncio.sleep(0)

    async def close(self) -> None:
        for sess in (self._session, self._watch_session):
            if sess is not None and not sess.closed:
                await sess.close()
        self._session = None
        self._watch_session = None

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _throttle(self) -> None:
        if self._limiter is not None:
            wait = self._limiter.reserve()
            if wait > 0:
                await asyncio.sleep(wait)

    # ----------------------------------------------------------- request
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        raw: bool = False,
        retry: bool = True,
    ) -> Any:
        """One API call with reconnect/retry (see the module doc). Returns parsed JSON (or bytes if ``raw``)."""
        method = method.upper()
        idempotent = method in READ_METHODS
        data: bytes | None = None
        hdrs: dict[str, str] = dict(headers or {})
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = content_type or "application/json"
        q = _params(params)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.retry_deadline if retry else 0.0)
        backoff = 0.05
        attempt = 0
        url = self.server + path
        while True:
            attempt += 1
            await self._throttle()
            if not idempotent:
                await self._settle_idle_connections()
            self.stats["requests"] += 1
            sent = False
            try:
                sess = self._sess()
                async with sess.request(
                    method,
                    url,
                    params=q,
                    data=data,
                    headers=hdrs,
                    timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
                ) as resp:
                    sent = True
                    payload = await resp.read()
                    if resp.status < 400:
                        if raw:
                            return payload
                        return json.loads(payload) if payload else None
                    err = error_from_response(resp.status, payload, resp.headers)
            except aiohttp.ClientConnectorCertificateError as exc:  # not transient: don't retry
                raise Unavailable(
                    f"{method} {path}: TLS verification of {self.server} failed (wrong CA?): {exc.certificate_error}"
                ) from exc
            except aiohttp.ClientConnectorError as exc:  # never reached the server: safe to retry
                err_exc: Exception = exc
                err = None
            except (
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError,
                aiohttp.ClientPayloadError,
                asyncio.TimeoutError,
                ConnectionError,
            ) as exc:
                err_exc = exc
                err = None
                if not idempotent:
                    # A write was (maybe partly) sent and the connection broke: the
                    # server may have applied it. Not ours to guess (client-go neither).
                    raise UnknownOutcome(
                        f"{method} {path}: connection lost after sending "
                        f"({'response started' if sent else 'no response'}): {exc!r}"
                    ) from exc
            if err is not None:
                retryable = err.code == 429 or (idempotent and err.code in (502, 503, 504))
                if not retryable or not retry:
                    raise err
                wait = err.retry_after if err.retry_after is not None else backoff
            else:
                self.stats["reconnects"] += 1
                if not retry:
                    raise Unavailable(f"{method} {path}: {err_exc!r}") from err_exc
                wait = backoff
            remaining = deadline - loop.time()
            if remaining <= 0:
                if err is not None:
                    raise err
                raise Unavailable(
                    f"{method} {path}: server unreachable for {self.retry_deadline:.0f} s "
                    f"({attempt} attempts); last error: {err_exc!r}"
                ) from err_exc
            self.stats["retries"] += 1
            await asyncio.sleep(min(remaining, wait * (0.5 + random.random() / 2)))
            backoff = min(backoff * 2, 1.0)

    async def wait_ready(self, timeout: float = 30.0) -> float:
        """Poll ``/readyz`` until it answers 200; return the seconds waited."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + timeout
        last: Exception | None = None
        while loop.time() < deadline:
            try:
                await self.request("GET", "/readyz", raw=True, retry=False, timeout=2.0)
                return loop.time() - t0
            except (ApiError, OSError) as exc:
                last = exc
            await asyncio.sleep(0.05)
        raise Unavailable(f"{self.server}/readyz not ready after {timeout} s: {last!r}")

    # ------------------------------------------------------------ verbs
    def _ns(self, res: Resource, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if res.namespaced else None

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        return await self.request("GET", res.path(self._ns(res, namespace), name, subresource))

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page of a list. ``namespace=None`` on a namespaced resource lists the client's
        default namespace unless ``all_namespaces``."""
        ns = None if all_namespaces else self._ns(res, namespace)
        return await self.request(
            "GET",
            res.path(ns),
            params={
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "limit": limit,
                "continue": continue_,
                "resourceVersion": resource_version,
            },
        )

    async def list_all(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item (following ``continue``) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        cont: str | None = None
        rv = ""
        while True:
            page = await self.list(
                res,
                namespace,
                all_namespaces=all_namespaces,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size or None,
                continue_=cont,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion", ""))
            cont = meta.get("continue")
            if not cont:
                return items, rv

    async def create(
        self,
        res: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        ns = self._ns(res, namespace or (obj.get("metadata") or {}).get("namespace"))
        return await self.request(
            "POST",
            res.path(ns),
            body=_with_type(res, obj),
            params={"fieldManager": field_manager, "dryRun": "All" if dry_run else None},
        )

    async def update(
        self, res: Resource, obj: dict[str, Any], *, subresource: str | None = None, field_manager: str | None = None
    ) -> dict[str, Any]:
        """PUT (optimistic concurrency: ``metadata.resourceVersion`` must be current, else 409)."""
        md = obj.get("metadata") or {}
        ns = self._ns(res, md.get("namespace"))
        return await self.request(
            "PUT",
            res.path(ns, md["name"], subresource),
            body=_with_type(res, obj),
            params={"fieldManager": field_manager},
        )

    async def update_status(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.update(res, obj, subresource="status")

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        ct = PATCH_TYPES.get(patch_type, patch_type)
        if patch_type == "apply" and field_manager is None:
            field_manager = "raykube"
        return await self.request(
            "PATCH",
            res.path(self._ns(res, namespace), name, subresource),
            body=patch,
            content_type=ct,
            params={"fieldManager": field_manager, "force": None if force is None else str(force).lower()},
        )

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] | None = None
        if propagation_policy or grace_period_seconds is not None or preconditions:
            body = {"kind": "DeleteOptions", "apiVersion": "v1"}
            if propagation_policy:
                body["propagationPolicy"] = propagation_policy
            if grace_period_seconds is not None:
                body["gracePeriodSeconds"] = grace_period_seconds
            if preconditions:
                body["preconditions"] = preconditions
        return await self.request("DELETE", res.path(self._ns(res, namespace), name), body=body)

    # ------------------------------------------------------------ watch
    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
        send_initial_events: bool | None = None,
        on_response: Any = None,
        idle_timeout: float | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events. Ends normally when the server ends the watch
        (``timeoutSeconds``); raises ``ApiError`` (``.gone`` for 410 Gone) for an
        ERROR event or an error response, ``WatchDisconnected`` when the
        connection breaks. Opening the stream is retried like any read.
        ``on_response(resp)`` is called with the live response (so an owner can close it).
        ``idle_timeout``: a stream silent for this long is treated as broken (``WatchDisconnected``);
        the default, with bookmarks on, is 60 s (the API server sends a bookmark every ~10 s when idle),
        so a half-open connection cannot hang an informer forever."""
        ns = None if all_namespaces else self._ns(res, namespace)
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
            "timeoutSeconds": timeout_seconds,
        }
        if send_initial_events is not None:
            params["sendInitialEvents"] = str(send_initial_events).lower()
            params["resourceVersionMatch"] = "NotOlderThan"
        url = self.server + res.path(ns)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_deadline
        backoff = 0.05
        q = _params(params)
        while True:
            await self._throttle()
            self.stats["requests"] += 1
            try:
                if idle_timeout is None and allow_bookmarks:
                    idle_timeout = 60.0
                resp = await self._watch_sess().get(
                    url, params=q, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=idle_timeout)
                )
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                self.stats["reconnects"] += 1
                if loop.time() > deadline:
                    raise Unavailable(f"watch {res}: server unreachable: {exc!r}") from exc
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, 1.0)
                continue
            if resp.status >= 400:
                payload = await resp.read()
                resp.release()
                err = error_from_response(resp.status, payload, resp.headers)
                if err.code in (429, 502, 503, 504) and loop.time() < deadline:
                    await asyncio.sleep(err.retry_after or backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                raise err
            break
        if on_response is not None:
            on_response(resp)
        decoder = WatchStreamDecoder(f"watch {res}")
        try:
            while True:
                try:
                    chunk = await resp.content.readany()
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    raise WatchDisconnected(f"watch {res}: {exc!r}") from exc
                if not chunk:
                    if resp.connection is None and not resp.content.is_eof():
                        raise WatchDisconnected(f"watch {res}: connection closed")
                    decoder.end()
                    return
                for ev in decoder.feed(chunk):
                    yield ev
        finally:
            resp.close()


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _with_type(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    if "apiVersion" in obj and "kind" in obj:
        return obj
    return {"apiVersion": res.api_version, "kind": res.kind, **obj}
