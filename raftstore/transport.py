"""pysyncobj's TCP transport with two gates: persist-before-send and fault injection.

* **Persist before send.** Raft requires that a member's log entries, term and
  vote are durable before it tells anyone about them. ``send`` therefore only
  queues messages; the member's Raft loop calls ``flush()``, which first runs
  the journal's ``sync()`` (one fdatasync for everything the tick wrote: group
  commit) and then hands the queued messages to pysyncobj's connections.
* **Partitions.** ``drop_to`` / ``drop_from`` hold member addresses whose Raft
  traffic is silently dropped on the way out / in, like an iptables DROP rule
  but without root. Connections stay up; only messages vanish. One-way and
  two-way cuts are combinations of the two sets, set over the admin endpoint.

Concurrency: pysyncobj calls everything here on the Raft thread; the admin
endpoint replaces the drop sets from the asyncio thread by assigning new
frozensets, which is atomic under the GIL.
"""

from __future__ import annotations

from typing import Any, Callable

from pysyncobj.transport import TCPTransport


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
            TCPTransport.send(self, node, message)

    def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if node.id in self.drop_from:
            self.dropped_in += 1
            return
        super()._onMessageReceived(node, message)
