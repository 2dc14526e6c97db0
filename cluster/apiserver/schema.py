"""Typed decoding of request bodies against the served kinds' field schemas.

``decode(obj, type_name)`` walks a JSON object against ``schema_data.SCHEMAS``
(generated from the Kubernetes OpenAPI types) and returns a ``Decoded``:
the object with unknown fields dropped and ``null`` fields removed (a
``null`` list element becomes its type's zero value - ``""``, ``0``, ``{}`` -
as Go decodes it), the unknown field paths (``spec.containers[0].foo``: for
fieldValidation), type errors (what Go's JSON decoder would reject: 400 in
Kubernetes; integers beyond int64, an IntOrString's beyond int32), quantity
fields normalised to Kubernetes' canonical strings (unparsable ones are
reported as 422 causes), and missing required fields (422 causes). Pure.

Concurrency: pure; ``SCHEMAS`` is read-only data shared by every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.quantity import QuantityError, canonical
from . import errors
from .schema_data import SCHEMAS

_JSON_TYPE = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
# Go's zero values of the primitive types (a date-time's is the zero Time, which encodes as null: dropped).
_ZERO: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False, "int-or-string": 0, "quantity": "0"}
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)  # an IntOrString's integer is an int32
_GO_TYPE = {
    "string": "string",
    "integer": "int64",
    "number": "float64",
    "boolean": "bool",
    "date-time": "Time",
    "int-or-string": "IntOrString",
    "quantity": "Quantity",
}


@dataclass
class Decoded:
    obj: Any
    unknown: list[str] = field(default_factory=list)
    type_errors: list[str] = field(default_factory=list)
    causes: list[errors.Cause] = field(default_factory=list)  # 422 material: bad quantities, missing fields


def _json_type(v: Any) -> str:
    return _JSON_TYPE.get(type(v), "value")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def decode(obj: Any, type_name: str, *, check_required: bool = True) -> Decoded:
    d = Decoded(None)
    d.obj = _walk(obj, type_name, "", d, type_name, check_required)
    return d


def _walk(v: Any, t: Any, path: str, d: Decoded, owner: str, req: bool) -> Any:
    if isinstance(t, list):
        kind, inner = t
        if kind == "list":
            if not isinstance(v, list):
                d.type_errors.append(
                    f"cannot unmarshal {_json_type(v)} into Go struct field {owner}.{path} of type []{_go(inner)}"
                )
                return None
            out = []
            for i, x in enumerate(v):
                if x is None:
                    # Go decodes a null list element to its type's zero value ("", 0, false, {}), which
                    # validation then judges; None would reach code that expects the element's type.
                    out.append(_zero(inner))
                    continue
                out.append(_walk(x, inner, f"{path}[{i}]", d, owner, req))
            return out
        if not isinstance(v, dict):
            d.type_errors.append(
                f"cannot unmarshal {_json_type(v)} into Go struct field {owner}.{path} of type map[string]{_go(inner)}"
            )
            return None
        out_m: dict[str, Any] = {}
        for k, x in v.items():
            if x is None:
                continue
            out_m[k] = _walk(x, inner, f"{path}[{k}]", d, owner, req)
        return out_m
    if t in SCHEMAS:
        if not isinstance(v, dict):
            d.type_errors.append(f"cannot unmarshal {_json_type(v)} into Go struct field {owner}.{path} of type {t}")
            return None
        spec = SCHEMAS[t]
        fields = spec["fields"]
        out_o: dict[str, Any] = {}
        for k, x in v.items():
            if k not in fields:
                d.unknown.append(_join(path, k))
                continue
            if x is None:
                continue
            out_o[k] = _walk(x, fields[k], _join(path, k), d, t, req)
        if req:
            for r in spec["required"]:
                if r not in out_o or out_o[r] is None:
                    d.causes.append(errors.required(_join(path, r)))
        return out_o
    return _prim(v, t, path, d, owner)


def _zero(t: Any) -> Any:
    """The zero value of type ``t``, as Go's decoder leaves a null list element (None for "any")."""
    if isinstance(t, list):
        return [] if t[0] == "list" else {}
    if t in SCHEMAS:
        return {}
    return _ZERO.get(t)


def _go(t: Any) -> str:
    if isinstance(t, list):
        return ("[]" if t[0] == "list" else "map[string]") + _go(t[1])
    return _GO_TYPE.get(t, t)


def _prim(v: Any, t: str, path: str, d: Decoded, owner: str) -> Any:
    bad = False
    if t == "string" or t == "date-time":
        bad = not isinstance(v, str)
    elif t == "integer":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        bad = not isinstance(v, int) or isinstance(v, bool) or not INT64[0] <= v <= INT64[1]
    elif t == "number":
        bad = not isinstance(v, (int, float)) or isinstance(v, bool)
    elif t == "boolean":
        bad = not isinstance(v, bool)
    elif t == "int-or-string":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        bad = (
            not isinstance(v, (int, str))
            or isinstance(v, bool)
            or (isinstance(v, int) and not INT32[0] <= v <= INT32[1])
        )
    elif t == "quantity":
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            bad = True
        else:
            try:
                return canonical(v)
            except QuantityError as exc:  # out-of-range quantities included (see cluster.api.quantity)
                d.causes.append(errors.invalid(path, v, str(exc)))
                return v
    else:  # "any"
        return v
    if bad:
        what = f"number {v}" if isinstance(v, int) and not isinstance(v, bool) else _json_type(v)
        go = "int32" if t == "int-or-string" and isinstance(v, int) else _go(t)
        d.type_errors.append(f"cannot unmarshal {what} into Go struct field {owner}.{path} of type {go}")
        return None
    return v
