"""Pod IP allocation from the node's podCIDR (host-local IPAM, round-robin).

The network address and the first host address (the "gateway", as
Kubernetes' host-local plugin reserves it) are never handed out; addresses
are given in rotation so a freed address is reused as late as possible
(sockets of the old pod may linger in TIME_WAIT). ``reserve`` re-claims an
address a pod already has (a kubelet that restarted).

Concurrency: plain in-memory state, owned by one asyncio loop (no awaits inside).
"""

from __future__ import annotations

import ipaddress


class IPAMExhausted(RuntimeError):
    """No free address is left in the range."""


class PodIPAM:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        hosts = list(self.network.hosts())
        self._pool = [str(h) for h in hosts[1:]] if len(hosts) > 2 else [str(h) for h in hosts]
        self._index = {ip: i for i, ip in enumerate(self._pool)}
        self._next = 0
        self.by_owner: dict[str, str] = {}
        self._used: set[str] = set()

    def __contains__(self, ip: str) -> bool:
        return ip in self._index

    @property
    def capacity(self) -> int:
        return len(self._pool)

    def allocate(self, owner: str) -> str:
        if owner in self.by_owner:
            return self.by_owner[owner]
        n = len(self._pool)
        for k in range(n):
            i = (self._next + k) % n
            ip = self._pool[i]
            if ip not in self._used:
                self._next = (i + 1) % n
                self._used.add(ip)
                self.by_owner[owner] = ip
                return ip
        raise IPAMExhausted(f"no free pod IP left in {self.network} ({n} addresses in use)")

    def reserve(self, owner: str, ip: str) -> bool:
        """Claim ``ip`` for ``owner`` if it is ours and free (a restarted kubelet re-adopting a pod's IP)."""
        if self.by_owner.get(owner) == ip:
            return True
        if ip not in self._index or ip in self._used:
            return False
        self._used.add(ip)
        self.by_owner[owner] = ip
        return True

    def release(self, owner: str) -> None:
        ip = self.by_owner.pop(owner, None)
        if ip is not None:
            self._used.discard(ip)
