"""Leases (coordination.k8s.io/v1): validation.

Concurrency: pure functions.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
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
