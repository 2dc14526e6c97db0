"""ReplicaSets (apps/v1): defaulting and validation.

Concurrency: pure functions; defaulting mutates only the object it is given,
which belongs to one request.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from .podspec import default_pod_spec
from .workloads import validate_workload


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    tmpl = spec.setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}), template=True)


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return validate_workload(obj, old, "ReplicaSet").causes
