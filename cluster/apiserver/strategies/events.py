"""Events (core/v1): defaulting and validation; PUT creates; an event expires an hour after creation.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata

EVENT_TTL = 3600


def validate_event(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    io = obj.get("involvedObject") or {}
    ns = (obj.get("metadata") or {}).get("namespace")
    ions = io.get("namespace")
    if ions and ns and ions != ns:
        v.invalid("involvedObject.namespace", ions, "does not match event.namespace")
    if len(obj.get("message") or "") > 4096:
        v.add(errors.too_long("message", 4096))
    v.enum("type", obj.get("type") or None, ["Normal", "Warning"])
    return v.causes


def default_event(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Normal")
    if obj.get("firstTimestamp"):
        obj.setdefault("count", 1)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


class EventStrategy(Strategy):
    create_on_update = True
    ttl_seconds = EVENT_TTL

    def default(self, obj: Obj) -> None:
        default_event(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_event(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_event(obj, old)
