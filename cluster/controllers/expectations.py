"""Controller expectations (``pkg/controller/controller_utils.go``'s
``UIDTrackingControllerExpectations``).

After a ReplicaSet controller sends N pod creations, its informer does not yet
show the new pods; syncing again in that window would create N more. So it
records "expect N creations" (and "expect the deletion of these pods") and
does not manage replicas again until the informer has observed them all - or
until ``ttl`` has passed (a lost watch event must not wedge the controller).

Concurrency: asyncio-only (called from informer handlers and workers on one loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..client.clock import REAL_CLOCK, Clock

EXPECTATIONS_TTL = 300.0


@dataclass
class _Exp:
    add: int = 0
    dels: set[str] = field(default_factory=set)
    timestamp: float = 0.0


class Expectations:
    def __init__(self, clock: Clock = REAL_CLOCK, ttl: float = EXPECTATIONS_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._exp: dict[str, _Exp] = {}

    def satisfied(self, key: str) -> bool:
        e = self._exp.get(key)
        if e is None:
            return True
        if e.add <= 0 and not e.dels:
            return True
        return self.clock.now() - e.timestamp > self.ttl

    def expect_creations(self, key: str, n: int) -> None:
        e = self._exp.setdefault(key, _Exp())
        e.add = n
        e.dels = set()
        e.timestamp = self.clock.now()

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        e = self._exp.setdefault(key, _Exp())
        e.add = 0
        e.dels = set(pod_keys)
        e.timestamp = self.clock.now()

    def creation_observed(self, key: str, n: int = 1) -> None:
        e = self._exp.get(key)
        if e is not None:
            e.add -= n

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._exp.get(key)
        if e is not None:
            e.dels.discard(pod_key)

    def expire_soon(self, key: str, seconds: float) -> None:
        """Let the current expectations lapse after ``seconds`` at most (used when a write's outcome is
        unknown: the object may or may not appear)."""
        e = self._exp.get(key)
        if e is not None:
            e.timestamp = min(e.timestamp, self.clock.now() - self.ttl + seconds)

    def delete(self, key: str) -> None:
        self._exp.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        e = self._exp.get(key)
        return (e.add, len(e.dels)) if e else (0, 0)
