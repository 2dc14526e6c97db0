"""Secrets: defaulting (type, stringData) and validation (keys, base64, size, type rules, immutability).

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import errors
from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import MAX_CONFIG_SIZE, V, validate_config_keys, validate_metadata


def default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    sd = obj.pop("stringData", None)
    if sd:
        data = obj.setdefault("data", {})
        for k, val in sd.items():
            data[k] = base64.b64encode(str(val).encode()).decode()


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    data = obj.get("data") or {}
    validate_config_keys("data", data, v)
    size = 0
    for k, val in data.items():
        try:
            size += len(base64.b64decode(val, validate=True))
        except (ValueError, TypeError):
            v.invalid(f"data[{k}]", "<secret contents redacted>", "illegal base64 data")
    if size > MAX_CONFIG_SIZE:
        v.add(errors.too_long("data", MAX_CONFIG_SIZE))
    typ = obj.get("type")
    if typ == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                v.required(f"data[{k}]")
    if typ == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        v.required("data[.dockerconfigjson]")
    if old is not None:
        if typ != old.get("type"):
            v.invalid("type", typ, "field is immutable")
        if old.get("immutable") and (data != (old.get("data") or {}) or not obj.get("immutable")):
            v.forbidden("data", "field is immutable when `immutable` is set")
    return v.causes


class SecretStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        default_secret(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_secret(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_secret(obj, old)
