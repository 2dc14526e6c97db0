"""ClusterIP and NodePort allocation for Services, in the same txn as the Service.

Every allocated address and port is a key of its own
(``/registry/ranges/serviceips/<ip>``, ``/registry/ranges/servicenodeports/
<port>``, the value names the owning service). A write that allocates puts
those keys with a "must not exist" compare, so two services racing for one
address cannot both win; a write that gives one up deletes its key. A
pick that collides fails the compare, and the create's next attempt answers
that the address or port is already allocated (a random pick is not drawn
again).

Concurrency: no state besides the configured ranges; ``random`` picks need
no coordination because the txn compare decides.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from .. import errors


class ServiceAllocator:
    """Allocates from ``service_cidr`` and ``node_port_range``; answers the keys to claim or release."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int]) -> None:
        self.service_net = ipaddress.ip_network(service_cidr)
        self.node_ports = node_port_range

    @staticmethod
    def ip_key(ip: str) -> str:
        return f"/registry/ranges/serviceips/{ip}"

    @staticmethod
    def port_key(port: int) -> str:
        return f"/registry/ranges/servicenodeports/{port}"

    def _random_ip(self) -> str:
        net = self.service_net
        size = net.num_addresses
        # Skip the network address, the first address (the kubernetes service) and the broadcast address.
        return str(net.network_address + random.randrange(2, max(3, size - 1)))

    def allocate(self, obj: dict[str, Any], old: dict[str, Any] | None, retry: int) -> list[tuple[str, bytes]]:
        """Fill in ``obj``'s ClusterIP and node ports; the (key, owner) pairs it newly claims."""
        spec = obj.setdefault("spec", {})
        puts: list[tuple[str, bytes]] = []
        owner = f"{obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}".encode()
        typ = spec.get("type", "ClusterIP")
        old_spec = (old or {}).get("spec") or {}
        if typ != "ExternalName" and spec.get("clusterIP") != "None":
            ip = spec.get("clusterIP")
            if old is not None and old_spec.get("clusterIP") and ip == old_spec.get("clusterIP"):
                pass
            else:
                if ip:
                    try:
                        addr = ipaddress.ip_address(ip)
                    except ValueError:
                        addr = None
                    if addr is None or addr not in self.service_net:
                        raise errors.invalid_object(
                            "Service",
                            "",
                            obj["metadata"].get("name", ""),
                            [
                                errors.invalid(
                                    "spec.clusterIPs",
                                    [ip],
                                    f"failed to allocate IP {ip}: the provided IP ({ip}) is not in "
                                    f"the valid range. The range of valid IPs is {self.service_net}",
                                )
                            ],
                        )
                    if retry > 0:
                        raise errors.invalid_object(
                            "Service",
                            "",
                            obj["metadata"].get("name", ""),
                            [
                                errors.invalid(
                                    "spec.clusterIPs",
                                    [ip],
                                    f"failed to allocate IP {ip}: provided IP is already allocated",
                                )
                            ],
                        )
                else:
                    ip = self._random_ip()
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
                puts.append((self.ip_key(ip), owner))
        elif typ == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        if typ in ("NodePort", "LoadBalancer"):
            old_ports = {p.get("nodePort") for p in old_spec.get("ports") or [] if p.get("nodePort")}
            used = set(old_ports)
            for p in spec.get("ports") or []:
                np_ = p.get("nodePort")
                if np_ and np_ in old_ports:
                    continue
                if np_:
                    if retry > 0:
                        raise errors.invalid_object(
                            "Service",
                            "",
                            obj["metadata"].get("name", ""),
                            [errors.invalid("spec.ports[0].nodePort", np_, "provided port is already allocated")],
                        )
                else:
                    np_ = random.randint(*self.node_ports)
                    while np_ in used:
                        np_ = random.randint(*self.node_ports)
                    p["nodePort"] = np_
                used.add(np_)
                puts.append((self.port_key(np_), owner))
        else:
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
        return puts

    def releases(self, obj: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
        """The keys ``obj`` claimed that ``new`` (None: deleted) does not keep."""
        spec = obj.get("spec") or {}
        nspec = (new or {}).get("spec") or {}
        out = []
        ip = spec.get("clusterIP")
        if ip and ip != "None" and ip != nspec.get("clusterIP"):
            out.append(self.ip_key(ip))
        keep = {p.get("nodePort") for p in nspec.get("ports") or []}
        for p in spec.get("ports") or []:
            if p.get("nodePort") and p["nodePort"] not in keep:
                out.append(self.port_key(p["nodePort"]))
        return out
