"""Request options: what the query string (and a DELETE's body) ask of a write.

``write_options`` reads ``dryRun``, ``fieldValidation``, ``fieldManager``
and ``force`` into a ``WriteOptions``, which the registry also uses to hand
back warnings; ``delete_options`` merges a DELETE's ``DeleteOptions`` body
with its query parameters. Bad values are 400s, as kube-apiserver answers.

Concurrency: pure functions; a ``WriteOptions`` belongs to one request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from multidict import MultiMapping

from . import errors

FIELD_VALIDATION = {"strict": "Strict", "warn": "Warn", "ignore": "Ignore"}


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False
    duplicates: list[str] = field(default_factory=list)  # duplicate JSON fields seen while parsing the body
    warnings: list[str] = field(default_factory=list)  # out: Warning headers to send


def parse_bool(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1", "yes")


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
    """A DELETE's options: its ``DeleteOptions`` body (if any) overridden by the query parameters."""
    options: dict[str, Any] = body if isinstance(body, dict) else {}
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    if "gracePeriodSeconds" in q:
        try:
            options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise errors.bad_request("gracePeriodSeconds must be an integer") from None
    if "propagationPolicy" in q:
        options["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        options["orphanDependents"] = parse_bool(q["orphanDependents"])
    if q.getall("dryRun", []):
        options["dryRun"] = q.getall("dryRun")
    return options


def list_limit(q: Mapping[str, str]) -> int:
    """``limit`` of a list (0: all; a negative one counts as 0)."""
    try:
        limit = int(q.get("limit") or 0)
    except ValueError:
        raise errors.bad_request("limit must be an integer") from None
    return max(limit, 0)
