"""The container runtime interface: what the kubelet needs from a runtime, and the data it passes.

A runtime starts container instances from a ``ContainerSpec`` and hands back a
``ContainerInstance`` whose ``exited`` future resolves with an ``ExitStatus``;
it stops them (SIGTERM, grace, SIGKILL), kills everything at once on a power
cut, and lists what it runs. ``Runtime`` is a ``typing.Protocol``: the kubelet
depends on it alone, and ``cluster.runtime.registry`` picks the
implementation for a node by name (``process``: real process groups;
``hollow``: simulated containers).

Concurrency: a runtime is owned by one asyncio loop; ``kill_everything`` and
``snapshot`` must also be safe from other threads (the node-kill path and the
actor's ``runtime()`` call).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol


class StartError(Exception):
    """The container's process could not be started (exit code 128, reason StartError)."""


@dataclass
class ContainerSpec:
    id: str  # unique per container instance
    pod_key: str  # namespace/name
    pod_uid: str
    name: str  # container name
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log_path: str
    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None
    pdeathsig: bool = True
    nice: int = 0  # added to the kubelet's niceness (workloads yield to the control plane)


@dataclass
class ExitStatus:
    exit_code: int
    signal: int | None
    oom_killed: bool
    message: str
    finished_at: float  # wall clock

    @property
    def reason(self) -> str:
        if self.oom_killed:
            return "OOMKilled"
        return "Completed" if self.exit_code == 0 else "Error"


@dataclass
class ContainerInstance:
    """One started instance of a container (a restart is a new instance)."""

    spec: ContainerSpec
    pid: int  # main process; 0 when nothing really runs
    started_at: float  # wall clock
    exited: asyncio.Future[ExitStatus]

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def running(self) -> bool:
        return not self.exited.done()

    @property
    def cgroup_paths(self) -> list[str] | None:
        """The instance's cgroup directories, if the runtime made any."""
        return None


class Limits(Protocol):
    """How a runtime limits containers (reported on the Node and in ``/runtime``)."""

    @property
    def memory(self) -> str: ...

    @property
    def cpu(self) -> str: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class RuntimeOptions:
    """What a runtime factory gets from the kubelet's configuration."""

    node: str
    cgroups: str = "auto"  # auto | v2 | v1 | off (the process runtime's limiter)
    poll_interval: float = 0.25  # RSS polling period where cgroups are unavailable


class Runtime(Protocol):
    """A container runtime, as the kubelet uses it."""

    @property
    def name(self) -> str:
        """The registry name (``process``, ``hollow``)."""
        ...

    @property
    def version(self) -> str:
        """``nodeInfo.containerRuntimeVersion``."""
        ...

    @property
    def simulated(self) -> bool:
        """True when nothing really runs: probes are not run (they pass) and need no HTTP session."""
        ...

    @property
    def limiter(self) -> Limits: ...

    async def start(self, spec: ContainerSpec) -> ContainerInstance:
        """Start an instance; raises ``StartError`` when it cannot."""
        ...

    async def stop(self, proc: ContainerInstance, grace: float, *, reason: str = "") -> ExitStatus:
        """SIGTERM, up to ``grace`` seconds, SIGKILL; the instance's exit status."""
        ...

    def kill_everything(self) -> int:
        """SIGKILL every instance at once (thread-safe); how many there were."""
        ...

    async def close(self, grace: float = 0.0) -> None:
        """Stop every instance and release what the runtime holds."""
        ...

    def snapshot(self) -> list[dict[str, Any]]:
        """One JSON-able dict per running instance (thread-safe)."""
        ...
