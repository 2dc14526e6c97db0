"""Lease expiry decisions of the leader: deadlines in, revocations out.

Leases live in the replicated state machine, but their *deadlines* do not:
as in etcd, only the leader keeps time. A new leader cannot know how much of
a TTL was left under its predecessor, so it gives every lease a full TTL
from the moment it first looks; grants and confirmed keep-alives start a new
TTL; a lease past its deadline is revoked by proposing a replicated
``lease_revoke``, so every member deletes its keys at the same revision.

``Lessor`` is the pure part of that: the endpoint feeds it what happened
(leadership lost, the term and the leases the store holds, a grant, a
keep-alive, the outcome of a revoke) together with the current monotonic time
``now``, and it answers which leases to revoke and how long a lease has left.
It reads no clock and does no I/O, so it is tested without a network.

Concurrency model: not thread-safe. The endpoint calls it from its asyncio
thread, except ``remaining``, which lease reads call on the Raft thread: it
is a single dict lookup, atomic under the GIL, and may see a deadline from
just before or just after a concurrent update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Lessor:
    """Deadlines (monotonic seconds) of the leases this leader is timing."""

    def __init__(self) -> None:
        self._deadlines: dict[int, float] = {}
        # Revokes proposed and not yet finished: never propose one twice.
        self._revoking: set[int] = set()
        # The term whose leader set the deadlines; -1 while not leader.
        self._term = -1

    def step_down(self) -> None:
        """This member is not the leader (any more): forget every deadline.

        Revokes in flight stay marked until ``revoke_finished``: every
        proposal is settled (committed, failed or timed out), and proposing
        it again before then would only duplicate it.
        """
        self._deadlines.clear()
        self._term = -1

    def expired(self, term: int, leases: Mapping[int, int], now: float) -> list[int]:
        """Leases (``{id: granted ttl}``, as the store has them) to revoke at ``now``.

        Call only while leader. A change of ``term`` restarts every lease's
        TTL; a lease new to the lessor gets a full TTL; deadlines of leases
        the store no longer has are dropped. The ids returned, in the order of
        ``leases``, are marked as being revoked and are not returned again
        until ``revoke_finished``.
        """
        if term != self._term:
            self._term = term
            self._deadlines = {lid: now + ttl for lid, ttl in leases.items()}
        for lid in list(self._deadlines):
            if lid not in leases:
                del self._deadlines[lid]
        due: list[int] = []
        for lid, ttl in leases.items():
            deadline = self._deadlines.setdefault(lid, now + ttl)
            if deadline <= now and lid not in self._revoking:
                self._revoking.add(lid)
                due.append(lid)
        return due

    def granted(self, lease_id: int, ttl: int, now: float) -> None:
        """A lease grant committed: its TTL runs from ``now``."""
        self._deadlines[lease_id] = now + ttl

    def kept_alive(self, lease_id: int, ttl: int, now: float) -> None:
        """A keep-alive was confirmed by a committed barrier: a new TTL from ``now``."""
        self._deadlines[lease_id] = now + ttl

    def revoke_finished(self, lease_id: int, err: Mapping[str, Any] | None) -> None:
        """A proposed revoke ended: ``err`` is None on success, else the error dict.

        The deadline goes once the lease is gone from the store (revoked now,
        or already unknown to it); after any other failure it stays, so the
        next ``expired`` proposes the revoke again.
        """
        self._revoking.discard(lease_id)
        if err is None or err.get("code") == "lease_not_found":
            self._deadlines.pop(lease_id, None)

    def remaining(self, lease_id: int, now: float) -> float | None:
        """Seconds left before ``lease_id`` expires, or None if it is not being timed."""
        deadline = self._deadlines.get(lease_id)
        return None if deadline is None else max(0.0, deadline - now)
