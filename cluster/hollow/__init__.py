"""Hollow nodes: kubelets whose containers only pretend to run (KWOK-style), for scale runs.

``HollowRuntime`` has the ``ProcessRuntime`` interface but starts nothing:
a container "runs" until it is stopped (then it exits 0 at once), except
``raykube/crash``, which "exits" with ``EXIT_CODE`` after ``CRASH_AFTER``
seconds (env or ``--after``/``--code`` args) so restart back-off can be
exercised at scale. Probes always pass; memory/CPU limits are not
simulated; there are no logs (no HTTP server: ``kubectl logs`` answers that
the node has no log endpoint). Everything else is the real kubelet: Node
registration, Lease renewal, pod IPs from the podCIDR, pod status with
phases, conditions and container states, graceful deletion.

``HollowFleet`` runs many hollow kubelets in one process and event loop with
one shared API client and ONE pod informer (all pods, dispatched by
``spec.nodeName``) instead of one watch per node; each node still renews its
own Lease. Its token must be allowed to act for every node (an admin or
``system:masters`` token): the Node authorizer would need one token per node.

    python -m cluster.hollow --count 100 --prefix hollow- --index-base 1000 \\
        --api https://127.0.0.1:6443 --token-file admin.token --ca ca.crt --state-dir /tmp/hollow

Cost here: ~tens of KiB and one Lease write per heartbeat per node; the
``kubernetes`` profile (10 s heartbeat) suits hundreds to thousands of nodes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..runtime.process import ContainerSpec, ExitStatus, Process

log = logging.getLogger("raykube.hollow")


@dataclass
class HollowLimiter:
    memory: str = "hollow"
    cpu: str = "hollow"
    version: int = 0
    poll_interval: float = 0.0

    def describe(self) -> str:
        return "hollow node: containers are simulated, nothing runs and no limits apply"


def _crash_params(spec: ContainerSpec) -> tuple[float, int] | None:
    if "cluster.images.crash" not in spec.argv:
        return None
    after = float(spec.env.get("CRASH_AFTER") or 1.0)
    code = int(spec.env.get("EXIT_CODE") or 1)
    args = spec.argv[spec.argv.index("cluster.images.crash") + 1:]
    for i, a in enumerate(args[:-1]):
        if a == "--after":
            after = float(args[i + 1])
        elif a == "--code":
            code = int(args[i + 1])
    return after, code


class HollowRuntime:
    def __init__(self, node: str) -> None:
        self.node = node
        self.limiter = HollowLimiter()
        self.procs: dict[str, Process] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.killed_everything = False
        self._next_pid = 0

    async def start(self, spec: ContainerSpec) -> Process:
        loop = self._loop = asyncio.get_running_loop()
        proc = Process(spec, 0, time.time(), None, None, loop.create_future())  # type: ignore[arg-type]
        with self._lock:
            self.procs[spec.id] = proc
        crash = _crash_params(spec)
        if crash is not None:
            loop.call_later(max(0.0, crash[0]), self._exit, proc, crash[1], None)
        return proc

    def _exit(self, proc: Process, code: int, sig: int | None) -> None:
        if proc.exited.done():
            return
        proc.exited.set_result(ExitStatus(code, sig, False, "", time.time()))
        with self._lock:
            self.procs.pop(proc.spec.id, None)

    def signal(self, proc: Process, sig: int) -> None:
        self._exit(proc, 128 + sig, sig)

    async def stop(self, proc: Process, grace: float, *, reason: str = "") -> ExitStatus:
        self._exit(proc, 0, None)
        return proc.exited.result()

    def kill_everything(self) -> int:
        self.killed_everything = True
        with self._lock:
            procs = list(self.procs.values())
        if self._loop is not None:
            for p in procs:
                self._loop.call_soon_threadsafe(self._exit, p, 137, 9)
        return len(procs)

    async def close(self, grace: float = 0.0) -> None:
        for p in list(self.procs.values()):
            self._exit(p, 0, None)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            procs = list(self.procs.values())
        return [{"id": p.spec.id, "pod": p.spec.pod_key, "podUID": p.spec.pod_uid, "container": p.spec.name,
                 "pid": None, "pgid": None, "startedAt": p.started_at, "argv": p.spec.argv, "hollow": True}
                for p in procs]


class HollowFleet:
    """Many hollow kubelets on one loop, one client, one pod informer."""

    def __init__(self, *, api_url: str, token: str, count: int, state_dir: str, prefix: str = "hollow-",
                 index_base: int = 1000, ca_file: str | None = None, ca_data: str | None = None,
                 profile: str = "kubernetes", cpu: str = "4", memory: str = "16Gi", max_pods: int = 110,
                 labels: dict[str, str] | None = None, start_concurrency: int = 20) -> None:
        from ..client import Client
        from ..kubelet import KubeletConfig

        self.client = Client(api_url, token=token, ca_file=ca_file, ca_data=ca_data, user_agent="hollow-fleet",
                             max_connections=64)
        self.configs = [KubeletConfig(
            name=f"{prefix}{i}", api_url=api_url, state_dir=os.path.join(state_dir, f"{prefix}{i}"),
            index=index_base + i, token=token, profile=profile, cpu=cpu, memory=memory, max_pods=max_pods,
            labels={"raykube.io/hollow": "true", **(labels or {})}, hollow=True, serve_http=False,
            events=False) for i in range(count)]
        self.kubelets: dict[str, Any] = {}
        self.start_concurrency = start_concurrency
        self.informer: Any = None

    async def start(self) -> None:
        from ..client import PODS, Informer
        from ..kubelet import Kubelet

        sem = asyncio.Semaphore(self.start_concurrency)

        async def one(cfg: Any) -> None:
            async with sem:
                kl = Kubelet(cfg, client=self.client, external_pods=True)
                await kl.start()
                self.kubelets[cfg.name] = kl

        await asyncio.gather(*(one(c) for c in self.configs))
        self.informer = Informer(self.client, PODS, None, resync_period=60.0, name="hollow-fleet/pods")
        self.informer.add_event_handler(on_add=self._dispatch, on_update=lambda old, new: self._dispatch(new),
                                        on_delete=self._dispatch_delete)
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
        return {"nodes": len(self.kubelets),
                "pods": sum(len(k.workers) for k in self.kubelets.values()),
                "lease_renewals": sum(k.lease_renewals for k in self.kubelets.values())}


__all__ = ["HollowFleet", "HollowLimiter", "HollowRuntime"]
