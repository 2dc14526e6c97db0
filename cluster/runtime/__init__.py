"""``cluster.runtime``: the container runtime of raykube's kubelet.

- ``process``: ``ProcessRuntime`` - every container instance is a real OS
  process group (``start_new_session``) with its env, working directory and
  log file, bound to the kubelet's life (``PR_SET_PDEATHSIG``), exit seen
  through a pidfd on the event loop; ``stop`` = SIGTERM, grace, SIGKILL.
- ``cgroups``: memory/CPU limits - cgroup v2 or v1 where the host lets us
  create cgroups, else memory enforced by polling process-tree RSS (SIGKILL
  and ``OOMKilled``) and CPU unenforced. The mechanism in use is on the
  Node's ``raykube.io/limits`` annotation and in OOM messages.
- ``probes``: exec, httpGet and tcpSocket handlers for probes and hooks.

Images come from ``cluster.images`` (the built-in catalog).
"""

from .cgroups import Limiter, detect
from .probes import ProbeContext, run_probe
from .process import ContainerSpec, ExitStatus, Process, ProcessRuntime, StartError

__all__ = ["ContainerSpec", "ExitStatus", "Limiter", "Process", "ProcessRuntime", "ProbeContext", "StartError",
           "detect", "run_probe"]
