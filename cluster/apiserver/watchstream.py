"""API watches: one HTTP response streaming a resource's changes as JSON lines, fed by the ``WatchHub``.

A watch from ``resourceVersion`` "" or "0" (or with ``sendInitialEvents``)
starts with the current objects as ADDED events (and, if asked, a bookmark
marking their end); one from ``R`` replays every change after ``R`` (410 if
raftstore has compacted it, whatever the hub still buffers, so every API
server replica answers alike). With a selector, an object that starts or
stops matching arrives as ADDED or DELETED. Idle watches get bookmarks
every ``bookmark_interval`` if they allow them; a watch ends at its
``timeoutSeconds`` (default 30-60 min), when the client goes, or when the
server stops. Events go out in the representation the client asked for
(object, Table, PartialObjectMetadata; see ``negotiation``), several queued
ones per write.

Concurrency: one coroutine per watch on the API server's loop, reading its
own ``Subscription``; the streamer's set of open watches (for
``max_watches`` and stop) is touched only on that loop.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web
from multidict import MultiMapping

from . import errors
from .errors import APIError
from .negotiation import partial, representation, table
from .options import parse_bool, parse_int
from .registry import Registry
from .resources import ResourceDef
from .selector import FieldSelector, LabelSelector
from .storage import Store
from .watch import Subscription, WatchHub, WEvent

MAX_BATCH = 500  # queued events sent in one write
OBJECT_EVENTS = ("ADDED", "MODIFIED", "DELETED")


def _line(etype: str, obj: Any) -> bytes:
    return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class WatchOptions:
    rv: str
    bookmarks: bool
    send_initial: bool | None
    timeout: float

    @property
    def initial(self) -> bool:
        """Whether the watch starts with the current objects."""
        return self.send_initial is True or (self.send_initial is None and self.rv in ("", "0"))


def watch_options(q: MultiMapping[str]) -> WatchOptions:
    rv = q.get("resourceVersion", "") or ""
    bookmarks = parse_bool(q.get("allowWatchBookmarks"))
    sie_raw = q.get("sendInitialEvents")
    send_initial = None if sie_raw is None else parse_bool(sie_raw)
    if send_initial is not None:
        causes = []
        if q.get("resourceVersionMatch") != "NotOlderThan":
            causes.append(
                errors.forbidden_field(
                    "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                )
            )
        if send_initial and not bookmarks:
            causes.append(
                errors.forbidden_field(
                    "allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true"
                )
            )
        if causes:
            raise errors.invalid_object("ListOptions", "meta.k8s.io", "", causes)
    ts = q.get("timeoutSeconds")
    # Spread the default so that watches opened together do not all end (and re-list) together.
    timeout = float(max(parse_int("timeoutSeconds", ts), 0)) if ts else 1800 * (1 + random.random())
    return WatchOptions(rv, bookmarks, send_initial, timeout)


class EventEncoder:
    """Watch events and bookmarks as JSON lines in the representation the client asked for."""

    def __init__(self, rdef: ResourceDef, mode: str, ver: str, include: str) -> None:
        self.rdef, self.mode, self.ver, self.include = rdef, mode, ver, include
        self.first = True  # a Table stream sends its column definitions once

    def event(self, etype: str, obj: dict[str, Any], ev: WEvent | None = None) -> bytes:
        """One event line; ``ev`` (when ``etype`` is its natural type) lends its cached serialisation."""
        if self.mode == "table" and etype in OBJECT_EVENTS:
            t = table(
                [obj],
                self.rdef,
                {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                self.include,
                self.ver,
                no_headers=not self.first,
            )
            self.first = False
            return _line(etype, t)
        if self.mode == "partial" and etype in OBJECT_EVENTS:
            obj = partial(obj, self.ver)
        elif ev is not None:
            return ev.line(etype)
        return _line(etype, obj)

    def bookmark(self, rev: int, initial_end: bool = False) -> bytes:
        md: dict[str, Any] = {"resourceVersion": str(rev)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        kind = self.rdef.kind
        api_version = self.rdef.api_version
        if self.mode == "table":
            kind, api_version = "Table", f"meta.k8s.io/{self.ver}"
        elif self.mode == "partial":
            kind, api_version = "PartialObjectMetadata", f"meta.k8s.io/{self.ver}"
        return _line("BOOKMARK", {"kind": kind, "apiVersion": api_version, "metadata": md})


def natural_type(ev: WEvent) -> str:
    """The event type a change has for a watcher without a selector."""
    if ev.type == "DELETE":
        return "DELETED"
    return "ADDED" if ev.prev_value is None else "MODIFIED"


def translate(
    ev: WEvent, filtering: bool, matches: Callable[[dict[str, Any] | None], bool]
) -> tuple[str, dict[str, Any]] | None:
    """(event type, object) a selector watcher gets for ``ev``, or None for none."""
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


class WatchStreamer:
    def __init__(
        self, registry: Registry, hub: WatchHub, store: Store, *, max_watches: int, bookmark_interval: float
    ) -> None:
        self.registry = registry
        self.hub = hub
        self.store = store
        self.max_watches = max_watches
        self.bookmark_interval = bookmark_interval
        self.active: set[Subscription] = set()
        self.stopping = False

    def stop(self) -> None:
        """End every open watch (the server is stopping)."""
        self.stopping = True
        for sub in list(self.active):
            sub.fail(None)

    async def serve(
        self, request: web.Request, rdef: ResourceDef, ns: str | None, lsel: LabelSelector, fsel: FieldSelector
    ) -> web.StreamResponse:
        if len(self.active) >= self.max_watches:
            raise errors.APIError(
                429, "TooManyRequests", "too many open watches; try again later", headers={"Retry-After": "1"}
            )
        wo = watch_options(request.query)
        after = 0
        if not wo.initial:
            if wo.rv in ("", "0"):
                after = self.hub.last_revision
            else:
                try:
                    after = parse_int("resourceVersion", wo.rv, 1)
                except APIError:
                    raise errors.bad_request(f'invalid resource version "{wo.rv}"') from None
        mode, ver = representation(request)
        enc = EventEncoder(rdef, mode, ver, request.query.get("includeObject", "Metadata"))
        filtering = not lsel.empty or not fsel.empty
        prefix = rdef.key_prefix(ns)

        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        resp.enable_chunked_encoding()

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            return lsel.matches((obj.get("metadata") or {}).get("labels")) and fsel.matches(obj)

        sub: Subscription | None = None
        initial_items: list[dict[str, Any]] = []
        snapshot = 0
        if wo.initial:
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
                    await resp.write(_line("ERROR", st))
                    await resp.write_eof()
                    return resp
            sub = self.hub.subscribe(prefix, after)
        self.active.add(sub)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wo.timeout
        last_bookmark = loop.time()
        last_rv = snapshot or after
        try:
            await resp.prepare(request)
            if wo.initial:
                buf = [enc.event("ADDED", o) for o in initial_items]
                if wo.send_initial and wo.bookmarks:
                    buf.append(enc.bookmark(snapshot, initial_end=True))
                    last_bookmark = loop.time()
                if buf:
                    await resp.write(b"".join(buf))
            while not self.stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    ev = await sub.next(min(1.0, remaining))
                except StopAsyncIteration:
                    if sub.error is not None:
                        await resp.write(_line("ERROR", sub.error.status()))
                    break
                if ev is None:
                    if request.transport is None or request.transport.is_closing():
                        break
                    if wo.bookmarks and loop.time() - last_bookmark >= self.bookmark_interval:
                        rev = sub.progress_revision()
                        if rev > last_rv:
                            last_rv = rev
                        await resp.write(enc.bookmark(last_rv))
                        last_bookmark = loop.time()
                    continue
                out = translate(ev, filtering, matches)
                last_rv = ev.revision
                if out is None:
                    continue
                etype, obj = out
                chunks = [enc.event(etype, obj, None if (filtering and etype != natural_type(ev)) else ev)]
                # Drain whatever else is already queued into one write.
                while sub.queue and len(chunks) < MAX_BATCH:
                    ev = sub.queue.popleft()
                    sub.last_revision = ev.revision
                    last_rv = ev.revision
                    out = translate(ev, filtering, matches)
                    if out is not None:
                        chunks.append(
                            enc.event(out[0], out[1], None if (filtering and out[0] != natural_type(ev)) else ev)
                        )
                await resp.write(b"".join(chunks))
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.active.discard(sub)
            sub.close()
        try:
            await resp.write_eof()
        except Exception:
            pass
        return resp
