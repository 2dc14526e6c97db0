"""PATCH bodies: JSON merge patch, strategic merge patch, JSON patch.

- ``merge_patch`` is RFC 7386 (``application/merge-patch+json``).
- ``json_patch`` is RFC 6902 (``application/json-patch+json``): add, remove,
  replace, move, copy, test, with RFC 6901 pointers; like kube-apiserver it
  takes at most 10,000 operations and copies adding at most 3 MiB (each copy
  may double the document).
- ``strategic_merge_patch`` (``application/strategic-merge-patch+json``)
  follows Kubernetes: maps merge recursively, ``null`` deletes a key, lists
  with a merge key (containers by ``name``, container ports by
  ``containerPort``, service ports by ``port``, env by ``name``,
  volumeMounts by ``mountPath``, conditions by ``type``, ...) merge element by
  element, other lists are replaced, ``metadata.finalizers`` merges as a set;
  directives ``$patch: replace|delete|merge``, ``$retainKeys``,
  ``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>`` are
  honoured: that is everything ``kubectl apply`` sends. Kubernetes derives the
  merge keys from Go struct tags; here they come from ``PATCH_META``, keyed by
schema type and field, walking the object's schema (``schema_data``).

All functions are pure: they return new objects and raise ``PatchError``
(the caller maps it to 422/400) on a malformed patch.

Concurrency: pure functions (inputs are never mutated), no shared state.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .schema_data import SCHEMAS

# kube-apiserver's bounds on a JSON patch: its number of operations, and the bytes its "copy" operations add
# (its AccumulatedCopySizeLimit is the request body limit, 3 MiB by default).
MAX_JSON_PATCH_OPERATIONS = 10_000
MAX_COPIED_BYTES = 3 * 1024 * 1024


class PatchError(ValueError):
    pass


class TestFailed(PatchError):
    pass


# ---------------------------------------------------------------- merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------- json patch


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with '/'")
    return [_unescape(t) for t in path[1:].split("/")]


def _index(container: list[Any], tok: str, *, for_add: bool) -> int:
    if tok == "-" and for_add:
        return len(container)
    # ASCII digits only (str.isdigit also takes "²"), and short enough for int() to take.
    if not tok.isascii() or not tok.isdigit() or len(tok) > 18 or (tok.startswith("0") and tok != "0"):
        raise PatchError(f"invalid array index {tok!r}")
    i = int(tok)
    limit = len(container) if for_add else len(container) - 1
    if i > limit:
        raise PatchError(f"array index {i} out of bounds")
    return i


def _walk(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"path segment {t!r} not found")
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, for_add=False)]
        else:
            raise PatchError(f"cannot traverse into a scalar at {t!r}")
    return cur


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path))


def _add(doc: Any, path: str, value: Any) -> Any:
    toks = _pointer(path)
    if not toks:
        return copy.deepcopy(value)
    parent = _walk(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), copy.deepcopy(value))
    else:
        raise PatchError(f"cannot add to a scalar at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    toks = _pointer(path)
    if not toks:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_add=False)]
    else:
        raise PatchError(f"cannot remove from a scalar at {path!r}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}"
        )
    copied = 0  # bytes "copy" operations have added: each may double the document
    doc = copy.deepcopy(target)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i} must be an object with 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if not isinstance(path, str):
            raise PatchError(f"operation {i}: path must be a string")
        if kind == "add":
            if "value" not in op:
                raise PatchError(f"operation {i}: 'add' needs a value")
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError(f"operation {i}: 'replace' needs a value")
            _get(doc, path)
            if _pointer(path):
                doc = _remove(doc, path)
            doc = _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"operation {i}: {kind!r} needs 'from'")
            value = copy.deepcopy(_get(doc, src))
            if kind == "copy":
                copied += len(json.dumps(value))
                if copied > MAX_COPIED_BYTES:
                    raise PatchError(f"Unable to complete copy, would exceed limit of {MAX_COPIED_BYTES} bytes")
            if kind == "move":
                if path.startswith(src + "/"):
                    raise PatchError(f"operation {i}: cannot move a value into itself")
                doc = _remove(doc, src)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise TestFailed(f"testing value {path} failed")
        else:
            raise PatchError(f"operation {i}: unknown op {kind!r}")
    return doc


# ---------------------------------------------------------- strategic merge

# (type, field) -> (patch strategy, merge key), as the Go struct tags of the Kubernetes API types say
# (``patchStrategy:"merge" patchMergeKey:"name"``). Lists not named here are atomic (replaced whole).
PATCH_META: dict[tuple[str, str], tuple[str, str | None]] = {
    ("V1PodSpec", "containers"): ("merge", "name"),
    ("V1PodSpec", "initContainers"): ("merge", "name"),
    ("V1PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("V1PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("V1PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("V1PodSpec", "hostAliases"): ("merge", "ip"),
    ("V1PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("V1PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("V1PodSpec", "schedulingGates"): ("merge", "name"),
    ("V1Container", "ports"): ("merge", "containerPort"),
    ("V1Container", "env"): ("merge", "name"),
    ("V1Container", "volumeMounts"): ("merge", "mountPath"),
    ("V1Container", "volumeDevices"): ("merge", "devicePath"),
    ("V1EphemeralContainer", "ports"): ("merge", "containerPort"),
    ("V1EphemeralContainer", "env"): ("merge", "name"),
    ("V1EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("V1EphemeralContainer", "volumeDevices"): ("merge", "devicePath"),
    ("V1ObjectMeta", "finalizers"): ("merge", None),
    ("V1ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("V1ServiceSpec", "ports"): ("merge", "port"),
    ("V1NodeSpec", "podCIDRs"): ("merge", None),
    ("V1NodeStatus", "addresses"): ("merge", "type"),
    ("V1NodeStatus", "conditions"): ("merge", "type"),
    ("V1PodStatus", "conditions"): ("merge", "type"),
    ("V1PodStatus", "podIPs"): ("merge", "ip"),
    ("V1PodStatus", "hostIPs"): ("merge", "ip"),
    ("V1DeploymentStatus", "conditions"): ("merge", "type"),
    ("V1ReplicaSetStatus", "conditions"): ("merge", "type"),
    ("V1NamespaceStatus", "conditions"): ("merge", "type"),
    ("V1DeploymentSpec", "strategy"): ("retainKeys", None),
}


def field_type(type_name: str | None, fname: str) -> Any:
    """The schema type of ``fname`` in ``type_name`` (None if unknown)."""
    if type_name is None or type_name not in SCHEMAS:
        return None
    return SCHEMAS[type_name]["fields"].get(fname)


def list_strategy(type_name: str | None, fname: str) -> tuple[str, str | None, Any]:
    """(``"merge"``/``"set"``/``"replace"``, merge key, element type) for the list field ``fname``."""
    t = field_type(type_name, fname)
    elem = t[1] if isinstance(t, list) and t[0] == "list" else None
    strategy, key = PATCH_META.get((type_name or "", fname), ("replace", None))
    if "merge" in strategy:
        return ("merge" if key else "set"), key, elem
    return "replace", None, elem


def _sub_type(t: Any) -> str | None:
    return t if isinstance(t, str) else None


def strategic_merge_patch(target: Any, patch: Any, type_name: str | None) -> Any:
    """Apply a strategic merge patch to ``target``, an object of schema type ``type_name``."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch, type_name, "")


