"""raykube's orchestrator: a Kubernetes-style control plane and node agents on Ray.

Subpackages: ``cluster.apiserver`` (the Kubernetes-compatible API server over
raftstore). Dependencies flow one way: ``cluster`` -> ``raftstore.client``.
"""
