"""Hollow nodes: kubelets whose containers only pretend to run (KWOK-style), for scale runs.

Each hollow node is the real kubelet with the ``hollow`` container runtime
(``cluster.runtime.hollow``): Node registration, Lease renewal, pod IPs
from the podCIDR, pod status with phases, conditions and container states,
graceful deletion - but no processes, no probes (they pass), no limits and
no logs (no HTTP server: ``kubectl logs`` answers that the node has no log
endpoint).

``fleet.HollowFleet`` runs many hollow kubelets in one process and event
loop with one shared API client and ONE pod informer (all pods, dispatched
by ``spec.nodeName``) instead of one watch per node; each node still renews
its own Lease. Its token must be allowed to act for every node (an admin or
``system:masters`` token): the Node authorizer would need one token per node.

    python -m cluster.hollow --count 100 --prefix hollow- --index-base 1000 \\
        --api https://127.0.0.1:6443 --token-file admin.token --ca ca.crt --state-dir /tmp/hollow

Cost here: ~tens of KiB and one Lease write per heartbeat per node; the
``kubernetes`` profile (10 s heartbeat) suits hundreds to thousands of nodes.

Concurrency: a fleet lives on one asyncio loop.
"""

from .fleet import HollowFleet

__all__ = ["HollowFleet"]
