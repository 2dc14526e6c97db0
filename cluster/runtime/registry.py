"""Container runtimes by name: a node's ``KubeletConfig.runtime`` picks one here.

``create_runtime("process", RuntimeOptions(node=...))``. Built in: ``process``
(``ProcessRuntime``: every container a real process group) and ``hollow``
(``HollowRuntime``: simulated containers). A new runtime registers a factory
with ``register_runtime``.

Concurrency: the registry is filled at import time; reading it is safe from
any thread.
"""

from __future__ import annotations

from typing import Callable

from .hollow import HollowRuntime
from .interface import Runtime, RuntimeOptions
from .process import ProcessRuntime

RuntimeFactory = Callable[[RuntimeOptions], Runtime]

_FACTORIES: dict[str, RuntimeFactory] = {
    "process": ProcessRuntime.from_options,
    "hollow": HollowRuntime.from_options,
}


def register_runtime(name: str, factory: RuntimeFactory) -> None:
    _FACTORIES[name] = factory


def runtime_names() -> list[str]:
    return sorted(_FACTORIES)


def create_runtime(name: str, opts: RuntimeOptions) -> Runtime:
    """The runtime called ``name``; ValueError for a name nobody registered."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown container runtime {name!r} (known: {', '.join(runtime_names())})")
    return factory(opts)
