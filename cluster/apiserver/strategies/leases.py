"""Leases (coordination.k8s.io/v1): validation; PUT creates.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``).
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata


def validate_lease(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    spec = obj.get("spec") or {}
    lds = spec.get("leaseDurationSeconds")
    if isinstance(lds, int) and lds <= 0:
        v.invalid("spec.leaseDurationSeconds", lds, "must be greater than 0")
    v.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
    return v.causes


class LeaseStrategy(Strategy):
    create_on_update = True

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_lease(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_lease(obj, old)
