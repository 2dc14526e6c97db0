"""Pods: defaulting, validation, QoS class, DefaultTolerationSeconds, graceful deletion.

``add_default_tolerations`` is the DefaultTolerationSeconds admission the
registry applies to new pods (the seconds are the API server's setting).
Pod updates may change only images, activeDeadlineSeconds, tolerations and
terminationGracePeriodSeconds; a pod in a terminal phase stays there. A
new pod starts Pending with its QoS class. DELETE of a pod bound to a node
gives it its grace period (the kubelet stops it, then deletes it for good).

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ...api.pods import TERMINAL_PHASES
from ...api.quantity import QuantityError, parse_quantity
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata
from .podspec import default_pod_spec, validate_pod_spec

DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-{not-ready,unreachable}-toleration-seconds
TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def add_default_tolerations(spec: dict[str, Any], seconds: int) -> None:
    """The DefaultTolerationSeconds admission plugin (pod create only): a pod that does not tolerate the
    not-ready or unreachable NoExecute taint gets a toleration for ``seconds``."""
    tols = spec.setdefault("tolerations", [])
    for key in TOLERATION_KEYS:
        if not any(
            (t.get("key") == key or (t.get("operator") == "Exists" and not t.get("key")))
            and t.get("effect") in (None, "", "NoExecute")
            for t in tols
        ):
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})


def qos_class(spec: dict[str, Any]) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
            elif r in req:
                try:
                    if parse_quantity(req[r]) != parse_quantity(lim[r]):
                        guaranteed = False
                except QuantityError:
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed and containers else "Burstable"


def default_pod(obj: dict[str, Any]) -> None:
    default_pod_spec(obj.setdefault("spec", {}))


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def _pod_spec_masked(spec: dict[str, Any]) -> dict[str, Any]:
    s = json.loads(json.dumps(spec))
    for f in _POD_MUTABLE:
        s.pop(f, None)
    for field in ("containers", "initContainers"):
        for c in s.get(field) or []:
            c.pop("image", None)
    return s


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    validate_pod_spec(obj.get("spec"), "spec", v)
    if old is not None and isinstance(obj.get("spec"), dict):
        if _pod_spec_masked(obj["spec"]) != _pod_spec_masked(old.get("spec") or {}):
            v.forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                "(allow it to be set to 1 if it was previously negative)",
            )
    return v.causes


def validate_pod_status(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    st = obj.get("status") or {}
    v.enum("status.phase", st.get("phase"), ["Pending", "Running", "Succeeded", "Failed", "Unknown"])
    if old is not None:
        oldphase = (old.get("status") or {}).get("phase")
        if oldphase in ("Succeeded", "Failed") and st.get("phase") != oldphase:
            v.forbidden("status.phase", f"cannot transition from terminal phase {oldphase} to {st.get('phase')}")
    for f in ("podIP", "hostIP"):
        ip = st.get(f)
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                v.invalid(f"status.{f}", ip, "must be a valid IP address")
    for i, c in enumerate(st.get("conditions") or []):
        v.enum(f"status.conditions[{i}].status", c.get("status"), ["True", "False", "Unknown"])
    return v.causes


class PodStrategy(Strategy):
    has_generation = True
    return_deleted_object = True

    def default(self, obj: Obj) -> None:
        default_pod(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def prepare_for_create(self, obj: Obj) -> None:
        add_default_tolerations(obj.setdefault("spec", {}), self.settings.default_toleration_seconds)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_pod(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_pod(obj, old)

    def validate_status_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_pod_status(obj, old)

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        grace = requested if requested is not None else spec.get("terminationGracePeriodSeconds", 30)
        if grace < 0:
            grace = 1
        # Nothing runs a pod that is not bound to a node or has finished: no one would end the grace period.
        if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
            grace = 0
        return grace
