"""Lease-based leader election (client-go's ``tools/leaderelection``) for asyncio.

Two (or more) replicas of a component share one ``coordination.k8s.io/v1``
Lease (``kube-system/kube-scheduler``, ``kube-system/kube-controller-manager``).
Only the holder acts:

- **acquire**: every ``retry_period`` (jittered) try to take the Lease: it is
  free when it does not exist, has no holder, or its record has not changed
  for ``lease_duration`` as *observed locally* (no clock comparison between
  machines, exactly as client-go); writes use the Lease's resourceVersion, so
  two candidates never both win;
- **renew**: the holder renews every ``retry_period``; if it cannot renew for
  ``renew_deadline`` (< ``lease_duration``) it stops leading *before* anyone
  else may take over;
- **release**: on a clean stop the holder empties ``holderIdentity`` so the
  standby takes over at once instead of after ``lease_duration``.

``run(lead)`` loops forever: acquire, then run the coroutine ``lead()`` while
renewing; when leadership is lost ``lead()`` is cancelled and the elector goes
back to acquiring (client-go's callers usually exit the process instead: pass
``exit_on_loss=True`` for that). A replica restarted with the same
``identity`` (e.g. a Ray actor that keeps its replica name) is recognised as
the holder and resumes at once.

Concurrency: one asyncio loop; the elector owns its tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..api.timestamps import micro_time
from .resources import LEASES
from .rest import ApiError, Client

log = logging.getLogger("raykube.leaderelection")


@dataclass
class LeaderElectionConfig:
    lease_name: str
    namespace: str = "kube-system"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            self.identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        if not (self.lease_duration > self.renew_deadline > self.retry_period > 0):
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")


class LeaderElector:
    def __init__(self, client: Client, config: LeaderElectionConfig) -> None:
        self.client = client
        self.config = config
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # local monotonic time we saw it change
        self._leading = False
        self.transitions = 0
        self.acquired_at: float | None = None
        self.last_renew: float | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    def _record(
        self,
        now_str: str,
        acquire_time: str,
        transitions: int,
        holder: str | None = None,
        duration: float | None = None,
    ) -> dict[str, Any]:
        return {
            "holderIdentity": self.config.identity if holder is None else holder,
            "leaseDurationSeconds": max(
                1, int(round(duration if duration is not None else self.config.lease_duration))
            ),
            "acquireTime": acquire_time,
            "renewTime": now_str,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        c = self.config
        now_str = micro_time()
        try:
            lease = await self.client.get(LEASES, c.lease_name, c.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": c.lease_name, "namespace": c.namespace},
                "spec": self._record(now_str, now_str, 0),
            }
            try:
                await self.client.create(LEASES, body, c.namespace)
            except ApiError as e2:
                if e2.already_exists or e2.conflict:
                    return False
                raise
            self._observed = (c.identity, now_str)
            self._observed_at = time.monotonic()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        rec = (holder, str(spec.get("renewTime") or ""))
        if rec != self._observed:
            self._observed = rec
            self._observed_at = time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or c.lease_duration)
        if holder and holder != c.identity and time.monotonic() < self._observed_at + duration:
            return False  # held by someone else and not expired
        if holder == c.identity:
            acquire, transitions = str(spec.get("acquireTime") or now_str), int(spec.get("leaseTransitions") or 0)
        else:
            acquire, transitions = now_str, int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = self._record(now_str, acquire, transitions)
        try:
            await self.client.update(LEASES, lease)
        except ApiError as exc:
            if exc.conflict or exc.not_found:
                return False
            raise
        self._observed = (c.identity, now_str)
        self._observed_at = time.monotonic()
        return True

    async def _try(self) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), self.config.renew_deadline)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - API server down, timeouts: just not acquired
            log.debug("%s: lease attempt failed: %r", self.config.lease_name, exc)
            return False

    async def acquire(self) -> None:
        c = self.config
        while True:
            if await self._try():
                self._leading = True
                self.transitions += 1
                self.acquired_at = self.last_renew = time.monotonic()
                log.info("%s: %s became leader", c.lease_name, c.identity)
                return
            await asyncio.sleep(c.retry_period * (1 + 0.2 * random.random()))

    async def renew_loop(self) -> None:
        """Returns when leadership is lost."""
        c = self.config
        while True:
            await asyncio.sleep(c.retry_period)
            deadline = (self.last_renew or time.monotonic()) + c.renew_deadline
            while True:
                if await self._try():
                    self.last_renew = time.monotonic()
                    break
                if time.monotonic() >= deadline:
                    self._leading = False
                    log.warning(
                        "%s: %s lost leadership (could not renew for %.1f s)",
                        c.lease_name,
                        c.identity,
                        c.renew_deadline,
                    )
                    return
                await asyncio.sleep(min(c.retry_period / 2, max(0.05, deadline - time.monotonic())))

    async def release(self) -> None:
        c = self.config
        if not self._leading:
            return
        self._leading = False
        try:
            lease = await asyncio.wait_for(self.client.get(LEASES, c.lease_name, c.namespace), 2.0)
            if (lease.get("spec") or {}).get("holderIdentity") != c.identity:
                return
            now = micro_time()
            spec = lease.get("spec") or {}
            lease["spec"] = self._record(now, now, int(spec.get("leaseTransitions") or 0), holder="", duration=1)
            await asyncio.wait_for(self.client.update(LEASES, lease), 2.0)
            log.info("%s: %s released the lease", c.lease_name, c.identity)
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: release failed: %r", c.lease_name, exc)

    async def run(self, lead: Callable[[], Awaitable[Any]], *, exit_on_loss: bool = False) -> None:
        """Acquire; run ``lead()`` while renewing; on loss cancel it and start over (or exit)."""
        while True:
            await self.acquire()
            leader_task = asyncio.ensure_future(lead())
            renew_task = asyncio.ensure_future(self.renew_loop())
            try:
                done, _ = await asyncio.wait({leader_task, renew_task}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                leader_task.cancel()
                renew_task.cancel()
                await asyncio.gather(leader_task, renew_task, return_exceptions=True)
                if self.config.release_on_cancel:
                    await self.release()
                raise
            renew_task.cancel()
            leader_task.cancel()
            await asyncio.gather(leader_task, renew_task, return_exceptions=True)
            if leader_task in done and not leader_task.cancelled() and leader_task.exception() is not None:
                log.error("%s: leader work failed: %r; starting over", self.config.lease_name, leader_task.exception())
                if self._leading:
                    await self.release()
            self._leading = False
            if exit_on_loss:
                log.error("%s: leaderelection lost; exiting", self.config.lease_name)
                os._exit(1)
            await asyncio.sleep(self.config.retry_period)
