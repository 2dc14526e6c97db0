"""The pod network interface: what the kubelet needs to give a pod its network.

``PodNetwork`` is a ``typing.Protocol``: ``setup`` gives a pod its network
and returns its IP (re-claiming ``previous_ip`` when it can: a restarted
kubelet keeps its pods' addresses), ``teardown`` releases it (idempotent),
``pod_cidr`` is the node's range, ``name`` says which network it is. Pods
with ``hostNetwork`` never reach it: they use the node's IP. A failure in
``setup`` (any exception) leaves the pod waiting with reason
NetworkNotReady, retried a few seconds later.

Concurrency: one asyncio loop owns a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class NetworkOptions:
    """What a network factory gets from the kubelet's configuration."""

    node: str
    pod_cidr: str


class PodNetwork(Protocol):
    @property
    def name(self) -> str:
        """The registry name (``loopback``)."""
        ...

    @property
    def pod_cidr(self) -> str: ...

    async def setup(self, pod_uid: str, previous_ip: str | None = None) -> str:
        """The pod's IP, its network ready."""
        ...

    async def teardown(self, pod_uid: str) -> None:
        """Release the pod's network; a pod without one is fine."""
        ...
