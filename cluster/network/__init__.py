"""``cluster.network``: pod networks of raykube's kubelet.

- ``interface``: the ``PodNetwork`` protocol the kubelet depends on.
- ``registry``: ``create_network(name, options)`` - a node's network by name.
- ``loopback``: ``LoopbackNetwork`` - pod addresses from the node's /24 on
  the host's loopback (no isolation).
- ``ipam``: ``PodIPAM`` - host-local address allocation from a CIDR.

Rule: a component below the kubelet; imports nothing from ``cluster`` but
``cluster.api``.

Concurrency: see each module; a network is owned by one asyncio loop.
"""

from .interface import NetworkOptions, PodNetwork
from .ipam import IPAMExhausted, PodIPAM
from .loopback import LoopbackNetwork
from .registry import create_network, network_names, register_network

__all__ = [
    "IPAMExhausted",
    "LoopbackNetwork",
    "NetworkOptions",
    "PodIPAM",
    "PodNetwork",
    "create_network",
    "network_names",
    "register_network",
]
