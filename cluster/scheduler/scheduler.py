"""The scheduler: pending pods in, bindings out.

- Informers on pods (all namespaces) and nodes feed the ``SchedulerCache``
  (node capacity, pods counted per node) and the ``SchedulingQueue`` (pods
  with no ``spec.nodeName`` and our ``schedulerName``).
- One scheduling loop pops a pod, runs the filters over the cached nodes
  (sampling ``percentageOfNodesToScore`` of them in big clusters, starting
  where the previous pod stopped), scores the feasible ones, picks the best
  (ties broken at random), *assumes* the pod on that node in the cache and
  hands the binding (``POST pods/<name>/binding``) to a task - up to
  ``bind_concurrency`` bindings are in flight while the loop goes on with the
  next pod. Nothing is re-listed per pod.
- No node fits -> a ``FailedScheduling`` Warning event with kube-scheduler's
  message (``0/3 nodes are available: 3 Insufficient cpu.``), the pod's
  ``PodScheduled`` condition set to False/Unschedulable, and the pod parked
  in the unschedulable pool until a node or pod changes.
- A failed binding -> forget the assumption, event, retry after back-off
  (unless the pod is gone or already bound).

State is only the informers' caches and what is derived from them, so a
restarted scheduler re-lists and carries on: bound pods are in the watch,
pending ones are queued again.

Concurrency: everything runs on one asyncio loop; the cache and the queue are
touched only from it (no locks).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from ..api.nodes import node_ready_status
from ..api.resources import pod_requests
from ..api.timestamps import rfc3339
from ..client import NODES, PODS, ApiError, Client, EventRecorder, Informer, key_of
from ..client.clock import REAL_CLOCK, Clock
from .cache import SchedulerCache
from .predicates import filter_node, fit_error_message, num_feasible_nodes_to_find, score_nodes
from .queue import QueuedPod, SchedulingQueue

log = logging.getLogger("raykube.scheduler")


@dataclass
class SchedulerConfig:
    scheduler_name: str = "default-scheduler"
    bind_concurrency: int = 64
    percentage_of_nodes_to_score: int = 0  # 0 = adaptive, as kube-scheduler
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    max_unschedulable: float = 60.0  # periodic retry of unschedulable pods
    assume_ttl: float = 30.0
    resync_period: float = 0.0


def _node_relevant(node: dict[str, Any]) -> tuple[Any, ...]:
    """The parts of a Node that can change where pods fit (heartbeat-only updates are ignored)."""
    md = node.get("metadata") or {}
    spec = node.get("spec") or {}
    st = node.get("status") or {}
    return (
        repr(sorted((md.get("labels") or {}).items())),
        repr(spec.get("taints")),
        spec.get("unschedulable"),
        repr(st.get("allocatable") or st.get("capacity")),
        node_ready_status(node),
    )


def _pod_spec_sig(pod: dict[str, Any]) -> tuple[Any, ...]:
    md = pod.get("metadata") or {}
    return (repr(pod.get("spec")), repr(md.get("labels")), repr(md.get("annotations")))


class Scheduler:
    def __init__(self, client: Client, config: SchedulerConfig | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.config = config or SchedulerConfig()
        self.clock = clock
        self.cache = SchedulerCache(clock, self.config.assume_ttl)
        self.queue = SchedulingQueue(
            clock, self.config.initial_backoff, self.config.max_backoff, self.config.max_unschedulable
        )
        self.pods = Informer(client, PODS, resync_period=self.config.resync_period, name="scheduler/pods")
        self.nodes = Informer(client, NODES, resync_period=self.config.resync_period, name="scheduler/nodes")
        self.recorder = EventRecorder(client, self.config.scheduler_name, max_backlog=2000, concurrency=8)
        self._bind_sem = asyncio.Semaphore(self.config.bind_concurrency)
        self._bind_tasks: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._next_start = 0
        self._rng = random.Random()
        self.ready = asyncio.Event()
        self.stats: dict[str, Any] = {
            "scheduled": 0,
            "unschedulable": 0,
            "bind_errors": 0,
            "attempts": 0,
            "first_bound_at": None,
            "last_bound_at": None,
            "started_at": None,
            "last_burst": None,
        }
        self._burst: list[Any] | None = None  # [first bind time, count, last bind time]
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_event_handler(self._node_added, self._node_updated, self._node_deleted)

    # ------------------------------------------------------------ handlers
    def _ours(self, pod: dict[str, Any]) -> bool:
        return (pod.get("spec") or {}).get("schedulerName", "default-scheduler") == self.config.scheduler_name

    def _pod_added(self, pod: dict[str, Any]) -> None:
        self._on_pod(pod, None)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._on_pod(new, old)

    def _on_pod(self, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = key_of(pod)
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            self.queue.delete(key)
            was_counted = key in self.cache.pod_node
            self.cache.add_or_update_pod(pod)
            if was_counted and key not in self.cache.pod_node:
                self.queue.move_all_to_active()  # it terminated: room freed
            return
        if (pod.get("metadata") or {}).get("deletionTimestamp") or not self._ours(pod) or spec.get("schedulingGates"):
            self.queue.delete(key)  # being deleted, someone else's, or gated (waits until the gates are removed)
            return
        if self.cache.is_assumed(key):
            return  # our binding is in flight or not yet visible
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        if old is not None and self.queue.where(key) == "unschedulable" and _pod_spec_sig(old) == _pod_spec_sig(pod):
            return  # a status-only change (e.g. our own PodScheduled condition) is no reason to retry
        self.queue.add(key, int(spec.get("priority") or 0))

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        self.queue.delete(key)
        if key in self.cache.pod_node:
            self.cache.remove_pod(key)
            self.queue.move_all_to_active()

    def _node_added(self, node: dict[str, Any]) -> None:
        self.cache.add_or_update_node(node)
        self.queue.move_all_to_active()

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.cache.add_or_update_node(new)
        if _node_relevant(old) != _node_relevant(new):
            self.queue.move_all_to_active()

    def _node_deleted(self, node: dict[str, Any]) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name", ""))

    # ---------------------------------------------------------- algorithm
    def find_node(self, pod: dict[str, Any]) -> tuple[str | None, dict[str, int], int]:
        """(chosen node or None, failure reasons histogram, number of nodes)."""
        req = pod_requests(pod)
        nodes = self.cache.node_infos()
        n = len(nodes)
        if n == 0:
            return None, {}, 0
        want = num_feasible_nodes_to_find(n, self.config.percentage_of_nodes_to_score)
        start = self._next_start % n
        feasible = []
        reasons: dict[str, int] = {}
        processed = 0
        for i in range(n):
            ni = nodes[(start + i) % n]
            processed += 1
            r = filter_node(pod, req, ni)
            if r is None:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
            else:
                for x in r:
                    reasons[x] = reasons.get(x, 0) + 1
        self._next_start = (start + processed) % n
        if not feasible:
            return None, reasons, n
        if len(feasible) == 1:
            return feasible[0].name, reasons, n
        scores = score_nodes(pod, req, feasible)
        best = max(scores)
        top = [ni.name for ni, s in zip(feasible, scores) if s >= best - 1e-9]
        return (top[0] if len(top) == 1 else self._rng.choice(top)), reasons, n

    # --------------------------------------------------------------- loop
    async def run(self) -> None:
        """Start informers, wait for their first list, then schedule until cancelled."""
        self.stats["started_at"] = time.time()
        self.recorder.start()
        self.nodes.start()
        self.pods.start()
        try:
            await self.nodes.wait_for_sync()
            await self.pods.wait_for_sync()
            self.ready.set()
            log.info(
                "scheduler %s: caches synced (%d nodes, %d pods, %d pending)",
                self.config.scheduler_name,
                self.cache.num_nodes,
                len(self.pods.store),
                len(self.queue),
            )
            self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping()))
            await self._schedule_loop()
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.queue.close()
        for t in list(self._tasks) + list(self._bind_tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._bind_tasks, return_exceptions=True)
        self._tasks.clear()
        await self.pods.stop()
        await self.nodes.stop()
        await self.recorder.stop()

    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(1.0)
            self._report_burst()
            expired = self.cache.cleanup()
            for key in expired:
                log.warning("assumed pod %s expired (binding never confirmed by the watch)", key)
                pod = self.pods.store.get(key)
                if pod is not None:
                    self._on_pod(pod, None)

    async def _schedule_loop(self) -> None:
        n = 0
        while True:
            info = await self.queue.pop()
            try:
                await self._schedule_one(info)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive any one pod
                log.exception("scheduling %s failed", info.key)
                self.queue.requeue_error(info)
            n += 1
            if n % 16 == 0:
                await asyncio.sleep(0)  # let the informers and the bindings breathe

    async def _schedule_one(self, info: QueuedPod) -> None:
        pod = self.pods.store.get(info.key)
        if (
            pod is None
            or (pod.get("spec") or {}).get("nodeName")
            or not self._ours(pod)
            or (pod.get("metadata") or {}).get("deletionTimestamp")
            or self.cache.is_assumed(info.key)
        ):
            self.queue.done(info.key)
            return
        cycle = self.queue.scheduling_cycle
        self.stats["attempts"] += 1
        node, reasons, num = self.find_node(pod)
        if node is None:
            msg = fit_error_message(num, reasons)
            info.reasons = reasons
            self.stats["unschedulable"] += 1
            self.queue.requeue_unschedulable(info, cycle)
            self._record_failure(pod, msg)
            return
        self.cache.assume(pod, node)
        await self._bind_sem.acquire()
        task = asyncio.get_running_loop().create_task(self._bind(pod, node, info))
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

    async def _bind(self, pod: dict[str, Any], node: str, info: QueuedPod) -> None:
        md = pod["metadata"]
        key = info.key
        try:
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md.get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            await self.client.request("POST", PODS.path(md.get("namespace"), md["name"], "binding"), body=body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self.cache.forget(key)
            self.stats["bind_errors"] += 1
            gone = isinstance(exc, ApiError) and (exc.not_found or exc.code == 409)
            if gone:
                log.debug("binding %s to %s: %s (dropped)", key, node, exc)
                self.queue.done(key)
                if isinstance(exc, ApiError) and exc.code == 409:
                    # Already bound or being deleted: the watch will tell us; make sure we look again.
                    cur = self.pods.store.get(key)
                    if cur is not None and not (cur.get("spec") or {}).get("nodeName"):
                        self.queue.add(key)
            else:
                log.warning("binding %s to %s failed: %r", key, node, exc)
                self.recorder.event(pod, "Warning", "FailedScheduling", f"Binding rejected: {exc}")
                self.queue.requeue_error(info)
            return
        finally:
            self._bind_sem.release()
        self.cache.finish_binding(key)
        self.queue.done(key)
        now = time.time()
        self.stats["scheduled"] += 1
        if self.stats["first_bound_at"] is None:
            self.stats["first_bound_at"] = now
        self.stats["last_bound_at"] = now
        if self._burst is None:
            self._burst = [now, 0, now]
        self._burst[1] += 1
        self._burst[2] = now
        self.recorder.event(
            pod, "Normal", "Scheduled", f"Successfully assigned {md.get('namespace')}/{md['name']} to {node}"
        )

    def _report_burst(self) -> None:
        """Log the throughput of a burst of bindings once the queue has drained."""
        b = self._burst
        if b is None or self.queue.counts()["active"] or self._bind_tasks or time.time() - b[2] < 0.5:
            return
        self._burst = None
        dur = max(b[2] - b[0], 1e-6)
        self.stats["last_burst"] = {"pods": b[1], "seconds": round(dur, 3), "pods_per_second": round(b[1] / dur, 1)}
        if b[1] >= 10:
            log.info("throughput: bound %d pods in %.2f s (%.0f pods/s)", b[1], dur, b[1] / dur)

    def _record_failure(self, pod: dict[str, Any], msg: str) -> None:
        self.recorder.event(pod, "Warning", "FailedScheduling", msg)
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message") == msg:
                return
        task = asyncio.get_running_loop().create_task(self._set_unschedulable(pod, msg))
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

    async def _set_unschedulable(self, pod: dict[str, Any], msg: str) -> None:
        md = pod["metadata"]
        patch = {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": msg,
                        "lastProbeTime": None,
                        "lastTransitionTime": rfc3339(),
                    }
                ]
            }
        }
        try:
            await self.client.patch(
                PODS, md["name"], patch, md.get("namespace"), patch_type="strategic", subresource="status"
            )
        except ApiError as exc:
            log.debug("setting PodScheduled=False on %s: %s", key_of(pod), exc)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.stats,
            "queue": self.queue.counts(),
            "nodes": self.cache.num_nodes,
            "assumed": len(self.cache.assumed),
            "events_emitted": self.recorder.emitted,
        }
