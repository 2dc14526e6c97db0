"""Watch delivery of a member's endpoint: creating watches and pumping events.

A watch is per connection (``Conn.watchers``) and remembers the next revision
it owes its client. After every applied Raft batch the hub walks all watches
and sends each the events it is missing, at most ``WATCH_EVENTS_PER_FRAME``
per frame; a watch that is further behind continues in a later loop
iteration, so one slow watch cannot starve the event loop. Watches are
served on every member, leader or not, from the local store.

Concurrency model: everything runs on the member's asyncio thread except
``applied_from_raft``, which the Raft thread calls after each apply; it only
schedules ``_on_applied`` on the loop with ``call_soon_threadsafe``. Store
reads happen under the store's lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .conn import Conn, Watcher
from .mvcc.types import MVCCError
from .protocol import error
from .request import check_range_args

if TYPE_CHECKING:
    from .raftnode import ReplicatedStore

MAX_WATCHES_PER_CONN: Final[int] = 1000
WATCH_EVENTS_PER_FRAME: Final[int] = 1000

# (conn, request id, op, result, error) -> None: the endpoint's reply path.
Reply = Callable[[Conn, Any, str, Any, "dict[str, Any] | None"], None]


class WatchHub:
    """The watches of all connections of one endpoint."""

    def __init__(self, store: ReplicatedStore, conns: set[Conn], reply: Reply) -> None:
        self.store = store
        self.conns = conns
        self.reply = reply
        self.loop: asyncio.AbstractEventLoop | None = None
        self._applied_scheduled = False
        self._watching = False  # any watcher on any connection (refreshed on each apply)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.store.on_applied = self.applied_from_raft

    def create(self, conn: Conn, req_id: Any, req: dict[str, Any]) -> None:
        """Answer a ``watch`` request; raises ``BadRequest`` for a malformed one."""
        check_range_args(req)
        if len(conn.watchers) >= MAX_WATCHES_PER_CONN:
            self.reply(
                conn,
                req_id,
                "watch",
                None,
                error("too_many_watches", f"a connection may hold at most {MAX_WATCHES_PER_CONN} watches"),
            )
            return
        start = int(req.get("start_revision", 0) or 0)
        with self.store.lock:
            mvcc = self.store.mvcc
            current = mvcc.revision
            if start and start < mvcc.compact_revision:
                self.reply(
                    conn,
                    req_id,
                    "watch",
                    None,
                    error(
                        "compacted",
                        f"revision {start} has been compacted (compact revision {mvcc.compact_revision})",
                        compact_revision=mvcc.compact_revision,
                    ),
                )
                return
        w = Watcher(
            id=req_id,
            key=req.get("key", b""),
            range_end=req.get("range_end", b""),
            next_rev=start if start else current + 1,
            prev_kv=bool(req.get("prev_kv", False)),
        )
        conn.watchers[req_id] = w
        self._watching = True
        self.reply(conn, req_id, "watch", {"created": True, "revision": current}, None)
        self._pump(conn, w)

    def applied_from_raft(self, revision: int) -> None:  # Raft thread
        # Waking the event loop costs a syscall and a GIL hand-off per
        # applied batch; skip it when nobody watches.
        if not self._watching:
            return
        if not self._applied_scheduled and self.loop is not None:
            self._applied_scheduled = True
            self.loop.call_soon_threadsafe(self._on_applied)

    def _on_applied(self) -> None:
        self._applied_scheduled = False
        self._watching = any(c.watchers for c in self.conns)
        for conn in list(self.conns):
            for w in list(conn.watchers.values()):
                self._pump(conn, w)

    def _pump(self, conn: Conn, w: Watcher) -> None:
        if conn.closed or conn.watchers.get(w.id) is not w:
            return
        with self.store.lock:
            mvcc = self.store.mvcc
            current = mvcc.revision
            if w.next_rev > current:
                return
            try:
                events = mvcc.events_since(w.next_rev, w.key, w.range_end, limit=WATCH_EVENTS_PER_FRAME)
            except MVCCError as exc:
                conn.watchers.pop(w.id, None)
                details = getattr(exc, "details", {}) or {}
                conn.send({"id": w.id, "canceled": True, "error": error(exc.code, exc.message, **details)})
                return
            wire = [e.to_wire() for e in events]
        if not w.prev_kv:
            for e in wire:
                e["prev"] = None
        more = False
        if events:
            last = events[-1].kv.mod_revision
            more = len(events) >= WATCH_EVENTS_PER_FRAME and last < current
            w.next_rev = last + 1 if more else current + 1
            conn.send({"id": w.id, "events": wire, "revision": current})
        else:
            w.next_rev = current + 1
        if more and self.loop is not None:
            self.loop.call_soon(self._pump, conn, w)
