"""What is special about each kind: one module per kind, with its defaulting and validation.

``podspec`` and ``workloads`` hold what several kinds share (pod specs and
pod templates; the apps/v1 selector and template rules). The public
defaulting and validation functions are re-exported here for callers that
want a kind's rules without its module (tests, tools).

Concurrency: pure functions; see each module.
"""

from __future__ import annotations

from .configmaps import validate_configmap
from .deployments import default_deployment, validate_deployment
from .endpoints import default_endpoints, validate_endpoints
from .events import default_event, validate_event
from .leases import validate_lease
from .namespaces import default_namespace, validate_namespace
from .nodes import validate_node
from .pods import add_default_tolerations, default_pod, qos_class, validate_pod, validate_pod_status
from .podspec import default_pod_spec, validate_pod_spec
from .replicasets import default_replicaset, validate_replicaset
from .secrets import default_secret, validate_secret
from .services import default_service, validate_service
from .workloads import validate_workload_status

__all__ = [
    "add_default_tolerations", "default_deployment", "default_endpoints", "default_event", "default_namespace",
    "default_pod", "default_pod_spec", "default_replicaset", "default_secret", "default_service", "qos_class",
    "validate_configmap", "validate_deployment", "validate_endpoints", "validate_event", "validate_lease",
    "validate_namespace", "validate_node", "validate_pod", "validate_pod_spec", "validate_pod_status",
    "validate_replicaset", "validate_secret", "validate_service", "validate_workload_status",
]
