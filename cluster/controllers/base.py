"""The skeleton every controller shares, and the context they run in.

``Context`` holds what the controller manager builds once: the client, the
shared informers (one list+watch per resource, however many controllers use
it), the event recorder, the timing profile and the clock.

``Controller`` is the level-triggered loop: handlers put *keys* on a
rate-limited work queue; ``workers`` coroutines take a key, read the object
from the informer cache and reconcile (``sync(key)``); an exception requeues
the key with per-item exponential back-off. Informers re-deliver every object
each ``resync_period``, so a missed event is repaired within one period.

Concurrency: one asyncio loop; the work queue guarantees a key is never
synced by two workers at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ..client import ApiError, Client, EventRecorder, Informer, Resource
from ..client.clock import REAL_CLOCK, Clock
from ..client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    run_worker,
)
from ..profiles import Timings

log = logging.getLogger("raykube.controllers")


class InformerFactory:
    """Shared informers by (resource, namespace)."""

    def __init__(self, client: Client, resync_period: float, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.resync_period = resync_period
        self.clock = clock
        self._informers: dict[tuple[str, str | None], Informer] = {}
        self.started = False

    def get(self, res: Resource, namespace: str | None = None) -> Informer:
        key = (str(res), namespace)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(
                self.client,
                res,
                namespace,
                resync_period=self.resync_period,
                clock=self.clock,
                name=f"cm/{res}" + (f"/{namespace}" if namespace else ""),
            )
            self._informers[key] = inf
            if self.started:
                inf.start()
        return inf

    def all(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        self.started = True
        for inf in self._informers.values():
            if inf._task is None:
                inf.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(*(inf.wait_for_sync(timeout) for inf in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()), return_exceptions=True)


@dataclass
class Context:
    client: Client
    informers: InformerFactory
    recorder: EventRecorder
    profile: Timings
    clock: Clock = REAL_CLOCK
    options: dict[str, Any] = field(default_factory=dict)


def controller_rate_limiter(clock: Clock) -> MaxOfRateLimiter:
    # client-go's default is 5 ms .. 1000 s; cap at 30 s so a controller recovers quickly in demos.
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 30.0), BucketRateLimiter(50.0, 300, clock))


class Controller:
    name = "controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder
        self.queue: RateLimitingQueue[Any] = RateLimitingQueue(
            controller_rate_limiter(ctx.clock), name=self.name, clock=ctx.clock
        )
        self.syncs = 0
        self.errors = 0
        self.conflicts = 0

    def enqueue(self, key: Any) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: Any, delay: float) -> None:
        self.queue.add_after(key, delay)

    async def sync(self, key: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _sync(self, key: Any) -> None:
        self.syncs += 1
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors += 1
            if isinstance(exc, ApiError) and exc.code == 409:
                self.conflicts += 1  # a decision made on a stale cache: retried on fresh data
                log.debug("%s: sync %r: %s", self.name, key, exc)
            elif self.errors % 20 == 1:
                log.warning("%s: sync %r failed: %r", self.name, key, exc)
            else:
                log.debug("%s: sync %r failed: %r", self.name, key, exc)
            raise

    def background(self) -> list[Any]:
        """Extra coroutines to run next to the workers (periodic monitors)."""
        return []

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(run_worker(self.queue, self._sync)) for _ in range(self.workers)]
        tasks += [asyncio.ensure_future(c) for c in self.background()]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def metrics(self) -> dict[str, Any]:
        return {"syncs": self.syncs, "errors": self.errors, "conflicts": self.conflicts, **self.queue.metrics()}
