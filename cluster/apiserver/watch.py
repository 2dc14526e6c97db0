"""Watch fan-out: one raftstore watch per API server, many API watches.

``WatchHub`` holds a single raftstore watch on the ``/registry/`` prefix
(with previous values, so DELETED events carry the last state and filtered
watches can tell a selector "leaving" from an update) and a ring buffer of
recent events, like kube-apiserver's watch cache. An API watch from
resourceVersion ``R`` subscribes with its key prefix: the hub replays the
buffered events after ``R`` and then pushes live ones; both happen on the
event loop without an ``await`` in between, so no event is skipped or
repeated. When ``R`` is older than the buffer, the API watch gets its own
raftstore watch from ``R + 1`` instead (``DirectSubscription``), which fails
with 410 Gone if raftstore has compacted ``R`` away.

Raftstore's client resumes a watch on another member from the last revision
it delivered, so API watches survive raftstore leader failures with every
change delivered once and in order. If the hub's own watch fails for good
(compacted while disconnected), every subscription ends with a 410 error and
the hub starts over from the current revision; clients re-list, as they do
with Kubernetes.

``hub.last_revision`` is the newest revision the hub has delivered; a
subscriber whose queue is empty has seen every event up to it, which is what
watch bookmarks report.

Concurrency: everything runs on the API server's event loop; subscriptions
are unbounded ``asyncio.Queue`` s with a backlog cap (a subscriber too slow
to keep up is ended, as kube-apiserver does, and its client re-watches).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import json
import logging
from typing import Any, Callable

from raftstore.client import Compacted, Event, RaftstoreClient, RaftstoreError

from . import errors
from .storage import decode

log = logging.getLogger("cluster.apiserver.watch")

MAX_BACKLOG = 200_000


class WEvent:
    """One change of one key, shared by every subscriber that receives it."""

    __slots__ = ("revision", "type", "key", "value", "prev_value", "prev_revision", "_obj", "_prev", "lines")

    def __init__(
        self, revision: int, type_: str, key: str, value: bytes | None, prev_value: bytes | None, prev_revision: int
    ) -> None:
        self.revision = revision
        self.type = type_  # "PUT" | "DELETE"
        self.key = key
        self.value = value
        self.prev_value = prev_value
        self.prev_revision = prev_revision
        self._obj: dict[str, Any] | None = None
        self._prev: dict[str, Any] | None = None
        self.lines: dict[str, bytes] = {}  # cached serialised watch lines by event type

    @classmethod
    def from_raft(cls, ev: Event) -> "WEvent":
        prev = ev.prev_kv
        return cls(
            ev.revision,
            ev.type,
            ev.kv.key.decode(errors="replace"),
            ev.kv.value if ev.type == "PUT" else None,
            prev.value if prev is not None else None,
            prev.mod_revision if prev is not None else 0,
        )

    def obj(self) -> dict[str, Any] | None:
        """The object after the change (for DELETE: its last state, at the deletion's revision)."""
        if self._obj is None:
            raw = self.value if self.type == "PUT" else self.prev_value
            if raw is None:
                return None
            self._obj = decode(raw, self.revision)
        return self._obj

    def prev(self) -> dict[str, Any] | None:
        if self._prev is None and self.prev_value is not None:
            self._prev = decode(self.prev_value, self.prev_revision)
        return self._prev

    def line(self, etype: str) -> bytes:
        cached = self.lines.get(etype)
        if cached is None:
            cached = json.dumps({"type": etype, "object": self.obj()}, separators=(",", ":")).encode() + b"\n"
            self.lines[etype] = cached
        return cached


class Subscription:
    def __init__(self, prefix: str, after: int) -> None:
        self.prefix = prefix
        self.after = after
        self.queue: collections.deque[WEvent] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.error: errors.APIError | None = None
        self.last_revision = after
        self.on_close: Callable[["Subscription"], None] | None = None

    def push(self, ev: WEvent) -> None:
        if self.closed:
            return
        if len(self.queue) >= MAX_BACKLOG:
            self.fail(None)
            return
        self.queue.append(ev)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, err: errors.APIError | None) -> None:
        if self.closed:
            return
        self.error = err
        self.closed = True
        self._wake()

    async def next(self, timeout: float) -> WEvent | None:
        """The next event; None on timeout. Raises StopAsyncIteration when closed (after draining)."""
        if self.queue:
            ev = self.queue.popleft()
            self.last_revision = ev.revision
            return ev
        if self.closed:
            raise StopAsyncIteration
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self.waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self.waiter = None
        return await self.next(0) if (self.queue or self.closed) else None

    def close(self) -> None:
        self.closed = True
        self._wake()
        if self.on_close is not None:
            cb, self.on_close = self.on_close, None
            cb(self)

    def progress_revision(self) -> int:
        """Highest revision this subscriber has provably seen everything up to."""
        return self.last_revision


class HubSubscription(Subscription):
    def __init__(self, hub: "WatchHub", prefix: str, after: int) -> None:
        super().__init__(prefix, after)
        self.hub = hub

    def progress_revision(self) -> int:
        if not self.queue:
            return max(self.last_revision, self.hub.last_revision)
        return self.last_revision


