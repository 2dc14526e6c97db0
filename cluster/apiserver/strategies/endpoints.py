"""Endpoints: defaulting (port protocol) and validation (addresses, ports); PUT creates.

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..errors import Cause
from ..strategy import Obj, Strategy
from ..validation import V, validate_metadata


def validate_endpoints(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    for i, ss in enumerate(obj.get("subsets") or []):
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(ss.get(kind) or []):
                ap = f"subsets[{i}].{kind}[{j}].ip"
                if not a.get("ip"):
                    v.required(ap)
                else:
                    try:
                        ipaddress.ip_address(a["ip"])
                    except ValueError:
                        v.invalid(ap, a["ip"], "must be a valid IP address")
        for j, p in enumerate(ss.get("ports") or []):
            v.port(f"subsets[{i}].ports[{j}].port", p.get("port"), allow_zero=False)
            v.enum(f"subsets[{i}].ports[{j}].protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
    return v.causes


def default_endpoints(obj: dict[str, Any]) -> None:
    for ss in obj.get("subsets") or []:
        for p in ss.get("ports") or []:
            p.setdefault("protocol", "TCP")


class EndpointsStrategy(Strategy):
    create_on_update = True

    def default(self, obj: Obj) -> None:
        default_endpoints(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_endpoints(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_endpoints(obj, old)
