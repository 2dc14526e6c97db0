"""Node-lifecycle timing profiles shared by kubelets and the controller manager.

``kubernetes`` mirrors upstream defaults (kubelet lease renewal every 10 s,
node-monitor grace 40 s, pods tolerate not-ready/unreachable for 300 s), so a
lost node's pods move after almost six minutes. ``demo`` is for laptops,
tests and the node-loss benchmark: a 2 s heartbeat, 5 s grace, eviction at
once. Pick one with ``raykube up --profile`` (default ``demo``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Timings:
    name: str
    heartbeat_seconds: float  # kubelet renews its Lease this often
    node_status_seconds: float  # kubelet refreshes Node status (conditions) this often
    node_monitor_period: float  # node-lifecycle controller checks leases this often
    node_monitor_grace: float  # no renewal for this long -> Ready=Unknown + taints
    default_toleration_seconds: int  # added to pods without their own not-ready/unreachable toleration
    pod_gc_terminated_threshold: int  # terminated pods kept before pod GC deletes the oldest

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


KUBERNETES = Timings(
    "kubernetes",
    heartbeat_seconds=10.0,
    node_status_seconds=10.0,
    node_monitor_period=5.0,
    node_monitor_grace=40.0,
    default_toleration_seconds=300,
    pod_gc_terminated_threshold=12500,
)
DEMO = Timings(
    "demo",
    heartbeat_seconds=2.0,
    node_status_seconds=2.0,
    node_monitor_period=0.5,
    node_monitor_grace=5.0,
    default_toleration_seconds=0,
    pod_gc_terminated_threshold=1000,
)

PROFILES: dict[str, Timings] = {t.name: t for t in (KUBERNETES, DEMO)}


def get_profile(name: str) -> Timings:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown timing profile {name!r} (choose from {', '.join(PROFILES)})") from None
