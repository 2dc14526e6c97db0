"""The API server's face of the ground floor's selectors: the same parsers,
with a syntax error turned into the 400 ``BadRequest`` Status kube-apiserver
answers (``cluster.api.selectors`` raises a plain ``SelectorError``).

Concurrency: pure functions; selectors are immutable and may be shared by
concurrent watch coroutines.
"""

from __future__ import annotations

from typing import Any

from ..api import selectors as _sel
from ..api.selectors import (
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Requirement,
    field_value,
)
from .errors import bad_request

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "field_value",
    "parse_label_selector",
    "parse_field_selector",
    "from_label_selector_object",
]


def parse_label_selector(raw: str | None) -> LabelSelector:
    try:
        return _sel.parse_label_selector(raw)
    except _sel.SelectorError as e:
        raise bad_request(str(e)) from None


def parse_field_selector(raw: str | None, allowed: set[str] | None = None, plural: str = "") -> FieldSelector:
    try:
        return _sel.parse_field_selector(raw, allowed, plural)
    except _sel.SelectorError as e:
        raise bad_request(str(e)) from None


def from_label_selector_object(sel: dict[str, Any] | None) -> LabelSelector:
    try:
        return _sel.from_label_selector_object(sel)
    except _sel.SelectorError as e:
        raise bad_request(str(e)) from None
