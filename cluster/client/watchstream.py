"""Opening and reading watch streams: ``Client.watch``.

``WatchStreams`` adds ``watch`` to ``Transport``: it opens the stream on the
unbounded watch session (retrying connection failures and 429/5xx like a read,
until ``retry_deadline``), then feeds the chunks it reads to ``watch``'s pure
``WatchStreamDecoder`` and yields the events. A broken or silent connection
raises ``WatchDisconnected``; the informer above decides how to resume.

Concurrency: each ``watch`` call is one async generator holding one connection,
read by the one task iterating it; many may run at once on the client's loop.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterator

import aiohttp

from .errors import Unavailable, WatchDisconnected, error_from_response
from .resources import Resource
from .transport import Transport, _params
from .watch import WatchEvent, WatchStreamDecoder


class WatchStreams(Transport):
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
