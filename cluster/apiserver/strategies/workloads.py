"""What the apps/v1 workloads (Deployments, ReplicaSets) share: selector/template validation, status, generation.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``).
"""

from __future__ import annotations

import re
from typing import Any

from .. import errors
from ..errors import Cause
from ..selector import from_label_selector_object
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata
from .podspec import validate_pod_spec

PERCENT_RE = re.compile(r"^[0-9]+%$")


def validate_int_or_percent(path: str, val: Any, v: V) -> float | None:
    if val is None:
        return None
    if isinstance(val, int):
        if val < 0:
            v.invalid(path, val, "must be greater than or equal to 0")
        return float(val)
    if isinstance(val, str):
        if not PERCENT_RE.match(val):
            v.invalid(
                path,
                val,
                "a valid percent string must be a numeric string followed by an ending '%' "
                "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )
            return None
        return float(val[:-1]) / 100.0
    return None


def validate_workload(obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> V:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        v.required("spec")
        return v
    v.non_negative("spec.replicas", spec.get("replicas"))
    v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    sel = spec.get("selector")
    tmpl = spec.get("template") or {}
    tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not sel:
        v.required("spec.selector")
    elif not sel.get("matchLabels") and not sel.get("matchExpressions"):
        v.invalid("spec.selector", sel, f"empty selector is invalid for {kind.lower()}")
    else:
        v.labels("spec.selector.matchLabels", sel.get("matchLabels"))
        for i, e in enumerate(sel.get("matchExpressions") or []):
            ep = f"spec.selector.matchExpressions[{i}]"
            v.enum(f"{ep}.operator", e.get("operator"), ["In", "NotIn", "Exists", "DoesNotExist"])
            if e.get("operator") in ("In", "NotIn") and not e.get("values"):
                v.required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            if e.get("operator") in ("Exists", "DoesNotExist") and e.get("values"):
                v.forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        try:
            selector = from_label_selector_object(sel)
            if not selector.matches(tlabels):
                v.invalid("spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`")
        except errors.APIError:
            pass
    if not spec.get("template"):
        v.required("spec.template")
    else:
        v.labels("spec.template.metadata.labels", tlabels)
        validate_pod_spec(tmpl.get("spec"), "spec.template.spec", v, template=True)
        rp = (tmpl.get("spec") or {}).get("restartPolicy")
        if rp is not None and rp != "Always":
            v.unsupported("spec.template.spec.restartPolicy", rp, ["Always"])
        if (tmpl.get("spec") or {}).get("activeDeadlineSeconds") is not None:
            v.forbidden(
                "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"
            )
    if old is not None and sel is not None and (old.get("spec") or {}).get("selector") != sel:
        v.invalid("spec.selector", sel, "field is immutable")
    return v


def validate_workload_status(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    st = obj.get("status") or {}
    for f in (
        "replicas",
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
        "fullyLabeledReplicas",
        "observedGeneration",
        "unavailableReplicas",
        "terminatingReplicas",
    ):
        v.non_negative(f"status.{f}", st.get(f))
    return v.causes


class WorkloadStrategy(Strategy):
    """A kind with spec.replicas, a pod template and a controller that reports observedGeneration."""

    has_generation = True

    def validate_status_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_workload_status(obj, old)
