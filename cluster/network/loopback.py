"""The ``loopback`` pod network: each pod gets an address of the node's /24 on the host's loopback.

Linux routes all of 127.0.0.0/8 to ``lo``, so a pod's server binds its own
address there and every pod and node reaches it without any setup; there is
no isolation (pods share the host's network namespace). Addresses come from
``PodIPAM`` (host-local, round-robin).

Concurrency: one asyncio loop owns it; nothing inside awaits.
"""

from __future__ import annotations

from .interface import NetworkOptions
from .ipam import PodIPAM


class LoopbackNetwork:
    """The ``loopback`` network (``cluster.network.interface.PodNetwork``)."""

    name = "loopback"

    def __init__(self, pod_cidr: str) -> None:
        self.ipam = PodIPAM(pod_cidr)

    @classmethod
    def from_options(cls, opts: NetworkOptions) -> "LoopbackNetwork":
        return cls(opts.pod_cidr)

    @property
    def pod_cidr(self) -> str:
        return str(self.ipam.network)

    async def setup(self, pod_uid: str, previous_ip: str | None = None) -> str:
        if previous_ip and self.ipam.reserve(pod_uid, previous_ip):
            return previous_ip
        return self.ipam.allocate(pod_uid)

    async def teardown(self, pod_uid: str) -> None:
        self.ipam.release(pod_uid)
