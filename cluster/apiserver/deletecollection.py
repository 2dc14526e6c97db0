"""DELETE of a collection (``deletecollection``): every object the selectors pick, each through the normal delete.

kube-apiserver's ``Store.DeleteCollection``: list the objects of the
collection that match the label and field selectors, then delete each one as
a DELETE of it would - the same ``DeleteOptions`` (grace periods, finalizers
and propagation policy, preconditions, dry run: a dry run deletes nothing),
each object authorised on its own (``AuthorizeItem``: the caller's right to
``delete`` that object, and the authoriser's per-object check). An object
that is already gone is skipped. The answer is the list of what was deleted
(or marked for deletion).

A failure stops the walk and is answered with its own Status (code, reason,
details), its message saying how many of the matching objects were deleted
before it, and which (``partial_failure``): a caller learns what happened,
not only that something went wrong. kube-apiserver deletes with a few
workers at once and reports only the first error; one at a time keeps that
report exact.

Concurrency: one coroutine per request on the API server's loop; the
deletes are the registry's, each a compare-and-swap txn of its own.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from .errors import APIError
from .lifecycle import ObjectCheck
from .options import WriteOptions
from .registry import Registry
from .resources import ResourceDef
from .selector import FieldSelector, LabelSelector
from .strategy import Obj

# The caller's authorisation to delete one listed object: raises a 403 APIError, or returns the check to run
# against the stored object (None: nothing more to check).
AuthorizeItem = Callable[[Obj], ObjectCheck]
NAMES_IN_REPORT = 20  # a failure names at most this many of the objects deleted before it


async def delete_collection(
    registry: Registry,
    rdef: ResourceDef,
    ns: str | None,
    lsel: LabelSelector,
    fsel: FieldSelector,
    options: dict[str, Any],
    opts: WriteOptions,
    authorize_item: AuthorizeItem,
) -> tuple[list[Obj], dict[str, Any]]:
    """(the objects deleted or marked for deletion, the list's metadata); see the module docstring."""
    items, meta = await registry.list(rdef, ns, lsel, fsel)
    done: list[Obj] = []
    for item in items:
        md = item.get("metadata") or {}
        try:
            check = authorize_item(item)
            # A copy per object: a graceful delete may change the options it is handed.
            obj, _ = await registry.delete(rdef, md.get("namespace"), md["name"], copy.deepcopy(options), opts, check)
        except APIError as exc:
            if exc.code == 404:
                continue
            raise partial_failure(exc, rdef, done, len(items), opts.dry_run) from None
        done.append(obj)
    return done, meta


def partial_failure(exc: APIError, rdef: ResourceDef, done: list[Obj], total: int, dry_run: bool) -> APIError:
    """``exc`` (same code, reason and details) with a message that says what the collection delete did first."""
    names = [(o.get("metadata") or {}).get("name", "") for o in done]
    shown = ", ".join(names[:NAMES_IN_REPORT]) + (", ..." if len(names) > NAMES_IN_REPORT else "")
    verb = "would have been deleted (dry run)" if dry_run else "were deleted"
    what = f"{len(done)} of the {total} matching {rdef.plural} {verb} before it"
    if names:
        what += f" ({shown})"
    message = f"{exc.message} [deletecollection stopped at this error: {what}; the others were left as they were]"
    return APIError(exc.code, exc.reason, message, copy.deepcopy(exc.details), dict(exc.headers))
