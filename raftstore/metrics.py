"""Per-member HTTP endpoint: Prometheus metrics, status JSON and fault admin.

* ``GET /metrics``   Prometheus text format (role, term, indexes, elections,
  proposals, applied ops, fsync latency histogram, client ops by type and outcome)
* ``GET /status``    the same JSON as the ``status`` client op
* ``POST /admin/partition`` ``{"drop_to": [...], "drop_from": [...]}``,
  ``POST /admin/heal``, ``POST /admin/fsync-delay`` ``{"seconds": s}``:
  fault injection without root, used by the consensus lab.

Concurrency: aiohttp on the member's asyncio loop; values are read on scrape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from .endpoint import Endpoint

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROLES = ("follower", "candidate", "leader")


class _Collector:
    def __init__(self, endpoint: "Endpoint") -> None:
        self.ep = endpoint
        self.fsync_counts = [0] * (len(FSYNC_BUCKETS) + 1)
        self.fsync_sum = 0.0

    def _drain_fsyncs(self) -> None:
        lat = self.ep.node.journal.stats.sync_latencies
        drained, lat[:] = list(lat), []
        for v in drained:
            self.fsync_sum += v
            for i, b in enumerate(FSYNC_BUCKETS):
                if v <= b:
                    self.fsync_counts[i] += 1
                    break
            else:
                self.fsync_counts[-1] += 1

    def collect(self) -> Iterator[Any]:
        node = self.ep.node
        st = self.ep.status()
        labels = ["member"]
        me = [node.me.name]
        role = GaugeMetricFamily("raftstore_role", "1 for the member's current Raft role", labels=labels + ["role"])
        for r in ROLES:
            role.add_metric(me + [r], 1.0 if st["role"] == r else 0.0)
        yield role
        for name, key, doc in (
            ("raftstore_term", "term", "current Raft term"),
            ("raftstore_commit_index", "commit_index", "Raft commit index"),
            ("raftstore_applied_index", "applied_index", "last applied Raft index"),
            ("raftstore_revision", "revision", "MVCC store revision"),
            ("raftstore_compact_revision", "compact_revision", "MVCC compact revision"),
            ("raftstore_log_entries", "log_size", "entries in the Raft journal"),
            ("raftstore_watchers", "watchers", "open watches"),
            ("raftstore_client_connections", "connections", "open client connections"),
        ):
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(me, float(st[key]))
            yield g
        leader = GaugeMetricFamily("raftstore_is_leader", "1 if this member is the leader", labels=labels)
        leader.add_metric(me, 1.0 if st["role"] == "leader" else 0.0)
        yield leader
        c = node.counters
        for name, value, doc in (
            ("raftstore_elections_seen", c.elections_seen, "terms this member has entered"),
            ("raftstore_leader_changes", c.leader_changes, "leader changes seen"),
            ("raftstore_proposals", c.proposals, "Raft proposals (batches) made by this member"),
            ("raftstore_proposals_failed", c.proposals_failed, "proposals that failed or timed out"),
            ("raftstore_applied_ops", self.ep.store.applied_ops, "state-machine ops applied"),
            ("raftstore_fsyncs", node.journal.stats.syncs, "journal syncs (group commits)"),
            (
                "raftstore_raft_messages_dropped",
                node.transport.dropped_in + node.transport.dropped_out,
                "Raft messages dropped by an injected partition",
            ),
        ):
            cm = CounterMetricFamily(name, doc, labels=labels)
            cm.add_metric(me, float(value))
            yield cm
        self._drain_fsyncs()
        buckets = []
        acc = 0
        for b, n in zip(FSYNC_BUCKETS, self.fsync_counts):
            acc += n
            buckets.append((repr(b), float(acc)))
        acc += self.fsync_counts[-1]
        buckets.append(("+Inf", float(acc)))
        h = HistogramMetricFamily("raftstore_fsync_seconds", "journal fsync latency", labels=labels)
        h.add_metric(me, buckets, self.fsync_sum)
        yield h
        ops = CounterMetricFamily(
            "raftstore_client_ops", "client operations by type and outcome", labels=labels + ["op", "outcome"]
        )
        for (op, outcome), n in sorted(self.ep.ops.counts.items()):
            ops.add_metric(me + [op, outcome], float(n))
        yield ops


class MetricsServer:
    def __init__(self, endpoint: "Endpoint") -> None:
        self.ep = endpoint
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(endpoint))  # type: ignore[arg-type]
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status", self._status)
        app.router.add_post("/admin/partition", self._partition)
        app.router.add_post("/admin/heal", self._heal)
        app.router.add_post("/admin/fsync-delay", self._fsync_delay)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        host, port = self.ep.node.me.metrics.rsplit(":", 1)
        await web.TCPSite(self.runner, host, int(port)).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.ep.status())

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            raise web.HTTPBadRequest(text="body must be a JSON object") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    async def _partition(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            self.ep.node.set_partition(list(body.get("drop_to", [])), list(body.get("drop_from", [])))
        except KeyError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(self.ep.status()["partition"])

    async def _heal(self, request: web.Request) -> web.Response:
        self.ep.node.set_partition([], [])
        return web.json_response(self.ep.status()["partition"])

    async def _fsync_delay(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            self.ep.node.set_fsync_delay(float(body.get("seconds", 0)))
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(text="seconds must be a number") from None
        return web.json_response({"fsync_delay": self.ep.node.journal.fsync_delay})
