"""The ``hollow`` runtime: containers that only pretend to run (KWOK-style), for scale runs.

``HollowRuntime`` starts nothing: a container "runs" until it is stopped
(then it exits 0 at once), except ``raykube/crash``, which "exits" with
``EXIT_CODE`` after ``CRASH_AFTER`` seconds (env or ``--after``/``--code``
args) so restart back-off can be exercised at scale. It is ``simulated``:
the kubelet runs no probes for its containers (they pass); memory/CPU limits
are not simulated; there are no logs. ``cluster.hollow`` runs many kubelets
with this runtime in one process.

Concurrency: one asyncio loop owns the runtime; ``kill_everything`` and
``snapshot`` are safe from other threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from .interface import ContainerInstance, ContainerSpec, ExitStatus, RuntimeOptions


@dataclass
class HollowLimiter:
    memory: str = "hollow"
    cpu: str = "hollow"
    version: int = 0
    poll_interval: float = 0.0

    def describe(self) -> str:
        return "hollow node: containers are simulated, nothing runs and no limits apply"


def _crash_params(spec: ContainerSpec) -> tuple[float, int] | None:
    if "cluster.images.crash" not in spec.argv:
        return None
    after = float(spec.env.get("CRASH_AFTER") or 1.0)
    code = int(spec.env.get("EXIT_CODE") or 1)
    args = spec.argv[spec.argv.index("cluster.images.crash") + 1 :]
    for i, a in enumerate(args[:-1]):
        if a == "--after":
            after = float(args[i + 1])
        elif a == "--code":
            code = int(args[i + 1])
    return after, code


class HollowRuntime:
    """The ``hollow`` runtime (``cluster.runtime.interface.Runtime``)."""

    name = "hollow"
    # Hollow nodes pose as ordinary process-runtime nodes to the control plane.
    version = "raykube-process://0.1.0"
    simulated = True

    def __init__(self, node: str) -> None:
        self.node = node
        self.limiter = HollowLimiter()
        self.procs: dict[str, ContainerInstance] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.killed_everything = False

    @classmethod
    def from_options(cls, opts: RuntimeOptions) -> "HollowRuntime":
        return cls(opts.node)

    async def start(self, spec: ContainerSpec) -> ContainerInstance:
        loop = self._loop = asyncio.get_running_loop()
        proc = ContainerInstance(spec, 0, time.time(), loop.create_future())
        with self._lock:
            self.procs[spec.id] = proc
        crash = _crash_params(spec)
        if crash is not None:
            loop.call_later(max(0.0, crash[0]), self._exit, proc, crash[1], None)
        return proc

    def _exit(self, proc: ContainerInstance, code: int, sig: int | None) -> None:
        if proc.exited.done():
            return
        proc.exited.set_result(ExitStatus(code, sig, False, "", time.time()))
        with self._lock:
            self.procs.pop(proc.spec.id, None)

    def signal(self, proc: ContainerInstance, sig: int) -> None:
        self._exit(proc, 128 + sig, sig)

    async def stop(self, proc: ContainerInstance, grace: float, *, reason: str = "") -> ExitStatus:
        self._exit(proc, 0, None)
        return proc.exited.result()

    def kill_everything(self) -> int:
        self.killed_everything = True
        with self._lock:
            procs = list(self.procs.values())
        if self._loop is not None:
            for p in procs:
                self._loop.call_soon_threadsafe(self._exit, p, 137, 9)
        return len(procs)

    async def close(self, grace: float = 0.0) -> None:
        for p in list(self.procs.values()):
            self._exit(p, 0, None)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            procs = list(self.procs.values())
        return [
            {
                "id": p.spec.id,
                "pod": p.spec.pod_key,
                "podUID": p.spec.pod_uid,
                "container": p.spec.name,
                "pid": None,
                "pgid": None,
                "startedAt": p.started_at,
                "argv": p.spec.argv,
                "hollow": True,
            }
            for p in procs
        ]
