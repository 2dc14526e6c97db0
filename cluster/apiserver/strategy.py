"""The strategy interface: what the generic registry asks of each kind.

kube-apiserver's generic store (``registry/generic``) does the same for every
resource and asks a per-kind strategy (``registry/<group>/<kind>/
strategy.go``) about the rest. ``Strategy`` is that interface with the
default behaviour; a kind overrides what is special about it in
``strategies/<kind>.py`` and has one entry in ``strategies.STRATEGIES``.

The registry calls the hooks in this order:

- create: ``default`` -> ``initial_status`` (kinds with a status subresource)
  -> ``prepare_for_create`` -> ``validate`` -> ``reserve`` -> ``ttl_seconds``.
- update: server-set metadata kept -> ``prepare_for_subresource_update``
  (a status or other subresource write; if it answers None the write is one
  of the main resource:) ``default`` -> status kept -> ``prepare_for_update``
  -> ``validate_update`` / ``validate_status_update`` -> ``reserve`` and
  ``release``.
- delete: ``check_delete`` -> ``grace_period`` -> ``deletion_blocked`` ->
  ``prepare_for_delete`` (when the object is only marked) ->
  ``ready_to_delete`` -> ``release``.

Concurrency: ``strategies.build`` makes one instance per kind per API server
from its ``Settings``; hooks run on the server's event loop, keep no
per-request state and mutate only the objects they are handed, which belong
to one request.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import Cause

Obj = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """The API server settings a kind's behaviour depends on."""

    service_cidr: str = "127.96.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    default_toleration_seconds: int = 300  # kube-apiserver's --default-{not-ready,unreachable}-toleration-seconds


def status_update(new: Obj, old: Obj) -> Obj:
    """A write to the status subresource: the stored object with ``new``'s status, labels and annotations."""
    out = copy.deepcopy(old)
    out["status"] = new.get("status") or {}
    nmd, omd = new.get("metadata") or {}, out["metadata"]
    # Status writers (kubelets, controllers) may also touch labels and annotations.
    for f in ("labels", "annotations"):
        if f in nmd:
            omd[f] = nmd[f]
    return out


class Strategy:
    """A kind with nothing special: no defaults, no checks beyond the schema's, deleted at once."""

    has_generation = False  # metadata.generation starts at 1 and counts spec changes
    create_on_update = False  # a PUT without resourceVersion of a missing object creates it
    return_deleted_object = False  # DELETE answers with the deleted object instead of a Status
    ttl_seconds = 0  # objects expire (a raftstore lease) this long after creation; 0: never
    # The 500 a create answers when the keys it reserves kept colliding.
    reservation_exhausted = "could not reserve the keys this object claims after several attempts"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------ writes

    def default(self, obj: Obj) -> None:
        """Fill defaults in place, on create and on every main-resource update."""

    def initial_status(self, obj: Obj) -> Obj | None:
        """The status a new object starts with, if its kind has a status subresource (None: the client's)."""
        return {}

    def prepare_for_create(self, obj: Obj) -> None:
        """Last changes to a new object before validation (admission the kind always gets)."""

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Carry over what a main-resource update may not change, beyond metadata and status."""

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj | None:
        """The object a write to ``subresource`` stores, or None to write ``new`` as the main resource."""
        if subresource == "status":
            return status_update(new, old)
        return None

    def validate(self, obj: Obj) -> list[Cause]:
        """Why a new object is invalid (empty: it is valid)."""
        return []

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        """Why an update of ``old`` to ``obj`` is invalid."""
        return self.validate(obj)

    def validate_status_update(self, obj: Obj, old: Obj) -> list[Cause]:
        """Why a status update of ``old`` to ``obj`` is invalid."""
        return []

    # -------------------------------------------------- keys beside the object

    def reserve(self, obj: Obj, old: Obj | None, attempt: int) -> list[tuple[str, bytes]]:
        """Keys ``obj`` claims beside its own (key, value), written in its txn only if absent.

        May fill in ``obj`` what it allocates; ``attempt`` counts a create's
        lost compares.
        """
        return []

    def release(self, old: Obj, new: Obj | None) -> list[str]:
        """Keys ``old`` claimed that ``new`` (None: the object is deleted) no longer does, deleted in its txn."""
        return []

    # ------------------------------------------------------------ delete

    def check_delete(self, name: str) -> None:
        """Raise to refuse deleting ``name`` at all."""

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds ``obj`` stays after a DELETE asking for ``requested`` (None: unspecified); 0: no grace."""
        return 0

    def deletion_blocked(self, obj: Obj) -> bool:
        """Whether the kind's own finalizers (not ``metadata.finalizers``) hold ``obj`` back from deletion."""
        return False

    def prepare_for_delete(self, obj: Obj) -> None:
        """Changes to an object marked for deletion (with a deletionTimestamp) that stays for now."""

    def ready_to_delete(self, obj: Obj) -> bool:
        """An object marked for deletion with no ``metadata.finalizers`` left: may it be removed now?"""
        return (obj.get("metadata") or {}).get("deletionGracePeriodSeconds") in (0, None)
