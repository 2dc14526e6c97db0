"""Kubelet events (``Pulled``, ``Created``, ``Started``, ``Killing``, ``Unhealthy``, ``BackOff``, ...).

Events are written in the background by one task, never on a pod's sync
path, and dropped (counted) when more than ``max_queue`` are waiting: they
are for ``kubectl describe``, not for correctness. An event repeated for the
same object within ``aggregate_seconds`` bumps ``count`` on the existing
Event instead of creating another, as Kubernetes' event correlator does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any

from ..client import EVENTS, ApiError, Client

log = logging.getLogger("raykube.kubelet.events")


def rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


class EventRecorder:
    def __init__(self, client: Client, node: str, host_ip: str, *, enabled: bool = True, max_queue: int = 1000,
                 aggregate_seconds: float = 600.0) -> None:
        self.client = client
        self.node = node
        self.host_ip = host_ip
        self.enabled = enabled
        self.max_queue = max_queue
        self.aggregate_seconds = aggregate_seconds
        self.dropped = 0
        self.sent = 0
        self._q: deque[tuple[dict[str, Any], str, str, str, float, str | None]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def emit(self, obj: dict[str, Any], etype: str, reason: str, message: str,
             field_path: str | None = None) -> None:
        if not self.enabled:
            return
        if len(self._q) >= self.max_queue:
            self.dropped += 1
            return
        self._q.append((obj, etype, reason, message, time.time(), field_path))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            while not self._q:
                self._wake.clear()
                await self._wake.wait()
            obj, etype, reason, message, t, fp = self._q.popleft()
            try:
                await self._send(obj, etype, reason, message, t, fp)
                self.sent += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - events are best effort
                log.debug("event %s for %s not written: %r", reason, (obj.get("metadata") or {}).get("name"), exc)

    async def _send(self, obj: dict[str, Any], etype: str, reason: str, message: str, t: float,
                    field_path: str | None) -> None:
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        key = (md.get("uid", ""), reason, message, etype)
        prev = self._seen.get(key)
        if prev is not None and t - prev[3] < self.aggregate_seconds:
            name, first, count, _ = prev
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": rfc3339(t)}, ns)
                self._seen[key] = (name, first, count + 1, t)
                return
            except ApiError as exc:
                if not exc.not_found:
                    raise
        name = f"{md.get('name', 'unknown')}.{int(t * 1e9):x}{os.urandom(2).hex()}"
        involved = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "Pod"), "name": md.get("name"),
                    "namespace": ns, "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion"),
                    "fieldPath": field_path}
        if involved["kind"] == "Node":
            involved["namespace"] = None  # cluster-scoped; the Event itself lives in "default"
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason, "message": message, "type": etype,
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": rfc3339(t), "lastTimestamp": rfc3339(t), "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": self.node,
        }
        await self.client.create(EVENTS, ev, ns)
        if len(self._seen) > 5000:
            self._seen.clear()
        self._seen[key] = (name, rfc3339(t), 1, t)
