"""``cluster.runtime``: the container runtimes of raykube's kubelet.

- ``interface``: the ``Runtime`` protocol the kubelet depends on, and the
  data it passes (``ContainerSpec``, ``ContainerInstance``, ``ExitStatus``,
  ``StartError``, ``RuntimeOptions``).
- ``registry``: ``create_runtime(name, options)`` - a node's runtime by name.
- ``process``: ``ProcessRuntime`` - every container instance is a real OS
  process group (``start_new_session``) with its env, working directory and
  log file, bound to the kubelet's life (``PR_SET_PDEATHSIG``), exit seen
  through a pidfd on the event loop; ``stop`` = SIGTERM, grace, SIGKILL.
- ``hollow``: ``HollowRuntime`` - containers only pretend to run (scale runs).
- ``cgroups``: memory/CPU limits - cgroup v2 or v1 where the host lets us
  create cgroups, else memory enforced by polling process-tree RSS (SIGKILL
  and ``OOMKilled``) and CPU unenforced. The mechanism in use is on the
  Node's ``raykube.io/limits`` annotation and in OOM messages.
- ``probes``: exec, httpGet and tcpSocket handlers for probes and hooks.

Images come from ``cluster.images`` (the built-in catalog).

Concurrency: see each module; runtimes are owned by one asyncio loop.
"""

from .cgroups import Limiter, detect
from .hollow import HollowRuntime
from .interface import ContainerInstance, ContainerSpec, ExitStatus, Runtime, RuntimeOptions, StartError
from .probes import ProbeContext, run_probe
from .process import Process, ProcessRuntime
from .registry import create_runtime, register_runtime, runtime_names

__all__ = [
    "ContainerInstance",
    "ContainerSpec",
    "ExitStatus",
    "HollowRuntime",
    "Limiter",
    "Process",
    "ProcessRuntime",
    "ProbeContext",
    "Runtime",
    "RuntimeOptions",
    "StartError",
    "create_runtime",
    "detect",
    "register_runtime",
    "run_probe",
    "runtime_names",
]
