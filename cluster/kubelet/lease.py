"""The kubelet's heartbeat: its Lease ``kube-node-lease/<node>``, created or taken over, then renewed.

``NodeLease`` is a part of ``kubelet.Kubelet`` (a base class; the attributes it
reads are set by ``Kubelet.__init__``, ``node_uid`` by node registration): the
Lease is owned by the Node (so it goes when the Node goes), held by the node's
name, and renewed every ``heartbeat_seconds`` with an optimistic-concurrency
update; a Lease that vanished (404) or moved on (409) is fetched or made anew,
up to three tries a beat. A powered-off kubelet writes nothing.

Concurrency: runs on the kubelet's asyncio loop; ``_lease_loop`` is one task,
started and cancelled by the kubelet; ``lease_renewals`` and
``last_lease_renew`` are read (never written) from other threads for reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..api.timestamps import micro_time
from ..client import LEASES, ApiError, Client
from .config import KubeletConfig

log = logging.getLogger("raykube.kubelet")


class NodeLease:
    # set by Kubelet.__init__ (node_uid by NodeRegistration._register_node)
    config: KubeletConfig
    client: Client
    powered_off: bool
    node_uid: str | None
    lease_renewals: int
    last_lease_renew: float | None
    _lease: dict[str, Any] | None

    def _lease_body(self) -> dict[str, Any]:
        md: dict[str, Any] = {"name": self.config.name, "namespace": "kube-node-lease"}
        if self.node_uid:
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.config.name, "uid": self.node_uid}
            ]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": md,
            "spec": {
                "holderIdentity": self.config.name,
                "leaseDurationSeconds": self.config.lease_duration_seconds,
                "renewTime": micro_time(),
            },
        }

    async def _ensure_lease(self) -> None:
        try:
            self._lease = await self.client.create(LEASES, self._lease_body(), "kube-node-lease")
        except ApiError as exc:
            if not exc.already_exists:
                raise
            self._lease = await self.client.get(LEASES, self.config.name, "kube-node-lease")
            await self._renew_lease()
            return
        self.lease_renewals += 1
        self.last_lease_renew = time.time()

    async def _renew_lease(self) -> None:
        for _ in range(3):
            if self._lease is None:
                try:
                    self._lease = await self.client.get(LEASES, self.config.name, "kube-node-lease")
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                    self._lease = await self.client.create(LEASES, self._lease_body(), "kube-node-lease")
                    self.lease_renewals += 1
                    self.last_lease_renew = time.time()
                    return
            body = self._lease_body()
            body["metadata"]["resourceVersion"] = (self._lease.get("metadata") or {}).get("resourceVersion")
            body["metadata"].setdefault("ownerReferences", (self._lease.get("metadata") or {}).get("ownerReferences"))
            if self.powered_off:
                return
            try:
                self._lease = await self.client.update(LEASES, body)
                self.lease_renewals += 1
                self.last_lease_renew = time.time()
                return
            except ApiError as exc:
                if exc.code in (404, 409):
                    self._lease = None
                    continue
                raise

    async def _lease_loop(self) -> None:
        period = self.config.heartbeat_seconds or 10.0
        while True:
            await asyncio.sleep(period)
            if self.powered_off:
                return
            try:
                await self._renew_lease()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried at the next beat
                log.warning("lease renewal failed: %s", exc)
