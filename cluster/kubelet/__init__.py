"""``cluster.kubelet``: raykube's node agent.

The rooms:

- ``kubelet.Kubelet``: registers the Node (``node``), renews its Lease
  (``lease``), watches the pods bound to it and gives each a ``PodWorker``
  (``workers``); admits pods (``admission``: OutOfpods / OutOfcpu /
  OutOfmemory, with the scheduler's ``cluster.api.resources.pod_requests``).
- The pod core, pure (no I/O, no clock reads, no awaits), unit-tested on its
  own: ``podstate.PodState`` is one pod's state machine - events in
  (``podevents``: pod updated or deleted, container started / exited, probe
  result, admission and sandbox answers, ...), actions out (start / kill /
  stop containers, run probes, wake up later, write the status, emit an
  event, delete the pod object); ``containerstate`` holds one container's
  record and rules (restart policy, back-off, probe thresholds, readiness);
  ``podstatus`` the phase, conditions and container statuses.
- ``pods.PodWorker``: the thin async side - one task per pod that carries the
  actions out against the container runtime, the pod network and the API,
  and feeds back what came of them; ``launch`` builds a container
  instance's image, env, command line, files and ``ContainerSpec``.
- ``server.KubeletServer``: ``/containerLogs`` (for ``kubectl logs``),
  ``/pods``, ``/runtime``, ``/healthz``;
- ``config.KubeletConfig``; ``envvars``; events go through
  ``cluster.client.EventRecorder``.

The kubelet depends on two protocols and picks their implementations per
node by name: ``cluster.runtime.Runtime`` (``KubeletConfig.runtime``:
``process``, ``hollow``) and ``cluster.network.PodNetwork``
(``KubeletConfig.network``: ``loopback``). It never imports
``cluster.hollow`` (which runs many hollow kubelets in one process).

Run one without Ray::

    python -m cluster.kubelet --name n1 --api https://127.0.0.1:6443 \\
        --token-file n1.token --ca ca.crt --index 0 --state-dir /tmp/n1 --profile demo

or hosted by a Ray actor (``cluster.actors.kubelet.KubeletActor``).

Concurrency: one asyncio loop per kubelet; see each module.
"""

from .config import KubeletConfig
from .kubelet import Kubelet

__all__ = ["Kubelet", "KubeletConfig"]
