"""``cluster.kubelet``: raykube's node agent.

- ``kubelet.Kubelet``: registers the Node, renews its Lease, watches the
  pods bound to it and runs them through ``cluster.runtime``;
- ``pods.PodWorker``: one level-triggered sync loop per pod (containers,
  restarts with back-off, probes, graceful termination, status);
- ``server.KubeletServer``: ``/containerLogs`` (for ``kubectl logs``),
  ``/pods``, ``/runtime``, ``/healthz``;
- ``ipam.PodIPAM``: pod IPs from the node's podCIDR;
- ``config.KubeletConfig``; ``envvars``; events go through
  ``cluster.client.EventRecorder``.

Run one without Ray::

    python -m cluster.kubelet --name n1 --api https://127.0.0.1:6443 \\
        --token-file n1.token --ca ca.crt --index 0 --state-dir /tmp/n1 --profile demo

or hosted by a Ray actor (``cluster.actors.kubelet.KubeletActor``).
"""

from .config import KubeletConfig
from .kubelet import Kubelet

__all__ = ["Kubelet", "KubeletConfig"]
