"""One API call with reconnect and retry: the request core of ``rest.Client``.

``Transport`` adds to ``connections.Connections`` the one method every verb goes
through, ``request`` (encode the body, send it on the pooled session, decode the
answer, and retry or raise by the rules in ``rest``'s module doc), plus the calls
built on nothing but it: ``wait_ready`` and ``open_connections`` (pool warm-up).
The helpers ``_params`` and ``_ns`` are shared with the verbs and the watch.

Concurrency: as ``Connections`` - one event loop at a time, any number of tasks
on it; a retried call sleeps (back-off, ``Retry-After``) without holding anything.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Mapping

import aiohttp

from .connections import Connections
from .errors import ApiError, Unavailable, UnknownOutcome, error_from_response
from .resources import Resource

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Transport(Connections):
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
        """One API call with reconnect/retry (see ``rest``'s module doc). Returns parsed JSON (or bytes if ``raw``)."""
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

    def _ns(self, res: Resource, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if res.namespaced else None


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out
