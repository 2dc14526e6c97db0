"""pysyncobj's TCP transport with two gates: persist-before-send and fault injection.

* **Persist before send.** Raft requires that a member's log entries, term and
  vote are durable before it tells anyone about them. ``send`` therefore only
  queues messages; the member's Raft loop calls ``flush()``, which first runs
  the journal's ``sync()`` (one fdatasync for everything the tick wrote: group
  commit) and then hands the queued messages to pysyncobj's connections.
  One exception: AppendEntries (only a leader sends them) go out at once.
  Raft needs a leader's own entries durable before it *counts* itself
  towards a commit, not before it replicates them (Ongaro's thesis,
  §10.2.1). pysyncobj appends and sends entries only inside the tick and
  counts replies only after its next poll, and the Raft loop syncs the
  journal between the two (an on-tick hook runs just before the poll), so
  the leader's fsync overlaps the followers' instead of preceding them.
* **Partitions.** ``drop_to`` / ``drop_from`` hold member addresses whose Raft
  traffic is silently dropped on the way out / in, like an iptables DROP rule
  but without root. Connections stay up; only messages vanish. One-way and
  two-way cuts are combinations of the two sets, set over the admin endpoint.

Concurrency: pysyncobj calls everything here on the Raft thread; the admin
endpoint replaces the drop sets from the asyncio thread by assigning new
frozensets, which is atomic under the GIL.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from pysyncobj.transport import TCPTransport

log = logging.getLogger("raftstore.transport")
_TRACE = os.environ.get("RAFTSTORE_TRACE_RAFT") == "1"


class GatedTransport(TCPTransport):
    """TCPTransport whose sends wait for ``flush()`` and can be partitioned."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        super().__init__(syncObj, selfNode, otherNodes)
        self._held: list[tuple[Any, Any]] = []
        self.before_flush: Callable[[], Any] | None = None
        self.drop_to: frozenset[str] = frozenset()
        self.drop_from: frozenset[str] = frozenset()
        self.dropped_out = 0
        self.dropped_in = 0

    def send(self, node: Any, message: Any) -> bool:
        if node.id in self.drop_to:
            self.dropped_out += 1
            return True
        if isinstance(message, dict) and message.get("type") == "append_entries":
            return TCPTransport.send(self, node, message)
        self._held.append((node, message))
        return True

    def flush(self) -> None:
        if self.before_flush is not None:
            self.before_flush()
        if not self._held:
            return
        held, self._held = self._held, []
        for node, message in held:
            if node.id in self.drop_to:
                self.dropped_out += 1
                continue
            ok = TCPTransport.send(self, node, message)
            if _TRACE and isinstance(message, dict) and message.get("type") in ("request_vote", "response_vote"):
                log.warning("send %s to %s term=%s ok=%s", message["type"], node.id, message.get("term"), ok)

    def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if _TRACE and isinstance(message, dict) and message.get("type") in ("request_vote", "response_vote"):
            log.warning("recv %s from %s term=%s", message["type"], node.id, message.get("term"))
        if node.id in self.drop_from:
            self.dropped_in += 1
            return
        if (
            isinstance(message, dict)
            and message.get("type") == "next_node_idx"
            and message.get("success")
            and not message.get("reset")
        ):
            # pysyncobj sets nextIndex from every successful reply, so the
            # reply to an older append-entries pulls nextIndex back behind
            # entries already in flight and the leader sends them all again
            # (and the follower truncates and re-adds them). Replies on one
            # connection arrive in order and failures come back with
            # reset=True, so keeping the larger value is safe.
            next_index = self._syncObj._SyncObj__raftNextIndex
            before = next_index.get(node)
            super()._onMessageReceived(node, message)
            after = next_index.get(node)
            if before is not None and after is not None and after < before:
                next_index[node] = before
            return
        super()._onMessageReceived(node, message)