class DirectSubscription(Subscription):
    """A subscription backed by its own raftstore watch (for a start older than the hub's buffer)."""

    def __init__(self, client: RaftstoreClient, prefix: str, after: int) -> None:
        super().__init__(prefix, after)
        self.watch = client.watch(prefix, prefix=True, start_revision=after + 1, prev_kv=True)
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for resp in self.watch:
                for ev in resp.events:
                    self.push(WEvent.from_raft(ev))
        except Compacted as exc:
            self.fail(errors.gone(f"too old resource version: {self.after} ({exc.compact_revision})"))
        except RaftstoreError as exc:
            self.fail(errors.internal(f"watch failed: {exc}"))
        except asyncio.CancelledError:
            pass

    def close(self) -> None:
        super().close()
        self.task.cancel()
        asyncio.get_running_loop().create_task(self.watch.cancel())


class WatchHub:
    # Events further back than this drop their decoded/serialised caches (a late subscriber re-decodes).
    CACHE_WINDOW = 2_000

    def __init__(self, client: RaftstoreClient, prefix: str = "/registry/", capacity: int = 20_000) -> None:
        self.client = client
        self.prefix = prefix
        self.capacity = capacity
        self.buffer: collections.deque[WEvent] = collections.deque()
        self._revs: collections.deque[int] = collections.deque()
        self.complete_from = 0  # every event with revision > complete_from is buffered or still to come
        self.last_revision = 0
        self.subs: dict[str, set[Subscription]] = {}
        self.listeners: list[Callable[[WEvent], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.restarts = 0

    async def start(self, after: int) -> None:
        self.complete_from = after
        self.last_revision = after
        self.task = asyncio.get_running_loop().create_task(self._run(after))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        for subs in list(self.subs.values()):
            for s in list(subs):
                s.fail(None)
        self.subs.clear()

    async def _run(self, after: int) -> None:
        while True:
            watch = self.client.watch(self.prefix, prefix=True, start_revision=after + 1, prev_kv=True)
            try:
                async for resp in watch:
                    for ev in resp.events:
                        self._dispatch(WEvent.from_raft(ev))
                    after = self.last_revision
            except asyncio.CancelledError:
                await watch.cancel()
                raise
            except Compacted as exc:
                log.warning("watch hub fell behind compaction (%s); restarting from the current revision", exc)
                await watch.cancel()
                self._reset_all(errors.gone("too old resource version: the watch cache was reset"))
                while True:
                    try:
                        res = await self.client.get(self.prefix, revision=0, limit=1)
                        after = res.revision
                        break
                    except Exception:
                        await asyncio.sleep(0.5)
                self.complete_from = after
                self.last_revision = after
                self.restarts += 1
            except Exception as exc:  # pragma: no cover - defensive
                log.exception("watch hub failed: %r; restarting from %d", exc, after)
                await watch.cancel()
                await asyncio.sleep(0.2)

    def _reset_all(self, err: errors.APIError) -> None:
        self.buffer.clear()
        self._revs.clear()
        for subs in list(self.subs.values()):
            for s in list(subs):
                s.fail(err)
        self.subs.clear()

    @staticmethod
    def _prefixes(key: str) -> tuple[str, ...]:
        # /registry/<plural>/<ns>/<name> -> "/registry/<plural>/", "/registry/<plural>/<ns>/"
        parts = key.split("/")
        if len(parts) < 4:
            return ()
        p1 = "/".join(parts[:3]) + "/"
        if len(parts) >= 5:
            return p1, "/".join(parts[:4]) + "/"
        return (p1,)

    def _dispatch(self, ev: WEvent) -> None:
        self.buffer.append(ev)
        self._revs.append(ev.revision)
        if len(self.buffer) > self.CACHE_WINDOW:
            stale = self.buffer[-self.CACHE_WINDOW - 1]
            stale._obj = stale._prev = None
            stale.lines = {}
        while len(self.buffer) > self.capacity:
            old = self.buffer.popleft()
            self._revs.popleft()
            self.complete_from = max(self.complete_from, old.revision)
        self.last_revision = ev.revision
        for p in self._prefixes(ev.key):
            subs = self.subs.get(p)
            if subs:
                for s in list(subs):
                    if ev.revision > s.after:
                        s.push(ev)
        for fn in self.listeners:
            try:
                fn(ev)
            except Exception:  # pragma: no cover - listeners must not break the hub
                log.exception("watch listener failed")

    def subscribe(self, prefix: str, after: int) -> Subscription:
        """Events under ``prefix`` with revision > ``after``, in order, each once."""
        if after < self.complete_from:
            sub: Subscription = DirectSubscription(self.client, prefix, after)
            return sub
        hs = HubSubscription(self, prefix, after)
        i = bisect.bisect_right(self._revs, after)
        for j in range(i, len(self.buffer)):
            ev = self.buffer[j]
            if ev.key.startswith(prefix):
                hs.push(ev)
        self.subs.setdefault(prefix, set()).add(hs)
        hs.on_close = self._unsubscribe
        return hs

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self.subs.get(sub.prefix)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subs[sub.prefix]

    def count(self) -> int:
        return sum(len(s) for s in self.subs.values())
