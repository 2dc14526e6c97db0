"""Pod networks by name: a node's ``KubeletConfig.network`` picks one here.

``create_network("loopback", NetworkOptions(node=..., pod_cidr=...))``. Built
in: ``loopback`` (addresses of the node's /24 on the host's loopback). A new
network registers a factory with ``register_network``.

Concurrency: the registry is filled at import time; reading it is safe from
any thread.
"""

from __future__ import annotations

from typing import Callable

from .interface import NetworkOptions, PodNetwork
from .loopback import LoopbackNetwork

NetworkFactory = Callable[[NetworkOptions], PodNetwork]

_FACTORIES: dict[str, NetworkFactory] = {
    "loopback": LoopbackNetwork.from_options,
}


def register_network(name: str, factory: NetworkFactory) -> None:
    _FACTORIES[name] = factory


def network_names() -> list[str]:
    return sorted(_FACTORIES)


def create_network(name: str, opts: NetworkOptions) -> PodNetwork:
    """The pod network called ``name``; ValueError for a name nobody registered."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown pod network {name!r} (known: {', '.join(network_names())})")
    return factory(opts)
