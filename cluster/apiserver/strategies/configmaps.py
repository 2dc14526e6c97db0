"""ConfigMaps: validation (keys, size, binaryData, immutability).

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``).
"""

from __future__ import annotations

import base64
from typing import Any

from .. import errors
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import MAX_CONFIG_SIZE, V, validate_config_keys, validate_metadata


def validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    size = validate_config_keys("data", obj.get("data"), v)
    size += validate_config_keys("binaryData", obj.get("binaryData"), v)
    for k in obj.get("binaryData") or {}:
        if k in (obj.get("data") or {}):
            v.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
        try:
            base64.b64decode(obj["binaryData"][k], validate=True)
        except (ValueError, TypeError):
            v.invalid(f"binaryData[{k}]", "<value omitted>", "illegal base64 data")
    if size > MAX_CONFIG_SIZE:
        v.add(errors.too_long("data", MAX_CONFIG_SIZE))
    if old is not None and old.get("immutable"):
        if obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData"):
            v.forbidden("data", "field is immutable when `immutable` is set")
        if not obj.get("immutable"):
            v.forbidden("immutable", "field is immutable when `immutable` is set")
    return v.causes


class ConfigMapStrategy(Strategy):
    def validate(self, obj: Obj) -> list[Cause]:
        return validate_configmap(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_configmap(obj, old)
