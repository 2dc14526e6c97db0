"""Nodes: validation (podCIDR, taints, capacity; podCIDR is set once); a new node keeps the status it is sent.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ...api.quantity import QuantityError, parse_quantity
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", False, v)
    spec = obj.get("spec") or {}
    for f in ("podCIDR",):
        c = spec.get(f)
        if c:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                v.invalid(f"spec.{f}", c, "must be a valid CIDR")
    for i, t in enumerate(spec.get("taints") or []):
        tp = f"spec.taints[{i}]"
        if not t.get("key"):
            v.required(f"{tp}.key")
        if not t.get("effect"):
            v.required(f"{tp}.effect")
        else:
            v.enum(f"{tp}.effect", t.get("effect"), ["NoExecute", "NoSchedule", "PreferNoSchedule"])
    st = obj.get("status") or {}
    for k in ("capacity", "allocatable"):
        for name, q in (st.get(k) or {}).items():
            try:
                if parse_quantity(q) < 0:
                    v.invalid(f"status.{k}[{name}]", q, "must be greater than or equal to 0")
            except QuantityError as exc:
                v.invalid(f"status.{k}[{name}]", q, str(exc))
    if old is not None:
        oc = (old.get("spec") or {}).get("podCIDR")
        if oc and spec.get("podCIDR") != oc:
            v.forbidden("spec.podCIDR", 'node updates may not change podCIDR except from "" to valid')
    return v.causes


class NodeStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return None  # the kubelet registers its node with the status it observed

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_node(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_node(obj, old)
