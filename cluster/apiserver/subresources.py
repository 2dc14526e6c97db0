"""The subresources that are endpoints of their own: ``pods/binding``, ``pods/eviction``, ``<workload>/scale``.

- binding: the scheduler's POST sets ``spec.nodeName`` and the PodScheduled
  condition, once (409 for a bound or deleting pod).
- eviction: a DELETE of the pod with the Eviction's DeleteOptions.
- scale: ``autoscaling/v1 Scale`` views of ``spec.replicas``,
  ``status.replicas`` and the label selector of any kind that has them;
  writing one (PUT, or PATCH of the current Scale) sets ``spec.replicas``.

Every body is decoded like a write's (``lifecycle.decode_body`` against the
Binding, Eviction or Scale schema): unknown fields per fieldValidation, type
errors 400, then the 422s of validation.

(``status`` and ``finalize`` are writes of the object itself: see the
strategies.)

Concurrency: coroutines on the API server's loop; every write is the
registry's guaranteed update (read, mutate, compare-and-swap).
"""

from __future__ import annotations

import copy
from typing import Any

from multidict import MultiDict

from ..api.timestamps import rfc3339
from . import errors
from .errors import APIError, Cause
from .lifecycle import ObjectCheck, apply_patch, body_metadata, bump_generation, decode_body
from .options import WriteOptions, delete_options
from .registry import Registry
from .resources import ResourceDef
from .selector import from_label_selector_object
from .strategy import Obj
from .validation import V

SCALE_API_VERSION = "autoscaling/v1"
INT32_MAX = 2**31 - 1  # ScaleSpec.replicas is an int32


async def bind(
    registry: Registry, rdef: ResourceDef, ns: str, name: str, body: Any, opts: WriteOptions, check: ObjectCheck
) -> None:
    binding, causes = decode_body(rdef, body, opts, type_name="V1Binding", kind="Binding", api_version="v1")
    bname = binding["metadata"].get("name")
    if bname and bname != name:
        raise errors.bad_request(f"the name of the object ({bname}) does not match the name on the URL ({name})")
    target = binding.get("target") or {}
    node = target.get("name")
    if not node:
        causes.append(errors.required("target.name"))
    if target.get("kind") not in (None, "", "Node"):
        causes.append(errors.invalid("target.kind", target.get("kind"), "must be empty or 'Node'"))
    if causes:
        raise errors.invalid_object("Binding", "", name, causes)

    def mutate(old: Obj) -> Obj:
        spec = old.setdefault("spec", {})
        if (old.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.conflict(
                rdef.plural, rdef.group, name, f"pod {name} is being deleted, cannot be assigned to a host"
            )
        if spec.get("nodeName"):
            raise errors.conflict(
                rdef.plural, rdef.group, name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
            )
        uid = binding["metadata"].get("uid")
        if uid and uid != old["metadata"].get("uid"):
            raise errors.conflict(rdef.plural, rdef.group, name, "the UID in the binding does not match the pod")
        spec["nodeName"] = node
        st = old.setdefault("status", {})
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": rfc3339()})
        conds[-1].pop("lastProbeTime")
        st["conditions"] = conds
        return old

    await registry.guaranteed_update(rdef, ns, name, mutate, opts, check=check)


async def evict(
    registry: Registry, rdef: ResourceDef, ns: str, name: str, body: Any, opts: WriteOptions, check: ObjectCheck
) -> None:
    # policy/v1beta1 Evictions are the same type: kubectl drain of older clients still sends them.
    av = "policy/v1beta1" if isinstance(body, dict) and body.get("apiVersion") == "policy/v1beta1" else "policy/v1"
    eviction, causes = decode_body(rdef, body, opts, type_name="V1Eviction", kind="Eviction", api_version=av)
    if causes:
        raise errors.invalid_object("Eviction", "policy", name, causes)
    ename = eviction["metadata"].get("name")
    if ename and ename != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = delete_options(eviction.get("deleteOptions"), MultiDict())
    if options.get("dryRun"):
        opts.dry_run = True
    await registry.delete(rdef, ns, name, options, opts, check)


# ------------------------------------------------------------------ scale


def scale_of(obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    sel = (obj.get("spec") or {}).get("selector")
    try:
        selector = str(from_label_selector_object(sel))
    except APIError:
        selector = ""
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
    }


def validate_scale(obj: Obj) -> list[Cause]:
    """Why a Scale is invalid: ``spec.replicas`` must be an int32 >= 0 (decoding has made it an integer)."""
    v = V()
    replicas = (obj.get("spec") or {}).get("replicas")
    v.non_negative("spec.replicas", replicas)
    if isinstance(replicas, int) and replicas > INT32_MAX:
        v.invalid("spec.replicas", replicas, f"must be less than or equal to {INT32_MAX}")
    return v.causes


async def write_scale(
    registry: Registry, rdef: ResourceDef, ns: str, name: str, ptype: str | None, body: Any, opts: WriteOptions
) -> Obj:
    """PUT (``ptype`` None) or PATCH (json, merge, strategic, apply) of ``<workload>/scale``; the new Scale.

    The resulting Scale is decoded as any write's body is: unknown and duplicate
    fields per fieldValidation (a 400 in Strict mode, ``Warning`` headers in
    Warn mode), type errors 400, then validated (422).
    """
    strategy = registry.strategy(rdef)
    pinned = bool(body_metadata(body).get("resourceVersion"))

    def mutate(old: Obj) -> Obj:
        orig = copy.deepcopy(old)
        current = scale_of(old)
        new_scale = (
            body if ptype is None else apply_patch(current, "strategic" if ptype == "apply" else ptype, body, "V1Scale")
        )
        scale, causes = decode_body(
            rdef, new_scale, opts, type_name="V1Scale", kind="Scale", api_version=SCALE_API_VERSION
        )
        rv = scale["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rdef.plural, rdef.group, name)
        causes += validate_scale(scale)
        if causes:
            raise errors.invalid_object("Scale", "autoscaling", name, causes)
        old.setdefault("spec", {})["replicas"] = (scale.get("spec") or {}).get("replicas", 0)
        bump_generation(strategy, old, orig)
        return old

    obj = await registry.guaranteed_update(rdef, ns, name, mutate, opts, precondition=pinned)
    return scale_of(obj)
