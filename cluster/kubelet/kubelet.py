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

Concurrency: everything runs on one asyncio loop; ``power_off`` and
``runtime_info`` may be called from other threads.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import platform
import time
import uuid
from typing import Any

import aiohttp

from .. import images
from ..api.resources import pod_requests, resource_list
from ..api.timestamps import micro_time, rfc3339
from ..client import CONFIGMAPS, LEASES, NODES, PODS, SECRETS, ApiError, Client, EventRecorder, Informer
from ..network import NetworkOptions, PodNetwork, create_network
from ..runtime import Runtime, RuntimeOptions, create_runtime
from .admission import admission_rejection
from .config import KubeletConfig
from .pods import PodWorker
from .server import KubeletServer

log = logging.getLogger("raykube.kubelet")

KUBELET_VERSION = "v1.30.0-raykube"


class Kubelet:
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

    # ------------------------------------------------------------- pods
    def on_pod(self, pod: dict[str, Any]) -> None:
        if self.powered_off:
            return
        uid = (pod.get("metadata") or {}).get("uid", "")
        if uid in self.finished_uids:
            return
        w = self.workers.get(uid)
        if w is None:
            if (pod.get("spec") or {}).get("nodeName") != self.config.name:
                return
            w = PodWorker(self, pod)
            self.workers[uid] = w
            w.start()
        else:
            w.update(pod)

    def on_pod_deleted(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        w = self.workers.get(uid)
        if w is not None:
            w.mark_deleted(pod)

    def admit(self, w: PodWorker) -> tuple[str, str] | None:
        """The kubelet's admission (``admission``): None, or (reason, message) to reject the pod (phase
        Failed): OutOfpods, OutOfcpu, OutOfmemory against the pods admitted here and not finished."""
        others = [
            pod_requests(o.pod)
            for o in self.workers.values()
            if o is not w and o.state.admitted and o.state.terminal_phase is None
        ]
        return admission_rejection(pod_requests(w.pod), others, resource_list(self._capacity()))

    def worker_done(self, w: PodWorker) -> None:
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]
        self.finished_uids[w.uid] = time.monotonic()
        if len(self.finished_uids) > 10000:
            cutoff = time.monotonic() - 3600
            self.finished_uids = {k: v for k, v in self.finished_uids.items() if v > cutoff}

    def find_worker(self, namespace: str, name: str) -> PodWorker | None:
        found = [w for w in self.workers.values() if w.namespace == namespace and w.name == name]
        if not found:
            return None
        found.sort(key=lambda w: (not w.terminating, w.first_seen))
        return found[-1]

    async def lookup_config(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        res = CONFIGMAPS if kind == "configmaps" else SECRETS
        try:
            obj = await self.client.get(res, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        if kind == "secrets":
            out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
            out.update(obj.get("stringData") or {})
            return out
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}

    # ------------------------------------------------------------- node
    def _capacity(self) -> dict[str, str]:
        return {"cpu": str(self.config.cpu), "memory": str(self.config.memory), "pods": str(self.config.max_pods)}

    def _node_status(self) -> dict[str, Any]:
        now = rfc3339()
        assert self.runtime is not None
        cap = self._capacity()
        self.allocatable = dict(cap)

        def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._cond_since(ctype, status),
            }

        uname = platform.uname()
        return {
            "capacity": cap,
            "allocatable": dict(cap),
            "conditions": [
                cond(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
                ),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.node_ip},
                {"type": "Hostname", "address": self.config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port}},
            "nodeInfo": {
                "machineID": self._machine_id(),
                "systemUUID": self._system_uuid,
                "bootID": self._boot_id(),
                "kernelVersion": uname.release,
                "osImage": f"raykube node on {uname.system} {uname.release}",
                "containerRuntimeVersion": self.runtime.version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine, uname.machine),
            },
            "images": [{"names": [f"{i.name}:latest", i.name], "sizeBytes": 0} for i in images.CATALOG.values()],
        }

    def _cond_since(self, ctype: str, status: str) -> str:
        prev = self._cond_times.get(ctype)
        if prev is None or prev[0] != status:
            prev = (status, rfc3339())
            self._cond_times[ctype] = prev
        return prev[1]

    @staticmethod
    def _machine_id() -> str:
        try:
            with open("/etc/machine-id") as f:
                return f.read().strip()
        except OSError:
            return ""

    @staticmethod
    def _boot_id() -> str:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                return f.read().strip()
        except OSError:
            return ""

    def _node_labels(self) -> dict[str, str]:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        labels = {
            "kubernetes.io/hostname": self.config.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            "node.kubernetes.io/instance-type": "raykube",
        }
        if self.config.ray_node_id:
            labels["raykube.io/ray-node-id"] = self.config.ray_node_id
        labels.update(self.config.labels)
        return labels

    def _node_annotations(self) -> dict[str, str]:
        assert self.runtime is not None
        lim = self.runtime.limiter
        return {
            "raykube.io/kubelet-scheme": "http",
            "raykube.io/limits": lim.describe(),
            "raykube.io/memory-enforcement": lim.memory,
            "raykube.io/cpu-enforcement": lim.cpu,
            "raykube.io/kubelet-pid": str(os.getpid()),
            "node.alpha.kubernetes.io/ttl": "0",
        }

    async def _register_node(self) -> None:
        cfg = self.config
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": cfg.name, "labels": self._node_labels(), "annotations": self._node_annotations()},
            "spec": {"podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr], "providerID": f"raykube://{cfg.name}"},
            "status": self._node_status(),
        }
        if cfg.taints:
            node["spec"]["taints"] = cfg.taints
        deadline = time.monotonic() + 60
        while True:
            try:
                try:
                    out = await self.client.create(NODES, node)
                    log.info("registered node %s", cfg.name)
                except ApiError as exc:
                    if not exc.already_exists:
                        raise
                    out = await self.client.patch(
                        NODES,
                        cfg.name,
                        {
                            "metadata": {
                                "labels": node["metadata"]["labels"],
                                "annotations": node["metadata"]["annotations"],
                            },
                            "spec": {
                                "podCIDR": cfg.pod_cidr,
                                "podCIDRs": [cfg.pod_cidr],
                                "providerID": f"raykube://{cfg.name}",
                            },
                        },
                    )
                    out = await self.client.patch(NODES, cfg.name, {"status": node["status"]}, subresource="status")
                    log.info("node %s already registered; updated it", cfg.name)
                self.node_uid = (out.get("metadata") or {}).get("uid")
                self._node_ref = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": cfg.name, "uid": cfg.name, "namespace": "default"},
                }
                return
            except ApiError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("node registration failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _node_status_loop(self) -> None:
        period = self.config.node_status_seconds or 10.0
        while True:
            await asyncio.sleep(period)
            if self.powered_off:
                return
            try:
                await self.client.patch(NODES, self.config.name, {"status": self._node_status()}, subresource="status")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying
                log.warning("node status update failed: %s", exc)
                if isinstance(exc, ApiError) and exc.not_found:
                    try:
                        await self._register_node()
                    except Exception:  # noqa: BLE001
                        pass

    # ------------------------------------------------------------ lease
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