def _smp_map(target: dict[str, Any], patch: dict[str, Any], tname: str | None, where: str) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r} in a map at {where or '<root>'}")
    out = dict(target)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    deletes: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            if not isinstance(v, list):
                raise PatchError(f"{k} must be a list")
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            if not isinstance(v, list):
                raise PatchError(f"{k} must be a list")
            deletes[k.split("/", 1)[1]] = v
            continue
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        ftype = field_type(tname, k)
        sub_where = f"{where}.{k}" if where else k
        if isinstance(v, dict):
            if v.get("$patch") == "delete":
                out.pop(k, None)
            elif isinstance(ftype, list) and ftype[0] == "map":
                # a map of values: merge keys; object values merge recursively
                base = dict(cur) if isinstance(cur, dict) else {}
                for mk, mv in v.items():
                    if mv is None:
                        base.pop(mk, None)
                    elif isinstance(mv, dict) and isinstance(base.get(mk), dict):
                        base[mk] = _smp_map(base[mk], mv, _sub_type(ftype[1]), f"{sub_where}[{mk}]")
                    else:
                        base[mk] = copy.deepcopy(mv)
                out[k] = base
            else:
                out[k] = _smp_map(cur if isinstance(cur, dict) else {}, v, _sub_type(ftype), sub_where)
        elif isinstance(v, list):
            out[k] = _smp_list(cur if isinstance(cur, list) else [], v, tname, k, sub_where)
        else:
            out[k] = copy.deepcopy(v)
    for fname, vals in deletes.items():
        if isinstance(out.get(fname), list):
            out[fname] = [x for x in out[fname] if x not in vals]
    for fname, order in orders.items():
        if isinstance(out.get(fname), list):
            out[fname] = _reorder(out[fname], order, tname, fname)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise PatchError("$retainKeys must be a list of field names")
        keep = set(retain)
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _smp_list(target: list[Any], patch: list[Any], tname: str | None, fname: str, where: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    strategy, key, elem = list_strategy(tname, fname)
    if strategy == "set":
        out = list(target)
        for p in patch:
            if p not in out:
                out.append(copy.deepcopy(p))
        return out
    if strategy != "merge" or key is None:
        if any(isinstance(p, dict) and "$patch" in p for p in patch):
            raise PatchError(f"$patch directives are not allowed in the list at {where}")
        return [copy.deepcopy(p) for p in patch]
    out = [copy.deepcopy(t) for t in target]
    for p in patch:
        if not isinstance(p, dict):
            raise PatchError(f"the list at {where} merges objects by {key!r}; got {p!r}")
        kv = p.get(key)
        if kv is None:
            raise PatchError(f"map: {p} does not contain declared merge key: {key}")
        idx = next((i for i, t in enumerate(out) if _elem_key(t, key) == kv), None)
        if p.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(_smp_map({}, p, _sub_type(elem), where))
        else:
            out[idx] = _smp_map(out[idx], p, _sub_type(elem), where)
    return out


def _elem_key(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else None


def _json_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _reorder(items: list[Any], order: list[Any], tname: str | None, fname: str) -> list[Any]:
    strategy, key, _ = list_strategy(tname, fname)
    if strategy == "merge" and key:
        # Keys by their JSON text: a merge key's value may be any JSON value, lists and objects included.
        rank = {_json_key(_elem_key(o, key)): i for i, o in enumerate(order)}

        def pos(x: Any) -> int:
            return rank.get(_json_key(_elem_key(x, key)), len(rank))
    else:
        rank2 = {repr(o): i for i, o in enumerate(order)}

        def pos(x: Any) -> int:
            return rank2.get(repr(x), len(rank2))

    return sorted(items, key=pos)  # stable: elements the order does not name keep their relative order
