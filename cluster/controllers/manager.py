"""The controller manager: one process (or actor) running every controller on
one asyncio loop, over shared informers.

``ControllerManager(client, profile).run()``: discover the API, build the
controllers (ReplicaSet, Deployment, node lifecycle, garbage collector,
namespace, pod GC), start the shared informers, wait for their first list,
then run every controller until cancelled. Nothing survives a restart but
what is in the API server: a new ``run`` re-lists and carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..client import Client, EventRecorder
from ..client.clock import REAL_CLOCK, Clock
from ..profiles import Timings, get_profile
from .base import Context, Controller, InformerFactory
from .deployment import DeploymentController
from .discovery import discover
from .garbagecollector import GarbageCollector
from .namespace import NamespaceController
from .nodelifecycle import NodeLifecycleController
from .podgc import PodGCController
from .replicaset import ReplicaSetController

log = logging.getLogger("raykube.controller-manager")

ALL_CONTROLLERS = ("replicaset", "deployment", "nodelifecycle", "garbagecollector", "namespace", "podgc")


class ControllerManager:
    def __init__(
        self,
        client: Client,
        profile: Timings | str = "demo",
        *,
        controllers: tuple[str, ...] = ALL_CONTROLLERS,
        resync_period: float = 30.0,
        clock: Clock = REAL_CLOCK,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.enabled = controllers
        self.resync_period = resync_period
        self.clock = clock
        self.options = dict(options or {})
        self.controllers: list[Controller] = []
        self.ctx: Context | None = None
        self.ready = asyncio.Event()
        self.started_at: float | None = None

    async def _discover(self) -> Any:
        backoff = 0.2
        while True:
            try:
                return await discover(self.client)
            except Exception as exc:  # noqa: BLE001 - API server not up yet
                log.info("discovery failed (%r); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def build(self, discovered: Any) -> None:
        informers = InformerFactory(self.client, self.resync_period, self.clock)
        recorder = EventRecorder(self.client, "controller-manager", max_backlog=2000, concurrency=8)
        ctx = self.ctx = Context(self.client, informers, recorder, self.profile, self.clock, self.options)
        makers = {
            "replicaset": lambda: ReplicaSetController(ctx),
            "deployment": lambda: DeploymentController(ctx),
            "nodelifecycle": lambda: NodeLifecycleController(ctx),
            "garbagecollector": lambda: GarbageCollector(ctx, discovered),
            "namespace": lambda: NamespaceController(ctx, discovered),
            "podgc": lambda: PodGCController(
                ctx,
                period=float(self.options.get("podgc_period", 5.0)),
                force_delete_on_lost_nodes=bool(self.options.get("force_delete_on_lost_nodes", True)),
            ),
        }
        self.controllers = [makers[n]() for n in ALL_CONTROLLERS if n in self.enabled]

    async def run(self) -> None:
        self.started_at = time.time()
        discovered = await self._discover()
        self.build(discovered)
        assert self.ctx is not None
        ctx = self.ctx
        ctx.recorder.start()
        ctx.informers.start()
        try:
            await ctx.informers.wait_for_sync()
            self.ready.set()
            log.info(
                "controller manager (%s profile): caches synced in %.2f s; running %s",
                self.profile.name,
                time.time() - self.started_at,
                ", ".join(c.name for c in self.controllers),
            )
            await asyncio.gather(*(c.run() for c in self.controllers))
        finally:
            await ctx.informers.stop()
            await ctx.recorder.stop()

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"profile": self.profile.name, "ready": self.ready.is_set()}
        for c in self.controllers:
            m = c.metrics()
            extra = getattr(c, "stats", None)
            if isinstance(extra, dict):
                m.update(extra)
            out[c.name] = m
        return out
