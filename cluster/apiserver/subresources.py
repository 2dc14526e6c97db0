"""The subresources that are endpoints of their own: ``pods/binding``, ``pods/eviction``, ``<workload>/scale``.

- binding: the scheduler's POST sets ``spec.nodeName`` and the PodScheduled
  condition, once (409 for a bound or deleting pod).
- eviction: a DELETE of the pod with the Eviction's DeleteOptions.
- scale: ``autoscaling/v1 Scale`` views of ``spec.replicas``,
  ``status.replicas`` and the label selector of any kind that has them;
  writing one sets ``spec.replicas``.

(``status`` and ``finalize`` are writes of the object itself: see the
strategies.)

Concurrency: coroutines on the API server's loop; every write is the
registry's guaranteed update (read, mutate, compare-and-swap).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from ..api.timestamps import rfc3339
from . import errors, schema
from .errors import APIError, Cause
from .lifecycle import ObjectCheck, bump_generation
from .options import WriteOptions
from .registry import Registry
from .resources import ResourceDef
from .selector import from_label_selector_object
from .strategy import Obj
from .validation import V


async def bind(
    registry: Registry, rdef: ResourceDef, ns: str, name: str, body: Any, opts: WriteOptions, check: ObjectCheck
) -> None:
    if not isinstance(body, dict):
        raise errors.bad_request("a Binding must be a JSON object")
    if body.get("kind") not in (None, "", "Binding"):
        raise errors.bad_request(f"expected a Binding, got {body.get('kind')}")
    bname = (body.get("metadata") or {}).get("name")
    if bname and bname != name:
        raise errors.bad_request(f"the name of the object ({bname}) does not match the name on the URL ({name})")
    target = body.get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.invalid_object("Binding", "", name, [errors.required("target.name")])
    if target.get("kind") not in (None, "", "Node"):
        raise errors.invalid_object(
            "Binding", "", name, [errors.invalid("target.kind", target.get("kind"), "must be empty or 'Node'")]
        )

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
        uid = (body.get("metadata") or {}).get("uid")
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
    if not isinstance(body, dict) or body.get("kind") not in (None, "", "Eviction"):
        raise errors.bad_request("an Eviction (policy/v1) is required")
    ename = (body.get("metadata") or {}).get("name")
    if ename and ename != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
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
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
    }


def validate_scale(obj: Obj) -> list[Cause]:
    v = V()
    v.non_negative("spec.replicas", (obj.get("spec") or {}).get("replicas"))
    return v.causes


async def update_scale(
    registry: Registry,
    rdef: ResourceDef,
    ns: str,
    name: str,
    opts: WriteOptions,
    make_scale: Callable[[Obj], Obj],
    pinned: bool,
) -> Obj:
    """Apply ``make_scale(current_scale) -> new_scale`` to the owner's spec.replicas; the new Scale."""
    strategy = registry.strategy(rdef)

    def mutate(old: Obj) -> Obj:
        orig = copy.deepcopy(old)
        new_scale = make_scale(scale_of(old))
        if not isinstance(new_scale, dict):
            raise errors.bad_request("a Scale must be a JSON object")
        if new_scale.get("kind") not in (None, "", "Scale"):
            raise errors.bad_request(f'{new_scale.get("kind")} in version "v1" cannot be handled as a Scale')
        dec = schema.decode(new_scale, "V1Scale", check_required=False)
        if dec.type_errors:
            raise errors.bad_request(f'Scale in version "v1" cannot be handled as a Scale: json: {dec.type_errors[0]}')
        new_scale = dec.obj
        rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rdef.plural, rdef.group, name)
        causes = validate_scale(new_scale)
        if causes:
            raise errors.invalid_object("Scale", "autoscaling", name, causes)
        old.setdefault("spec", {})["replicas"] = (new_scale.get("spec") or {}).get("replicas", 0)
        bump_generation(strategy, old, orig)
        return old

    obj = await registry.guaranteed_update(rdef, ns, name, mutate, opts, precondition=pinned)
    return scale_of(obj)
