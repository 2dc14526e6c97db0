"""``HollowFleet``: many hollow kubelets on one loop, one API client, one pod informer.

Concurrency: everything runs on the caller's asyncio loop; ``power_off``
follows ``Kubelet.power_off`` (thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ..client import PODS, Client, Informer
from ..kubelet import Kubelet, KubeletConfig

log = logging.getLogger("raykube.hollow")


class HollowFleet:
    """Many hollow kubelets on one loop, one client, one pod informer."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        count: int,
        state_dir: str,
        prefix: str = "hollow-",
        index_base: int = 1000,
        ca_file: str | None = None,
        ca_data: str | None = None,
        profile: str = "kubernetes",
        cpu: str = "4",
        memory: str = "16Gi",
        max_pods: int = 110,
        labels: dict[str, str] | None = None,
        start_concurrency: int = 20,
    ) -> None:
        self.client = Client(
            api_url, token=token, ca_file=ca_file, ca_data=ca_data, user_agent="hollow-fleet", max_connections=64
        )
        self.configs = [
            KubeletConfig(
                name=f"{prefix}{i}",
                api_url=api_url,
                state_dir=os.path.join(state_dir, f"{prefix}{i}"),
                index=index_base + i,
                token=token,
                profile=profile,
                cpu=cpu,
                memory=memory,
                max_pods=max_pods,
                labels={"raykube.io/hollow": "true", **(labels or {})},
                runtime="hollow",
                serve_http=False,
                events=False,
            )
            for i in range(count)
        ]
        self.kubelets: dict[str, Kubelet] = {}
        self.start_concurrency = start_concurrency
        self.informer: Informer | None = None

    async def start(self) -> None:
        sem = asyncio.Semaphore(self.start_concurrency)

        async def one(cfg: KubeletConfig) -> None:
            async with sem:
                kl = Kubelet(cfg, client=self.client, external_pods=True)
                await kl.start()
                self.kubelets[cfg.name] = kl

        await asyncio.gather(*(one(c) for c in self.configs))
        self.informer = Informer(self.client, PODS, None, resync_period=60.0, name="hollow-fleet/pods")
        self.informer.add_event_handler(
            on_add=self._dispatch, on_update=lambda old, new: self._dispatch(new), on_delete=self._dispatch_delete
        )
        self.informer.start()
        await self.informer.wait_for_sync(60)
        log.info("hollow fleet up: %d nodes", len(self.kubelets))

    def _dispatch(self, pod: dict[str, Any]) -> None:
        kl = self.kubelets.get((pod.get("spec") or {}).get("nodeName") or "")
        if kl is not None:
            kl.on_pod(pod)

    def _dispatch_delete(self, pod: dict[str, Any]) -> None:
        kl = self.kubelets.get((pod.get("spec") or {}).get("nodeName") or "")
        if kl is not None:
            kl.on_pod_deleted(pod)

    def power_off(self, name: str) -> int:
        kl = self.kubelets.get(name)
        if kl is None:
            raise KeyError(name)
        return int(kl.power_off())

    async def stop(self) -> None:
        if self.informer is not None:
            await self.informer.stop()
        await asyncio.gather(*(kl.stop(0.0) for kl in self.kubelets.values()), return_exceptions=True)
        await self.client.close()

    def info(self) -> dict[str, Any]:
        return {
            "nodes": len(self.kubelets),
            "pods": sum(len(k.workers) for k in self.kubelets.values()),
            "lease_renewals": sum(k.lease_renewals for k in self.kubelets.values()),
        }
