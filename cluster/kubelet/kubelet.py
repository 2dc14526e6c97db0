"""The kubelet: one per node.

``Kubelet(KubeletConfig)``; ``await start()`` then ``await run()`` (or
``await stop()``). On start it:

1. creates its container runtime (``cluster.runtime.create_runtime`` by
   ``config.runtime``; the process runtime detects how it can limit
   containers, ``cluster.runtime.cgroups``) - its pod network
   (``cluster.network.create_network`` by ``config.network``) exists from
   construction - and starts its HTTP server (logs, ``/pods``, ``/runtime``)
   on the node's InternalIP;
2. registers its Node - labels (``kubernetes.io/hostname``, ``/os``,
   ``/arch``), ``spec.podCIDR(s)``, ``providerID``, registration taints;
   status with capacity and allocatable (cpu, memory, pods), addresses
   (InternalIP, Hostname), ``daemonEndpoints.kubeletEndpoint.Port``,
   ``nodeInfo``, conditions (Ready and the pressure conditions) - or, if the
   Node exists (a restarted kubelet), updates it;
3. creates or takes over its Lease ``kube-node-lease/<node>`` (owned by the
   Node) and renews it every ``heartbeat_seconds`` (2 s in the demo profile,
   10 s upstream); refreshes the Node's status every ``node_status_seconds``;
4. runs an informer on pods with ``spec.nodeName=<node>`` and a
   ``PodWorker`` per pod UID (``pods``).

``power_off()`` is the node-kill path: it stops all API writes and SIGKILLs
every container process group at once (thread-safe; the caller then kills
the process). ``stop()`` is an orderly shutdown: containers are stopped
(they would die with the kubelet anyway: they are bound to it with
PR_SET_PDEATHSIG) and nothing is written back for them.

The Kubelet is this shell - construction, start, stop, power-off and the
runtime views - over three parts, each a base class in a module of its own
(they share the Kubelet's attributes, so a call goes straight to the method):
``node.NodeRegistration`` (the Node: registration and status refresh),
``lease.NodeLease`` (the heartbeat) and ``workers.PodWorkers`` (pod events,
a ``PodWorker`` per UID, admission, lookups).

Concurrency: everything runs on one asyncio loop; ``power_off`` and
``runtime_info`` may be called from other threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any

import aiohttp

from ..client import PODS, Client, EventRecorder, Informer
from ..network import NetworkOptions, PodNetwork, create_network
from ..runtime import Runtime, RuntimeOptions, create_runtime
from .config import KubeletConfig
from .lease import NodeLease
from .node import KUBELET_VERSION, NodeRegistration
from .pods import PodWorker
from .server import KubeletServer
from .workers import PodWorkers

log = logging.getLogger("raykube.kubelet")

__all__ = ["KUBELET_VERSION", "Kubelet"]


class Kubelet(PodWorkers, NodeRegistration, NodeLease):
    def __init__(self, config: KubeletConfig, *, client: Client | None = None, external_pods: bool = False) -> None:
        """``external_pods``: no informer of its own; the owner (``cluster.hollow.HollowFleet``) feeds pod
        events to ``on_pod`` / ``on_pod_deleted``."""
        self.config = config
        self.node_ip: str = config.node_ip or "127.0.0.1"
        self._owns_client = client is None
        self.client = client or Client(
            config.api_url,
            token=config.read_token(),
            ca_file=config.ca_file,
            ca_data=config.ca_data,
            user_agent=f"kubelet/{config.name}",
            retry_deadline=30.0,
        )
        self.network: PodNetwork = create_network(
            config.network, NetworkOptions(node=config.name, pod_cidr=config.pod_cidr or "127.16.0.0/24")
        )
        self.runtime: Runtime | None = None
        self.events = EventRecorder(self.client, "kubelet", config.name, host=config.name, enabled=config.events)
        self.server = KubeletServer(self)
        self.workers: dict[str, PodWorker] = {}
        self.finished_uids: dict[str, float] = {}
        self.informer: Informer | None = None
        self.http_session: aiohttp.ClientSession | None = None
        self.powered_off = False
        self.node_uid: str | None = None
        self.allocatable: dict[str, str] = {}
        self.lease_renewals = 0
        self.last_lease_renew: float | None = None
        self.started_at = time.time()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._lease: dict[str, Any] | None = None
        self.external_pods = external_pods
        self._cond_times: dict[str, tuple[str, str]] = {}
        self._node_ref: dict[str, Any] = {}
        self._system_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{config.name}.raykube"))

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        cfg = self.config
        os.makedirs(os.path.join(cfg.state_dir, "pods"), exist_ok=True)
        runtime = self.runtime = create_runtime(
            cfg.runtime, RuntimeOptions(node=cfg.name, cgroups=cfg.cgroups, poll_interval=cfg.rss_poll_interval)
        )
        if not runtime.simulated:  # probes and hooks share one HTTP session
            self.http_session = aiohttp.ClientSession()
        if cfg.serve_http:
            await self.server.start(self.node_ip, cfg.kubelet_port)
        await self._register_node()
        if self._owns_client:
            # Fill the request pool now, while the cluster is quiet: a burst of pods would otherwise open
            # its connections (TLS handshakes) while the API server is busiest (see cluster.client.rest).
            await self.client.open_connections()
        await self._ensure_lease()
        self.events.start()
        self.events.event(self._node_ref, "Normal", "Starting", "Starting kubelet.")
        self.events.event(
            self._node_ref,
            "Normal",
            "NodeReady",
            f"Node {cfg.name} status is now: NodeReady ({runtime.limiter.describe()})",
        )
        if not self.external_pods:
            self.informer = Informer(
                self.client,
                PODS,
                None,
                field_selector=f"spec.nodeName={cfg.name}",
                resync_period=max(5.0, cfg.resync_seconds or 10.0),
                name=f"kubelet/{cfg.name}/pods",
            )
            self.informer.add_event_handler(
                on_add=self.on_pod, on_update=lambda old, new: self.on_pod(new), on_delete=self.on_pod_deleted
            )
            self.informer.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._lease_loop(), name="lease"),
            loop.create_task(self._node_status_loop(), name="node-status"),
        ]
        log.info(
            "kubelet %s up: InternalIP %s, podCIDR %s (%s network), port %d, %s runtime, limits: %s",
            cfg.name,
            self.node_ip,
            cfg.pod_cidr,
            self.network.name,
            self.server.port,
            runtime.name,
            runtime.limiter.describe(),
        )

    async def run(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float = 1.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.informer is not None:
            await self.informer.stop()
        for w in list(self.workers.values()):
            await w.stop_now()
        if self.runtime is not None:
            await self.runtime.close(grace)
        await self.events.stop()
        await self.server.stop()
        if self.http_session is not None:
            await self.http_session.close()
        if not self.external_pods:
            await self.client.close()

    def power_off(self) -> int:
        """A powered-off machine: no more API writes, every container SIGKILLed now. Thread-safe."""
        self.powered_off = True
        self.events.enabled = False
        n = self.runtime.kill_everything() if self.runtime is not None else 0
        return n

    # ------------------------------------------------------------ views
    def runtime_info(self) -> dict[str, Any]:
        lim = self.runtime.limiter if self.runtime else None
        return {
            "node": self.config.name,
            "nodeIP": self.node_ip,
            "podCIDR": self.config.pod_cidr,
            "kubeletPid": os.getpid(),
            "port": self.server.port,
            "limits": {
                "memory": lim.memory if lim else None,
                "cpu": lim.cpu if lim else None,
                "description": lim.describe() if lim else None,
            },
            "leaseRenewals": self.lease_renewals,
            "lastLeaseRenew": self.last_lease_renew,
            "poweredOff": self.powered_off,
            "pods": [w.describe() for w in list(self.workers.values())],
            "processes": self.runtime.snapshot() if self.runtime else [],
        }

    def pids(self) -> list[int]:
        """PIDs of every container main process (thread-safe)."""
        return [p["pid"] for p in (self.runtime.snapshot() if self.runtime else []) if p.get("pid")]
