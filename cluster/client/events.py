"""The event recorder every component shares (client-go's ``record.EventRecorder`` in small).

Events are what ``kubectl describe`` / ``kubectl get events`` show: the
scheduler's ``Scheduled`` / ``FailedScheduling``, the controllers'
``SuccessfulCreate`` / ``ScalingReplicaSet`` / ``NodeNotReady``, the kubelet's
``Pulled`` / ``Started`` / ``Killing`` / ``BackOff`` / ``Unhealthy`` ... They are
for people, not for correctness, so recording one is best effort::

    recorder = EventRecorder(client, "kubelet", node, host=node)
    recorder.start()
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container",
                   field_path="spec.containers{app}")

``event`` queues a core/v1 Event and returns at once; ``concurrency``
background tasks write the queue. On a full backlog (``max_backlog``) or an
API error the event is dropped and counted in ``dropped``; written ones are
counted in ``emitted``. As Kubernetes' event correlator does, a repeat of the
same (object uid, type, reason, message) within ``aggregate_seconds`` bumps
``count`` and ``lastTimestamp`` of the Event already written (a PATCH)
instead of creating another; if that Event is gone (404) a new one is made.
The remembered keys are bounded (LRU, ``MAX_REMEMBERED``). Timestamps are
those of the ``event`` call, not of the write.

Concurrency: one asyncio loop. ``event`` is synchronous, never blocks and
must be called from the loop's thread; the one exception is ``enabled``,
which another thread may set to False (the kubelet's power-off) to stop any
further event from being queued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from typing import Any

from ..api.timestamps import rfc3339
from .resources import EVENTS
from .rest import ApiError, Client

log = logging.getLogger("raykube.events")

# involvedObject.apiVersion when the object does not say.
KIND_API = {
    "Pod": "v1",
    "Node": "v1",
    "Namespace": "v1",
    "Service": "v1",
    "ReplicaSet": "apps/v1",
    "Deployment": "apps/v1",
}
# Kinds whose objects have no namespace (their Events live in "default").
CLUSTER_SCOPED = frozenset({"Node", "Namespace"})
MAX_MESSAGE = 1024
MAX_REMEMBERED = 4096


# A queued event: the object, involvedObject.kind, type, reason, message, fieldPath, time.time_ns() of the call.
_Item = tuple[dict[str, Any], str, str, str, str, str | None, int]
# What a written Event is remembered by: (involved uid, type, reason, message) ->
_Key = tuple[str, str, str, str]
# (Event name, Event namespace, count, time.time_ns() of its last occurrence).
_Seen = tuple[str, str, int, int]


class EventRecorder:
    def __init__(
        self,
        client: Client,
        component: str,
        instance: str | None = None,
        *,
        host: str | None = None,
        enabled: bool = True,
        max_backlog: int = 1000,
        concurrency: int = 1,
        aggregate_seconds: float = 600.0,
    ) -> None:
        """``component`` is ``source.component`` and ``reportingComponent``; ``instance`` is
        ``reportingInstance`` (default ``<component>-<hostname>``); ``host`` is ``source.host``."""
        self.client = client
        self.component = component
        self.instance = instance or f"{component}-{os.uname().nodename}"
        self.host = host
        self.enabled = enabled
        self.max_backlog = max_backlog
        self.concurrency = concurrency
        self.aggregate_seconds = aggregate_seconds
        self.emitted = 0
        self.dropped = 0
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max_backlog)
        self._tasks: list[asyncio.Task[None]] = []
        self._seen: OrderedDict[_Key, _Seen] = OrderedDict()

    def start(self) -> None:
        """Start the writers (none if disabled). Events queued before this are written now."""
        if self.enabled and not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._worker(), name=f"events/{self.component}") for _ in range(self.concurrency)
            ]

    async def stop(self) -> None:
        """Stop the writers; what is still queued is not written."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) until everything queued has been written or dropped."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            pass

    def event(
        self,
        obj: dict[str, Any],
        etype: str,
        reason: str,
        message: str,
        *,
        kind: str | None = None,
        field_path: str | None = None,
    ) -> None:
        """Record an event about ``obj`` (``etype`` "Normal" or "Warning"). Never blocks, never raises."""
        if not self.enabled:
            return
        item = (
            obj,
            kind or str(obj.get("kind") or "Pod"),
            etype,
            reason,
            message[:MAX_MESSAGE],
            field_path,
            time.time_ns(),
        )
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if not self.enabled:  # switched off meanwhile (a powered-off node writes nothing more)
                    self.dropped += 1
                    continue
                await self._write(*item)
                self.emitted += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - events are best effort
                self.dropped += 1
                log.debug(
                    "%s event %s for %s dropped: %r",
                    self.component,
                    item[3],
                    (item[0].get("metadata") or {}).get("name"),
                    exc,
                )
            finally:
                self._queue.task_done()

    async def _write(
        self, obj: dict[str, Any], kind: str, etype: str, reason: str, message: str, field_path: str | None, t_ns: int
    ) -> None:
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        stamp = rfc3339(t_ns / 1e9)
        key = (uid, etype, reason, message)
        prev = self._seen.get(key)
        if prev is not None and t_ns - prev[3] < self.aggregate_seconds * 1e9:
            name, ns, count, _ = prev
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": stamp}, ns)
                self._remember(key, (name, ns, count + 1, t_ns))
                return
            except ApiError as exc:
                if not exc.not_found:
                    raise
        ev = self._new_event(obj, md, kind, etype, reason, message, field_path, t_ns, stamp)
        ns = ev["metadata"]["namespace"]
        await self.client.create(EVENTS, ev, ns)
        self._remember(key, (ev["metadata"]["name"], ns, 1, t_ns))

    def _remember(self, key: _Key, seen: _Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def _new_event(
        self,
        obj: dict[str, Any],
        md: dict[str, Any],
        kind: str,
        etype: str,
        reason: str,
        message: str,
        field_path: str | None,
        t_ns: int,
        stamp: str,
    ) -> dict[str, Any]:
        obj_ns = "" if kind in CLUSTER_SCOPED else str(md.get("namespace") or "")
        ns = obj_ns or "default"  # a cluster-scoped object's Events live in "default"
        involved: dict[str, Any] = {
            "kind": kind,
            "apiVersion": obj.get("apiVersion") or KIND_API.get(kind, "v1"),
            "name": md.get("name", ""),
            "namespace": obj_ns,
            "uid": str(md.get("uid") or ""),
            "resourceVersion": md.get("resourceVersion", ""),
            "fieldPath": field_path,
        }
        if not obj_ns:
            del involved["namespace"]
        if field_path is None:
            del involved["fieldPath"]
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md.get('name') or 'unknown'}.{t_ns:x}{os.urandom(2).hex()}", "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": etype,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
