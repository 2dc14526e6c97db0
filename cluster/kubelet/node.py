"""The kubelet's Node object: what it says about its node, registering it, and refreshing its status.

``NodeRegistration`` is a part of ``kubelet.Kubelet`` (a base class; the
attributes it reads are set by ``Kubelet.__init__`` and ``start``): it builds
the Node's labels, annotations and status (capacity and allocatable, the
Ready and pressure conditions with stable transition times, addresses,
``daemonEndpoints``, ``nodeInfo``, the image catalog), creates the Node or
patches an existing one (a restarted kubelet), and re-posts the status every
``node_status_seconds``, re-registering a Node that was deleted.
``node_capacity`` is also what admission measures pods against.

Concurrency: runs on the kubelet's asyncio loop; ``_node_status_loop`` is one
task, started and cancelled by the kubelet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from typing import TYPE_CHECKING, Any

from .. import images
from ..api.timestamps import rfc3339
from ..client import NODES, ApiError, Client
from .config import KubeletConfig

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .server import KubeletServer

log = logging.getLogger("raykube.kubelet")

KUBELET_VERSION = "v1.30.0-raykube"


def node_capacity(config: KubeletConfig) -> dict[str, str]:
    return {"cpu": str(config.cpu), "memory": str(config.memory), "pods": str(config.max_pods)}


class NodeRegistration:
    # set by Kubelet.__init__ (runtime by Kubelet.start, before registration)
    config: KubeletConfig
    client: Client
    runtime: Runtime | None
    server: KubeletServer
    node_ip: str
    powered_off: bool
    node_uid: str | None
    allocatable: dict[str, str]
    _cond_times: dict[str, tuple[str, str]]
    _node_ref: dict[str, Any]
    _system_uuid: str

    def _node_status(self) -> dict[str, Any]:
        now = rfc3339()
        assert self.runtime is not None
        cap = node_capacity(self.config)
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
