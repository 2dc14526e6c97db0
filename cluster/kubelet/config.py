"""Kubelet configuration (one ``KubeletConfig`` per node).

Concurrency: plain data, built once and then only read.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from ..addresses import node_addresses
from ..profiles import get_profile

# Container restart back-off (base, max) seconds per timing profile: kubelet's 10 s -> 5 min upstream.
BACKOFF = {"kubernetes": (10.0, 300.0), "demo": (1.0, 30.0)}
# How often each pod worker re-checks its pod without any event (kubelet's --sync-frequency is 1 min).
RESYNC = {"kubernetes": 60.0, "demo": 10.0}


def _host_memory() -> int:
    try:
        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001
        return 8 * 2**30


@dataclass
class KubeletConfig:
    name: str
    api_url: str
    state_dir: str
    index: int = 0  # node number: picks InternalIP and podCIDR (cluster.addresses.node_addresses)
    address_slot: int = 0  # the cluster's address slot (cluster.addresses)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    ca_file: str | None = None
    ca_data: str | None = field(default=None, repr=False)
    profile: str = "demo"
    node_ip: str | None = None  # default: node_addresses(index, address_slot)[0]
    pod_cidr: str | None = None  # default: node_addresses(index, address_slot)[1]
    kubelet_port: int = 0  # log/status HTTP server port on node_ip (0 = any free port)
    cpu: str | None = None  # capacity; default: the host's CPU count
    memory: str | None = None  # capacity; default: the host's RAM
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)  # registration taints (only on create)
    cgroups: str = "auto"  # auto | v2 | v1 | off
    rss_poll_interval: float = 0.25
    backoff_base: float | None = None  # default from the profile (BACKOFF)
    backoff_max: float | None = None
    resync_seconds: float | None = None
    heartbeat_seconds: float | None = None  # Lease renewal; default from the profile
    node_status_seconds: float | None = None  # Node status refresh; default from the profile
    lease_duration_seconds: int | None = None
    events: bool = True
    container_nice: int = 5  # containers run this much nicer than the kubelet (0 = same priority)
    ray_node_id: str | None = None  # recorded as a label when hosted by a Ray actor
    runtime: str = "process"  # container runtime (cluster.runtime.registry): process | hollow
    network: str = "loopback"  # pod network (cluster.network.registry)
    serve_http: bool = True  # the log/status HTTP server (hollow fleets turn it off)

    def __post_init__(self) -> None:
        prof = get_profile(self.profile)
        ip, cidr = node_addresses(self.index, self.address_slot)
        self.node_ip = self.node_ip or ip
        self.pod_cidr = self.pod_cidr or cidr
        base, mx = BACKOFF.get(self.profile, BACKOFF["kubernetes"])
        self.backoff_base = float(self.backoff_base if self.backoff_base is not None else base)
        self.backoff_max = float(self.backoff_max if self.backoff_max is not None else mx)
        self.resync_seconds = float(self.resync_seconds or RESYNC.get(self.profile, 60.0))
        self.heartbeat_seconds = float(self.heartbeat_seconds or prof.heartbeat_seconds)
        self.node_status_seconds = float(self.node_status_seconds or prof.node_status_seconds)
        if self.lease_duration_seconds is None:
            self.lease_duration_seconds = max(1, int(round(prof.node_monitor_grace)))
        self.cpu = self.cpu or str(os.cpu_count() or 1)
        self.memory = self.memory or f"{_host_memory() // 1024}Ki"

    def read_token(self) -> str | None:
        if self.token:
            return self.token
        if self.token_file:
            with open(self.token_file) as f:
                return f.read().strip()
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
