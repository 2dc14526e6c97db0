"""ReplicaSets (apps/v1): defaulting and validation; a new one starts with status.replicas 0.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from ..strategy import Obj
from .podspec import default_pod_spec
from .workloads import WorkloadStrategy, validate_workload


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    tmpl = spec.setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}), template=True)


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return validate_workload(obj, old, "ReplicaSet").causes


class ReplicaSetStrategy(WorkloadStrategy):
    def default(self, obj: Obj) -> None:
        default_replicaset(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        return {"replicas": 0}  # ReplicaSetStatus.replicas is required; Kubernetes stores its zero value

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_replicaset(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_replicaset(obj, old)
