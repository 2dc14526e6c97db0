"""Server-side apply's field ownership: FieldsV1 sets and ``metadata.managedFields``.

An apply records, in a ``managedFields`` entry of its field manager, the set
of fields its configuration names (``fields_v1``: maps as ``f:<name>``,
keyed list items as ``k:{...}``, set items as ``v:<json>``). The next apply
of the same manager merges its new configuration and removes what it
applied before but no longer does, unless another applier owns it
(``merge_applied``).

Concurrency: pure functions; they mutate only the objects they are handed,
which belong to one request.
"""

from __future__ import annotations

import json
from typing import Any

from ..api.timestamps import rfc3339
from . import patch as patchlib
from .lifecycle import apply_patch
from .strategy import Obj


def apply_entry(manager: str, api_version: str, config: Obj, schema: str, subresource: str | None) -> Obj:
    """The ``managedFields`` entry of an apply of ``config`` by ``manager``."""
    managed = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(config, schema),
    }
    if subresource:
        managed["subresource"] = subresource
    return managed


def merge_applied(old: Obj, config: Obj, managed: Obj, manager: str | None, schema: str) -> Obj:
    """``old`` with ``config`` applied by ``manager``: merged, its dropped fields removed, its entry replaced."""
    prev = managed_entry(old, manager)
    merged = apply_patch(old, "strategic", config, schema)
    if prev is not None:
        remove_unowned(merged, _fields(prev), managed["fieldsV1"], other_apply_sets(old, manager), schema)
    entries = [
        e
        for e in (old.get("metadata") or {}).get("managedFields") or []
        if not (e.get("manager") == manager and e.get("operation") == "Apply")
    ]
    merged.setdefault("metadata", {})["managedFields"] = entries + [managed]
    return merged


def fields_v1(obj: Any, tname: str | None, top: bool = True) -> dict[str, Any]:
    """The FieldsV1 set of an applied configuration (maps ``f:``, keyed list items ``k:``, set items ``v:``)."""
    out: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        if top and k in ("apiVersion", "kind"):
            continue
        if tname == "V1ObjectMeta" and k not in ("labels", "annotations", "finalizers", "ownerReferences"):
            continue
        ft = patchlib.field_type(tname, k)
        if isinstance(v, dict):
            if isinstance(ft, list) and ft[0] == "map":
                sub = ft[1] if isinstance(ft[1], str) else None
                out[f"f:{k}"] = {
                    f"f:{mk}": fields_v1(mv, sub, False) if isinstance(mv, dict) else {} for mk, mv in v.items()
                }
            else:
                out[f"f:{k}"] = fields_v1(v, ft if isinstance(ft, str) else None, False)
        elif isinstance(v, list):
            strategy, key, elem = patchlib.list_strategy(tname, k)
            if strategy == "merge" and key:
                out[f"f:{k}"] = {
                    item_key(key, item): fields_v1(item, elem if isinstance(elem, str) else None, False)
                    for item in v
                    if isinstance(item, dict) and key in item
                }
            elif strategy == "set":
                out[f"f:{k}"] = {f"v:{json.dumps(x)}": {} for x in v}
            else:
                out[f"f:{k}"] = {}
        else:
            out[f"f:{k}"] = {}
    return out


def item_key(key: str, item: Any) -> str:
    return f"k:{json.dumps({key: item.get(key)}, separators=(',', ':'))}" if isinstance(item, dict) else ""


def managed_entry(obj: dict[str, Any], manager: str | None) -> dict[str, Any] | None:
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if e.get("manager") == manager and e.get("operation") == "Apply":
            return e
    return None


def other_apply_sets(obj: dict[str, Any], manager: str | None) -> list[dict[str, Any]]:
    return [
        _fields(e)
        for e in (obj.get("metadata") or {}).get("managedFields") or []
        if e.get("operation") == "Apply" and e.get("manager") != manager
    ]


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    # Decoding makes every FieldsV1 an object; this keeps apply safe from anything stored otherwise.
    f = entry.get("fieldsV1")
    return f if isinstance(f, dict) else {}


def remove_unowned(
    obj: Any, old: dict[str, Any], new: dict[str, Any], others: list[dict[str, Any]], tname: str | None
) -> None:
    """Remove fields this manager applied before but no longer applies (and no other applier owns)."""
    if not isinstance(obj, dict):
        return
    for fk, sub in old.items():
        if not fk.startswith("f:"):
            continue
        name = fk[2:]
        others_sub = [o[fk] for o in others if isinstance(o, dict) and isinstance(o.get(fk), dict)]
        owned_elsewhere = any(isinstance(o, dict) and fk in o for o in others)
        if fk not in new:
            if not owned_elsewhere and name in obj:
                del obj[name]
            continue
        cur = obj.get(name)
        newsub = new[fk] if isinstance(new[fk], dict) else {}
        ft = patchlib.field_type(tname, name)
        if isinstance(cur, dict) and isinstance(sub, dict) and sub:
            if isinstance(ft, list) and ft[0] == "map":
                for mk in list(cur):
                    mfk = f"f:{mk}"
                    if mfk in sub and mfk not in newsub and not any(mfk in o for o in others_sub):
                        del cur[mk]
            else:
                remove_unowned(cur, sub, newsub, others_sub, ft if isinstance(ft, str) else None)
        elif isinstance(cur, list) and isinstance(sub, dict) and sub:
            strategy, key, elem = patchlib.list_strategy(tname, name)
            if strategy == "merge" and key:
                keep = []
                for item in cur:
                    ik = item_key(key, item)
                    if ik in sub and ik not in newsub and not any(ik in o for o in others_sub):
                        continue
                    if ik in sub and ik in newsub and isinstance(item, dict):
                        remove_unowned(
                            item,
                            sub[ik],
                            newsub[ik],
                            [o[ik] for o in others_sub if ik in o],
                            elem if isinstance(elem, str) else None,
                        )
                    keep.append(item)
                obj[name] = keep
            elif strategy == "set":
                obj[name] = [
                    x
                    for x in cur
                    if not (
                        f"v:{json.dumps(x)}" in sub
                        and f"v:{json.dumps(x)}" not in newsub
                        and not any(f"v:{json.dumps(x)}" in o for o in others_sub)
                    )
                ]
