"""What every write does to an object, whatever its kind (kube-apiserver's ``rest.BeforeCreate`` and kin).

- ``decode_body``: kind/apiVersion checks, decoding against the schema
  (unknown and duplicate fields per fieldValidation, type errors -> 400).
- ``prepare_create`` / ``before_update``: server-set metadata (uid,
  creationTimestamp, generateName, generation), status kept apart from spec,
  then the kind's strategy hooks and validation (-> 422).
- deletion: ``delete_policy`` (propagationPolicy / orphanDependents,
  gracePeriodSeconds), ``check_preconditions``, ``finalizers_for_policy``,
  ``mark_for_deletion`` (deletionTimestamp, grace, finalizers) and
  ``should_delete`` (nothing holds the object any more).
- ``apply_patch``: a JSON, merge or strategic merge patch, errors as 422s.

No I/O here: the registry does the reads and the txns around these steps.

Concurrency: functions without shared state (beyond ``random``, ``uuid`` and
the clock); they mutate only the objects they are handed, which belong to
one request.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from typing import Any, Callable

from ..api.timestamps import rfc3339
from . import errors, schema
from . import patch as patchlib
from .errors import APIError, Cause
from .options import WriteOptions
from .resources import ResourceDef
from .strategy import Obj, Strategy

# The authorizer's per-object check (auth.Decision.object_check) of (old, new); it raises to refuse.
ObjectCheck = Callable[[Obj | None, Obj | None], None] | None
Decoded = tuple[Obj, list[Cause]]  # a decoded body, and the problems decoding found (422 causes)
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
PROPAGATION_POLICIES = ["Foreground", "Background", "Orphan"]
LAST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z: the last time an RFC 3339 timestamp can write


def dump(o: Any) -> str:
    """Canonical JSON: equal strings mean equal objects (to tell a no-op write)."""
    return json.dumps(o, sort_keys=True, separators=(",", ":"))


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(GENERATE_CHARS) for _ in range(5))


# ----------------------------------------------------------- decoding


def body_metadata(body: Any) -> dict[str, Any]:
    """A request body's ``metadata`` before decoding, if it is an object ({} otherwise: decoding will tell)."""
    md = body.get("metadata") if isinstance(body, dict) else None
    return md if isinstance(md, dict) else {}


def decode_body(
    rdef: ResourceDef,
    body: Any,
    opts: WriteOptions,
    *,
    type_name: str | None = None,
    kind: str | None = None,
    api_version: str | None = None,
) -> Decoded:
    """Check kind/apiVersion, drop unknown fields (per fieldValidation), reject type errors."""
    kind = kind or rdef.kind
    api_version = api_version or rdef.api_version
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a JSON object, got {type(body).__name__}")
    bkind, bav = body.get("kind"), body.get("apiVersion")
    if bkind not in (None, "") and bkind != kind:
        raise errors.bad_request(
            f'{bkind} in version "{api_version.split("/")[-1]}" cannot be handled as a '
            f"{kind}: the object kind ({bkind}) does not match the resource kind ({kind})"
        )
    if bav not in (None, "") and bav != api_version:
        raise errors.bad_request(
            f"the API version in the data ({bav}) does not match the expected API version ({api_version})"
        )
    dec = schema.decode(body, type_name or rdef.schema, check_required=False)
    if dec.type_errors:
        raise errors.bad_request(
            f'{kind} in version "{api_version.split("/")[-1]}" cannot be handled as a '
            f"{kind}: json: {dec.type_errors[0]}"
        )
    problems = [f'unknown field "{u}"' for u in dec.unknown] + [f'duplicate field "{d}"' for d in opts.duplicates]
    if problems:
        if opts.field_validation == "Strict":
            raise errors.bad_request("strict decoding error: " + ", ".join(problems))
        if opts.field_validation == "Warn":
            opts.warnings.extend(problems)
    obj = dec.obj
    obj["kind"] = kind
    obj["apiVersion"] = api_version
    obj.setdefault("metadata", {})
    return obj, dec.causes


