"""Request options: what the query string (and a DELETE's body) ask of a write.

``write_options`` reads ``dryRun``, ``fieldValidation``, ``fieldManager``
and ``force`` into a ``WriteOptions``, which the registry also uses to hand
back warnings; ``delete_options`` decodes a DELETE's ``DeleteOptions`` body
(typed, as kube-apiserver does: a wrong type is a 400, an unsupported
``dryRun`` value a 422) and merges its query parameters in. Bad values are
400s, as kube-apiserver answers; ``parse_int`` reads the integer parameters
(Go's int64: anything beyond it is a 400, not a number Python would carry on
with).

Concurrency: pure functions; a ``WriteOptions`` belongs to one request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from multidict import MultiMapping

from . import errors, schema

FIELD_VALIDATION = {"strict": "Strict", "warn": "Warn", "ignore": "Ignore"}


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False
    duplicates: list[str] = field(default_factory=list)  # duplicate JSON fields seen while parsing the body
    warnings: list[str] = field(default_factory=list)  # out: Warning headers to send


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DIGITS = frozenset("0123456789")


def parse_bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1", "yes")


def parse_int(name: str, raw: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """The query parameter ``name`` as an integer in [lo, hi] (400 otherwise, as Go's strconv.ParseInt)."""
    digits = raw[1:] if raw[:1] in ("-", "+") else raw
    # ASCII digits only: Python's int() also takes other scripts' digits, underscores and spaces.
    if not digits or len(digits) > 19 or not set(digits) <= _DIGITS:
        raise errors.bad_request(f"{name}: invalid value {raw!r}: must be an integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise errors.bad_request(f"{name}: invalid value {raw!r}: must be between {lo} and {hi}")
    return value


def write_options(q: MultiMapping[str], duplicates: list[str] | None = None) -> WriteOptions:
    dry = q.getall("dryRun", [])
    for d in dry:
        if d != "All":
            raise errors.bad_request(f'Invalid dry run value "{d}": valid values are "All"')
    fv = q.get("fieldValidation", "") or "Warn"
    if fv.lower() not in FIELD_VALIDATION:
        raise errors.bad_request(f'Invalid fieldValidation directive: "{fv}": must be one of Ignore, Warn or Strict')
    fm = q.get("fieldManager")
    if fm is not None and len(fm) > 128:
        raise errors.bad_request("fieldManager: Too long: must have at most 128 bytes")
    return WriteOptions(
        dry_run=bool(dry),
        field_manager=fm,
        field_validation=FIELD_VALIDATION[fv.lower()],
        force=parse_bool(q.get("force")),
        duplicates=list(duplicates or []),
    )


def delete_options(body: Any, q: MultiMapping[str]) -> dict[str, Any]:
    """A DELETE's options: its ``DeleteOptions`` body (if any, decoded) overridden by the query parameters."""
    options: dict[str, Any] = {}
    if body is not None:
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        dec = schema.decode(body, "V1DeleteOptions", check_required=False)
        if dec.type_errors:
            raise errors.bad_request(
                f'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: json: {dec.type_errors[0]}'
            )
        options = dec.obj
    if "gracePeriodSeconds" in q:
        options["gracePeriodSeconds"] = parse_int("gracePeriodSeconds", q["gracePeriodSeconds"])
    if "propagationPolicy" in q:
        options["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        options["orphanDependents"] = parse_bool(q["orphanDependents"])
    if q.getall("dryRun", []):
        options["dryRun"] = q.getall("dryRun")
    bad = [d for d in options.get("dryRun") or [] if d != "All"]
    if bad:
        raise errors.invalid_object(
            "DeleteOptions", "meta.k8s.io", "", [errors.unsupported("dryRun", options["dryRun"], ["All"])]
        )
    return options


def list_limit(q: Mapping[str, str]) -> int:
    """``limit`` of a list (0: all; a negative one counts as 0)."""
    raw = q.get("limit") or "0"
    return max(parse_int("limit", raw), 0)
