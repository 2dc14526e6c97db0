"""Namespaces: defaulting (the kubernetes finalizer, the metadata.name label) and validation.

Concurrency: pure functions; defaulting mutates only the object it is given,
which belongs to one request.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from ..validation import V, validate_metadata


def default_namespace(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    md = obj.setdefault("metadata", {})
    if md.get("name"):
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]


def validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "label", False, v)
    for i, f in enumerate((obj.get("spec") or {}).get("finalizers") or []):
        if "/" not in f and f != "kubernetes":
            v.invalid(f"spec.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it fully "
                                                  "qualified")
    return v.causes
