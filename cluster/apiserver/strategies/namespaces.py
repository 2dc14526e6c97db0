"""Namespaces: defaulting, validation, the finalize subresource, two-phase deletion.

A namespace is created with the ``kubernetes`` finalizer in
``spec.finalizers`` and the ``kubernetes.io/metadata.name`` label. Its
``spec.finalizers`` change only through the ``finalize`` subresource. DELETE
marks it Terminating; the namespace controller empties it and finalizes it,
and it goes when no finalizer is left. ``default``, ``kube-system`` and
``kube-public`` cannot be deleted.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import errors
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata

IMMORTAL_NAMESPACES = {"default", "kube-system", "kube-public"}


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
            v.invalid(f"spec.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it fully qualified")
    return v.causes


class NamespaceStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        default_namespace(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        return {"phase": "Active"}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers") or []
        new["status"] = old.get("status") or {}

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj | None:
        if subresource == "finalize":
            out = copy.deepcopy(old)
            out.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers") or []
            return out
        return super().prepare_for_subresource_update(subresource, new, old)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_namespace(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_namespace(obj, old)

    def check_delete(self, name: str) -> None:
        if name in IMMORTAL_NAMESPACES:
            raise errors.forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted', "namespaces", "", name
            )

    def deletion_blocked(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def ready_to_delete(self, obj: Obj) -> bool:
        return not self.deletion_blocked(obj)
