"""What is special about each kind: one module per kind, and the table of their strategies.

Each ``strategies/<kind>.py`` holds the kind's defaulting and validation and
its ``Strategy`` subclass (see ``..strategy``); ``podspec`` (pod specs and
templates), ``workloads`` (the apps/v1 selector and template rules) and
``serviceallocator`` (ClusterIPs, node ports) serve several. A new kind is a
module and an entry in ``STRATEGIES``, keyed by its group-resource as
kube-apiserver writes it (``<plural>`` in the core group,
``<plural>.<group>`` in others). The public defaulting and validation
functions are re-exported here for callers that want a kind's rules without
its module (tests, tools).

Concurrency: ``build`` makes the strategies of one API server once, at
start; see ``..strategy`` for how they are shared.
"""

from __future__ import annotations

from ..strategy import Settings, Strategy
from .configmaps import ConfigMapStrategy, validate_configmap
from .deployments import DeploymentStrategy, default_deployment, validate_deployment
from .endpoints import EndpointsStrategy, default_endpoints, validate_endpoints
from .events import EventStrategy, default_event, validate_event
from .leases import LeaseStrategy, validate_lease
from .namespaces import NamespaceStrategy, default_namespace, validate_namespace
from .nodes import NodeStrategy, validate_node
from .pods import (
    PodStrategy,
    add_default_tolerations,
    default_pod,
    qos_class,
    validate_pod,
    validate_pod_status,
)
from .podspec import default_pod_spec, validate_pod_spec
from .replicasets import ReplicaSetStrategy, default_replicaset, validate_replicaset
from .secrets import SecretStrategy, default_secret, validate_secret
from .services import ServiceStrategy, default_service, validate_service
from .workloads import validate_workload_status

STRATEGIES: dict[str, type[Strategy]] = {
    "namespaces": NamespaceStrategy,
    "nodes": NodeStrategy,
    "pods": PodStrategy,
    "services": ServiceStrategy,
    "endpoints": EndpointsStrategy,
    "configmaps": ConfigMapStrategy,
    "secrets": SecretStrategy,
    "events": EventStrategy,
    "deployments.apps": DeploymentStrategy,
    "replicasets.apps": ReplicaSetStrategy,
    "leases.coordination.k8s.io": LeaseStrategy,
}


def build(settings: Settings) -> dict[str, Strategy]:
    """One strategy per kind in ``STRATEGIES``, for an API server with ``settings``."""
    return {resource: cls(settings) for resource, cls in STRATEGIES.items()}


__all__ = [
    "STRATEGIES",
    "build",
    "add_default_tolerations",
    "default_deployment",
    "default_endpoints",
    "default_event",
    "default_namespace",
    "default_pod",
    "default_pod_spec",
    "default_replicaset",
    "default_secret",
    "default_service",
    "qos_class",
    "validate_configmap",
    "validate_deployment",
    "validate_endpoints",
    "validate_event",
    "validate_lease",
    "validate_namespace",
    "validate_node",
    "validate_pod",
    "validate_pod_spec",
    "validate_pod_status",
    "validate_replicaset",
    "validate_secret",
    "validate_service",
    "validate_workload_status",
]
