"""Object metadata and owner references on plain JSON objects.

``controller_ref`` is ``metav1.GetControllerOf``; ``owner_ref_for`` is
``metav1.NewControllerRef``.

Concurrency: pure functions; callers own the objects.
"""

from __future__ import annotations

from typing import Any, Protocol


class Kind(Protocol):
    """What an owner reference needs to know of a resource (``cluster.client.Resource`` has it)."""

    @property
    def api_version(self) -> str: ...

    @property
    def kind(self) -> str: ...


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def ns_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def is_deleting(obj: dict[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def controller_uid(obj: dict[str, Any]) -> str | None:
    ref = controller_ref(obj)
    return ref.get("uid") if ref else None


def owner_ref_for(owner: dict[str, Any], res: Kind, *, block: bool = True) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (``metav1.NewControllerRef``)."""
    return {
        "apiVersion": res.api_version,
        "kind": res.kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": block,
    }