def invalid(rdef: ResourceDef, obj: Obj, causes: list[Cause]) -> APIError:
    """The 422 for ``obj``, each (field, reason) once."""
    seen: set[tuple[str, str]] = set()
    uniq = []
    for c in causes:
        if (c.field, c.reason) not in seen:
            seen.add((c.field, c.reason))
            uniq.append(c)
    name = (obj.get("metadata") or {}).get("name") or ""
    return errors.invalid_object(rdef.kind, rdef.group, name, uniq)


def validate(
    rdef: ResourceDef, strategy: Strategy, obj: Obj, old: Obj | None, extra: list[Cause], *, status: bool = False
) -> None:
    """Raise the 422 for ``extra`` causes, missing required fields and the strategy's findings, if any."""
    causes = list(extra)
    req = schema.decode(obj, rdef.schema, check_required=True)
    causes += [c for c in req.causes if c.reason == "FieldValueRequired"]
    if old is None:
        causes += strategy.validate(obj)
    elif status:
        causes += strategy.validate_status_update(obj, old)
    else:
        causes += strategy.validate_update(obj, old)
    if causes:
        raise invalid(rdef, obj, causes)


# ------------------------------------------------------------- create


def prepare_create(rdef: ResourceDef, strategy: Strategy, obj: Obj) -> None:
    """Server-set metadata, then the strategy's defaults, initial status and create hook."""
    md = obj["metadata"]
    for f in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
    ):
        md.pop(f, None)
    if not md.get("name") and md.get("generateName"):
        md["name"] = generate_name(md["generateName"])
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = rfc3339()
    if strategy.has_generation:
        md["generation"] = 1
    strategy.default(obj)
    if rdef.has_status:
        status = strategy.initial_status(obj)
        if status is not None:
            obj["status"] = status
    strategy.prepare_for_create(obj)


# ------------------------------------------------------------- update


def prepare_update(rdef: ResourceDef, strategy: Strategy, new: Obj, old: Obj, subresource: str | None) -> Obj:
    """The object an update of ``old`` to ``new`` stores (before validation)."""
    if subresource is not None:
        out = strategy.prepare_for_subresource_update(subresource, new, old)
        if out is not None:
            return out
    md = new.setdefault("metadata", {})
    omd = old.get("metadata") or {}
    for f in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ):
        if f in omd:
            md[f] = omd[f]
        else:
            md.pop(f, None)
    md.pop("selfLink", None)
    if "managedFields" not in md and "managedFields" in omd:
        md["managedFields"] = omd["managedFields"]
    strategy.default(new)
    if rdef.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    strategy.prepare_for_update(new, old)
    if omd.get("deletionTimestamp"):
        added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
        if added:
            raise errors.invalid_object(
                rdef.kind,
                rdef.group,
                omd.get("name", ""),
                [
                    errors.forbidden_field(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, found "
                        f"new finalizers {sorted(added)!r}",
                    )
                ],
            )
    return new


def bump_generation(strategy: Strategy, new: Obj, old: Obj) -> None:
    """``metadata.generation`` counts spec changes (for kinds that have one)."""
    if not strategy.has_generation:
        return
    gen = (old.get("metadata") or {}).get("generation") or 1
    if dump(new.get("spec")) != dump(old.get("spec")):
        gen += 1
    new["metadata"]["generation"] = gen


def before_update(
    rdef: ResourceDef, strategy: Strategy, new: Obj, old: Obj, subresource: str | None, causes: list[Cause]
) -> Obj:
    """Prepare an update, count its generation and validate it; the object to store."""
    out = prepare_update(rdef, strategy, new, old, subresource)
    bump_generation(strategy, out, old)
    validate(rdef, strategy, out, old, causes, status=subresource == "status")
    return out


# ------------------------------------------------------------- delete


def delete_policy(options: dict[str, Any]) -> tuple[str | None, int | None]:
    """(propagationPolicy, gracePeriodSeconds) of DeleteOptions, checked."""
    policy = options.get("propagationPolicy")
    if policy is not None and options.get("orphanDependents") is not None:
        raise errors.invalid_object(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            [
                errors.invalid(
                    "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set"
                )
            ],
        )
    if policy is None and options.get("orphanDependents") is not None:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    if policy not in (None, *PROPAGATION_POLICIES):
        raise errors.invalid_object(
            "DeleteOptions", "meta.k8s.io", "", [errors.unsupported("propagationPolicy", policy, PROPAGATION_POLICIES)]
        )
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.bad_request("gracePeriodSeconds must be an integer")
    return policy, grace


