"""The served resources: one ``ResourceDef`` per resource, and lookups.

A ``ResourceDef`` says everything the generic handlers need about a resource:
group/version/kind/plural, scope, short names and categories (discovery),
subresources, name rules, field-selector labels, the schema type (see
``schema.py``), defaulting and validation functions, and strategy flags
(status subresource, generation, what DELETE returns). Pure data.

Concurrency: read-only module data, shared by every request coroutine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Cause
from .strategies import (configmaps, deployments, endpoints, events, leases, namespaces, nodes, pods,
                         replicasets, secrets, services, workloads)

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = "v1"


@dataclass
class ResourceDef:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: str
    name_check: str = "subdomain"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    field_labels: frozenset[str] = frozenset()
    default: Callable[[dict[str, Any]], None] | None = None
    validate: Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]] | None = None
    validate_status: Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]] | None = None
    has_generation: bool = False
    reset_status_on_create: bool = True
    return_deleted_object: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gv_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    @property
    def allowed_field_labels(self) -> set[str]:
        base = {"metadata.name"}
        if self.namespaced:
            base.add("metadata.namespace")
        return base | set(self.field_labels)

    def key_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"/registry/{self.plural}/{namespace}/"
        return f"/registry/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"


_STATUS = ("get", "patch", "update")

RESOURCES: list[ResourceDef] = [
    ResourceDef("", "v1", "Namespace", "namespaces", False, "V1Namespace", name_check="label", short_names=("ns",),
                subresources=(Subresource("status", "Namespace", _STATUS), Subresource("finalize", "Namespace",
                                                                                        ("update",))),
                field_labels=frozenset({"status.phase"}), default=namespaces.default_namespace,
                validate=namespaces.validate_namespace, return_deleted_object=False),
    ResourceDef("", "v1", "Node", "nodes", False, "V1Node", short_names=("no",),
                subresources=(Subresource("status", "Node", _STATUS),),
                field_labels=frozenset({"spec.unschedulable"}), validate=nodes.validate_node,
                reset_status_on_create=False),
    ResourceDef("", "v1", "Pod", "pods", True, "V1Pod", short_names=("po",), categories=("all",),
                subresources=(Subresource("status", "Pod", _STATUS), Subresource("binding", "Binding", ("create",)),
                              Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
                              Subresource("log", "Pod", ("get",))),
                field_labels=frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                        "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                                        "status.podIP", "status.nominatedNodeName"}),
                default=pods.default_pod, validate=pods.validate_pod, validate_status=pods.validate_pod_status,
                has_generation=True, return_deleted_object=True),
    ResourceDef("", "v1", "Service", "services", True, "V1Service", name_check="dns1035", short_names=("svc",),
                categories=("all",), subresources=(Subresource("status", "Service", _STATUS),),
                default=services.default_service, validate=services.validate_service),
    ResourceDef("", "v1", "Endpoints", "endpoints", True, "V1Endpoints", short_names=("ep",),
                default=endpoints.default_endpoints, validate=endpoints.validate_endpoints),
    ResourceDef("", "v1", "ConfigMap", "configmaps", True, "V1ConfigMap", short_names=("cm",),
                validate=configmaps.validate_configmap),
    ResourceDef("", "v1", "Secret", "secrets", True, "V1Secret", field_labels=frozenset({"type"}),
                default=secrets.default_secret, validate=secrets.validate_secret),
    ResourceDef("", "v1", "Event", "events", True, "CoreV1Event", short_names=("ev",),
                field_labels=frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                        "involvedObject.uid", "involvedObject.apiVersion",
                                        "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                                        "reportingComponent", "source", "type"}),
                default=events.default_event, validate=events.validate_event),
    ResourceDef("apps", "v1", "Deployment", "deployments", True, "V1Deployment", short_names=("deploy",),
                categories=("all",),
                subresources=(Subresource("status", "Deployment", _STATUS),
                              Subresource("scale", "Scale", _STATUS, "autoscaling", "v1")),
                default=deployments.default_deployment, validate=deployments.validate_deployment,
                validate_status=workloads.validate_workload_status, has_generation=True),
    ResourceDef("apps", "v1", "ReplicaSet", "replicasets", True, "V1ReplicaSet", short_names=("rs",),
                categories=("all",),
                subresources=(Subresource("status", "ReplicaSet", _STATUS),
                              Subresource("scale", "Scale", _STATUS, "autoscaling", "v1")),
                field_labels=frozenset({"status.replicas"}),
                default=replicasets.default_replicaset, validate=replicasets.validate_replicaset,
                validate_status=workloads.validate_workload_status, has_generation=True),
    ResourceDef("coordination.k8s.io", "v1", "Lease", "leases", True, "V1Lease", validate=leases.validate_lease),
]

GROUPS: dict[str, list[str]] = {}
for _r in RESOURCES:
    GROUPS.setdefault(_r.group, [])
    if _r.version not in GROUPS[_r.group]:
        GROUPS[_r.group].append(_r.version)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES}
_BY_PLURAL = {r.plural: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceDef | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceDef | None:
    return _BY_KIND.get((group, kind))


def by_plural(plural: str) -> ResourceDef | None:
    return _BY_PLURAL.get(plural)


def group_versions() -> list[tuple[str, str]]:
    return [(g, v) for g, vs in GROUPS.items() for v in vs]
