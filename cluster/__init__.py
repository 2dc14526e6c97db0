"""raykube's orchestrator: a Kubernetes-style control plane and node agents on Ray.

Floors, from the bottom up (``tests/layering.py`` enforces that imports only go down):

0. ``api``        the ground floor: Kubernetes vocabulary as pure functions.
1. leaves         ``profiles``, ``addresses``, ``pki``, ``kubeconfig``, ``images``.
2. ``client``     the one client library (REST, informers, work queue, events, leader election);
   ``runner``     running a component as a process or an actor.
3. components     ``apiserver`` (the only one that talks to raftstore), ``scheduler``,
                  ``controllers``, ``kubelet`` (drives a ``runtime`` and a ``network``),
                  ``hollow``; they meet only through ``client`` and ``api``.
4. ``actors``     the Ray actor wrappers.
5. ``launcher``   the local cluster (up, down, status, nodes); ``cli`` on top.
"""
