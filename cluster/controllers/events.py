"""An event recorder (client-go's ``record.EventRecorder`` in small).

``recorder.event(obj, "Warning", "FailedScheduling", "0/3 nodes are available: ...")``
queues a core/v1 Event and returns at once; a background task writes it. A
repeat of the same (object, type, reason, message) bumps ``count`` and
``lastTimestamp`` of the existing Event (a PATCH) instead of creating a new
one, as the upstream correlator does. Emission is best effort: on a full
backlog or an API error the event is dropped (logged at debug level).

Concurrency: one asyncio loop; ``event`` is synchronous and never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from typing import Any

from ..client import EVENTS, ApiError, Client
from .util import meta, now_rfc3339

log = logging.getLogger("raykube.events")

KIND_API = {"Pod": "v1", "Node": "v1", "Namespace": "v1", "Service": "v1", "ReplicaSet": "apps/v1",
            "Deployment": "apps/v1"}


class EventRecorder:
    def __init__(self, client: Client, component: str, instance: str | None = None, *,
                 max_backlog: int = 2000, concurrency: int = 8) -> None:
        self.client = client
        self.component = component
        self.instance = instance or f"{component}-{os.uname().nodename}"
        self.max_backlog = max_backlog
        self._queue: asyncio.Queue[tuple[dict[str, Any], str, str, str, str]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()
        self._concurrency = concurrency
        self.emitted = 0
        self.dropped = 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(self._concurrency)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str, kind: str | None = None) -> None:
        if self._queue is None:
            return
        if self._queue.qsize() >= self.max_backlog:
            self.dropped += 1
            return
        self._queue.put_nowait((obj, kind or str(obj.get("kind") or "Pod"), etype, reason, message[:1024]))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the backlog is written (tests)."""
        deadline = time.monotonic() + timeout
        q = self._queue
        while q is not None and (q.qsize() or q._unfinished_tasks):  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.01)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self._emit(*item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - events are best effort
                self.dropped += 1
                log.debug("event dropped: %r", exc)
            finally:
                self._queue.task_done()

    async def _emit(self, obj: dict[str, Any], kind: str, etype: str, reason: str, message: str) -> None:
        md = meta(obj)
        ns = md.get("namespace") or "default"
        uid = str(md.get("uid") or "")
        key = (uid, etype, reason, message)
        now = now_rfc3339()
        prev = self._seen.get(key)
        if prev is not None:
            name, evns, count = prev
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now}, evns)
                self._seen[key] = (name, evns, count + 1)
                self._seen.move_to_end(key)
                self.emitted += 1
                return
            except ApiError as exc:
                if not exc.not_found:
                    raise
        name = f"{md.get('name', 'unknown')}.{time.time_ns():x}"
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": kind, "namespace": md.get("namespace") or "", "name": md.get("name", ""),
                               "uid": uid, "apiVersion": obj.get("apiVersion") or KIND_API.get(kind, "v1"),
                               "resourceVersion": md.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": etype,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }
        if not md.get("namespace"):
            ev["involvedObject"].pop("namespace")
        await self.client.create(EVENTS, ev, ns)
        self.emitted += 1
        self._seen[key] = (name, ns, 1)
        if len(self._seen) > 4096:
            self._seen.popitem(last=False)
