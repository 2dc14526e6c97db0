"""Services: defaulting, validation, and their ClusterIP and NodePort allocations.

An update that leaves ``clusterIP`` or a port's ``nodePort`` empty keeps the
allocated one. Allocations ride in the service's own txn
(``serviceallocator``).

Concurrency: pure functions, and a strategy with no mutable state that every
request shares (see ``..strategy``); defaulting mutates only the object it is
given, which belongs to one request.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .. import errors
from ..errors import Cause
from ..strategy import Obj, Settings, Strategy
from ..validation import (
    IANA_SVC_NAME_RE,
    V,
    dns1123_label,
    dns1123_subdomain,
    validate_metadata,
)
from .serviceallocator import ServiceAllocator

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        if p.get("targetPort") is None and isinstance(p.get("port"), int):
            p["targetPort"] = p["port"]
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def validate_service(
    obj: dict[str, Any], old: dict[str, Any] | None, node_ports: tuple[int, int] = (30000, 32767)
) -> list[Cause]:
    v = V()
    validate_metadata(obj, "dns1035", True, v)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        v.required("spec")
        return v.causes
    typ = spec.get("type")
    v.enum("spec.type", typ, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if typ == "ExternalName":
        en = spec.get("externalName")
        if not en:
            v.required("spec.externalName")
        else:
            for m in dns1123_subdomain(en.rstrip(".")):
                v.invalid("spec.externalName", en, m)
    elif not ports and not headless:
        v.required("spec.ports")
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        n = p.get("name")
        if len(ports) > 1 and not n:
            v.required(f"{pp}.name")
        if n:
            for m in dns1123_label(n):
                v.invalid(f"{pp}.name", n, m)
            if n in names:
                v.add(errors.duplicate(f"{pp}.name", n))
            names.add(n)
        if p.get("port") is None:
            v.required(f"{pp}.port")
        else:
            v.port(f"{pp}.port", p.get("port"))
        v.enum(f"{pp}.protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
        tp = p.get("targetPort")
        if isinstance(tp, int):
            v.port(f"{pp}.targetPort", tp)
        elif isinstance(tp, str):
            if not tp or len(tp) > 15 or not IANA_SVC_NAME_RE.match(tp) or not re.search("[a-z]", tp):
                v.invalid(
                    f"{pp}.targetPort",
                    tp,
                    "must contain only alpha-numeric characters (a-z, 0-9), and "
                    "hyphens (-), at most 15 characters, and at least one letter",
                )
        np_ = p.get("nodePort")
        if np_ not in (None, 0):
            if typ not in ("NodePort", "LoadBalancer"):
                v.forbidden(f"{pp}.nodePort", "may not be used when `type` is 'ClusterIP'")
            elif isinstance(np_, int) and not node_ports[0] <= np_ <= node_ports[1]:
                v.invalid(
                    f"{pp}.nodePort",
                    np_,
                    f"provided port is not in the valid range. The range of valid "
                    f"ports is {node_ports[0]}-{node_ports[1]}",
                )
        key = (p.get("port"), p.get("protocol"))
        if key in seen:
            v.add(errors.duplicate(pp, {"port": p.get("port"), "protocol": p.get("protocol")}))
        seen.add(key)
    v.labels("spec.selector", spec.get("selector"))
    v.enum("spec.sessionAffinity", spec.get("sessionAffinity"), ["ClientIP", "None"])
    v.enum("spec.externalTrafficPolicy", spec.get("externalTrafficPolicy"), ["Cluster", "Local"])
    v.enum("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"), ["Cluster", "Local"])
    cip = spec.get("clusterIP")
    if cip and cip != "None":
        try:
            ipaddress.ip_address(cip)
        except ValueError:
            v.invalid("spec.clusterIPs[0]", cip, "must be empty, 'None', or a valid IP address")
    if old is not None and typ != "ExternalName":
        oldip = (old.get("spec") or {}).get("clusterIP")
        if oldip and cip != oldip:
            v.invalid("spec.clusterIPs[0]", cip, "may not change once set")
    return v.causes


class ServiceStrategy(Strategy):
    reservation_exhausted = "could not allocate a service address after several attempts"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.allocator = ServiceAllocator(settings.service_cidr, settings.node_port_range)

    def default(self, obj: Obj) -> None:
        default_service(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        return {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        spec, ospec = new.setdefault("spec", {}), old.get("spec") or {}
        if not spec.get("clusterIP") and ospec.get("clusterIP") and spec.get("type") != "ExternalName":
            spec["clusterIP"] = ospec["clusterIP"]
            spec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
        oldports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in ospec.get("ports") or []}
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports") or []:
                if not p.get("nodePort") and oldports.get((p.get("port"), p.get("protocol"))):
                    p["nodePort"] = oldports[(p.get("port"), p.get("protocol"))]

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_service(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validate_service(obj, old)

    def reserve(self, obj: Obj, old: Obj | None, attempt: int) -> list[tuple[str, bytes]]:
        return self.allocator.allocate(obj, old, retry=attempt)

    def release(self, old: Obj, new: Obj | None) -> list[str]:
        return self.allocator.releases(old, new)
