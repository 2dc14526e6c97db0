"""Deployments (apps/v1): defaulting and validation.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from ..strategy import Obj
from .podspec import default_pod_spec
from .workloads import WorkloadStrategy, validate_int_or_percent, validate_workload


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strat = spec.setdefault("strategy", {})
    strat.setdefault("type", "RollingUpdate")
    if strat["type"] == "RollingUpdate":
        ru = strat.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    tmpl = spec.setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}), template=True)


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = validate_workload(obj, old, "Deployment")
    spec = obj.get("spec") or {}
    strat = spec.get("strategy") or {}
    st = strat.get("type")
    v.enum("spec.strategy.type", st, ["Recreate", "RollingUpdate"])
    if st == "Recreate" and strat.get("rollingUpdate") is not None:
        v.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    if st == "RollingUpdate":
        ru = strat.get("rollingUpdate") or {}
        mu = validate_int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"), v)
        ms = validate_int_or_percent("spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"), v)
        if mu is not None and isinstance(ru.get("maxUnavailable"), str) and mu > 1:
            v.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"), "must not be greater than 100%"
            )
        if mu == 0 and ms == 0:
            v.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                ru.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )
    v.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int):
        if pds <= 0:
            v.invalid("spec.progressDeadlineSeconds", pds, "must be greater than 0")
        elif pds <= (spec.get("minReadySeconds") or 0):
            v.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")
    return v.causes


class DeploymentStrategy(WorkloadStrategy):
    def default(self, obj: Obj) -> None:
        default_deployment(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_deployment(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_deployment(obj, old)
