"""The served resources: one ``ResourceDef`` per resource, and lookups.

A ``ResourceDef`` says everything the generic handlers need about a resource:
group/version/kind/plural, scope, short names and categories (discovery),
subresources, name rules, field-selector labels and the schema type (see
``schema.py``). The verbs of a resource and of each subresource are the
ones kube-apiserver's REST storage for it implements: discovery advertises
them and ``routing.served_verbs`` answers 405 for the others. Pure data: what a kind's writes do is its strategy
(``strategies/``), found by ``group_resource``.

Concurrency: read-only module data, shared by every request coroutine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# kube-apiserver's namespace storage implements no DeleteCollection: ``DELETE /api/v1/namespaces`` is a 405.
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


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
    group_resource: str = field(init=False)  # "pods", "deployments.apps": the key of its strategy

    def __post_init__(self) -> None:
        self.group_resource = f"{self.plural}.{self.group}" if self.group else self.plural

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
    ResourceDef(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        "V1Namespace",
        name_check="label",
        short_names=("ns",),
        verbs=NAMESPACE_VERBS,
        subresources=(Subresource("status", "Namespace", _STATUS), Subresource("finalize", "Namespace", ("update",))),
        field_labels=frozenset({"status.phase"}),
    ),
    ResourceDef(
        "",
        "v1",
        "Node",
        "nodes",
        False,
        "V1Node",
        short_names=("no",),
        subresources=(Subresource("status", "Node", _STATUS),),
        field_labels=frozenset({"spec.unschedulable"}),
    ),
    ResourceDef(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        "V1Pod",
        short_names=("po",),
        categories=("all",),
        subresources=(
            Subresource("status", "Pod", _STATUS),
            Subresource("binding", "Binding", ("create",)),
            Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
            Subresource("log", "Pod", ("get",)),
        ),
        field_labels=frozenset(
            {
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            }
        ),
    ),
    ResourceDef(
        "",
        "v1",
        "Service",
        "services",
        True,
        "V1Service",
        name_check="dns1035",
        short_names=("svc",),
        categories=("all",),
        subresources=(Subresource("status", "Service", _STATUS),),
    ),
    ResourceDef("", "v1", "Endpoints", "endpoints", True, "V1Endpoints", short_names=("ep",)),
    ResourceDef("", "v1", "ConfigMap", "configmaps", True, "V1ConfigMap", short_names=("cm",)),
    ResourceDef("", "v1", "Secret", "secrets", True, "V1Secret", field_labels=frozenset({"type"})),
    ResourceDef(
        "",
        "v1",
        "Event",
        "events",
        True,
        "CoreV1Event",
        short_names=("ev",),
        field_labels=frozenset(
            {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
    ),
    ResourceDef(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        "V1Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=(
            Subresource("status", "Deployment", _STATUS),
            Subresource("scale", "Scale", _STATUS, "autoscaling", "v1"),
        ),
    ),
    ResourceDef(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        True,
        "V1ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources=(
            Subresource("status", "ReplicaSet", _STATUS),
            Subresource("scale", "Scale", _STATUS, "autoscaling", "v1"),
        ),
        field_labels=frozenset({"status.replicas"}),
    ),
    ResourceDef("coordination.k8s.io", "v1", "Lease", "leases", True, "V1Lease"),
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


def served(plural: str) -> ResourceDef:
    """The served resource ``plural``, for code that needs one that is always there (KeyError if not)."""
    return _BY_PLURAL[plural]


def group_versions() -> list[tuple[str, str]]:
    return [(g, v) for g, vs in GROUPS.items() for v in vs]