def check_preconditions(rdef: ResourceDef, name: str, md: dict[str, Any], pre: dict[str, Any]) -> None:
    """409 unless the object has the uid and resourceVersion DeleteOptions.preconditions name."""
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.conflict(
            rdef.plural,
            rdef.group,
            name,
            f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {md.get('uid')}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.conflict(
            rdef.plural,
            rdef.group,
            name,
            f"Precondition failed: ResourceVersion in precondition: "
            f"{pre['resourceVersion']}, ResourceVersion in object meta: "
            f"{md.get('resourceVersion')}",
        )


def finalizers_for_policy(finalizers: list[str], policy: str | None) -> list[str]:
    """``finalizers`` with the garbage collector's ``orphan``/``foregroundDeletion`` as ``policy`` asks."""
    new_fins = list(finalizers)
    if policy == "Orphan":
        new_fins = [f for f in new_fins if f != "foregroundDeletion"]
        if "orphan" not in new_fins:
            new_fins.append("orphan")
    elif policy == "Foreground":
        new_fins = [f for f in new_fins if f != "orphan"]
        if "foregroundDeletion" not in new_fins:
            new_fins.append("foregroundDeletion")
    elif policy == "Background":
        new_fins = [f for f in new_fins if f not in ("orphan", "foregroundDeletion")]
    return new_fins


def deletion_timestamp(grace: int) -> str:
    """The deletionTimestamp ``grace`` seconds from now; a grace past year 9999 (any int64 is taken) ends then."""
    return rfc3339(min(max(time.time() + grace, 0), LAST_TIMESTAMP))


def mark_for_deletion(strategy: Strategy, obj: Obj, grace: int, finalizers: list[str]) -> Obj:
    """A copy of ``obj`` due for deletion in ``grace`` seconds (a shorter grace wins), held by ``finalizers``."""
    md = obj["metadata"]
    new = copy.deepcopy(obj)
    nmd = new["metadata"]
    if not md.get("deletionTimestamp"):
        nmd["deletionTimestamp"] = deletion_timestamp(grace)
        nmd["deletionGracePeriodSeconds"] = grace
        if strategy.has_generation:
            nmd["generation"] = (md.get("generation") or 1) + 1
    elif grace < (md.get("deletionGracePeriodSeconds") or 0):
        nmd["deletionTimestamp"] = deletion_timestamp(grace)
        nmd["deletionGracePeriodSeconds"] = grace
    if finalizers:
        nmd["finalizers"] = finalizers
    else:
        nmd.pop("finalizers", None)
    strategy.prepare_for_delete(new)
    return new


def should_delete(strategy: Strategy, obj: Obj) -> bool:
    """Whether an object marked for deletion may now leave storage: no finalizer and no grace left."""
    md = obj.get("metadata") or {}
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    return strategy.ready_to_delete(obj)


# -------------------------------------------------------------- patch


def apply_patch(current: Obj, ptype: str, body: Any, type_name: str) -> Obj:
    """``current`` patched by a ``ptype`` ("json", "merge", "strategic") patch; a bad patch is a 422."""
    try:
        if ptype == "json":
            out = patchlib.json_patch(current, body)
        elif ptype == "merge":
            if not isinstance(body, dict):
                raise patchlib.PatchError("a merge patch must be a JSON object")
            out = patchlib.merge_patch(current, body)
        else:  # strategic or apply
            out = patchlib.strategic_merge_patch(current, body, type_name)
    except patchlib.TestFailed as exc:
        raise errors.APIError(422, "Invalid", str(exc)) from None
    except patchlib.PatchError as exc:
        raise errors.APIError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from None
    if not isinstance(out, dict):
        raise errors.bad_request("the patch did not produce a JSON object")
    return out
