"""A client connection of a member's endpoint: buffered replies and its watches.

Concurrency model: asyncio only. A ``Conn`` is created, written and closed on
the member's event loop thread; nothing here may be touched from the Raft
thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .protocol import encode


@dataclass
class Watcher:
    id: Any  # the request id of the client's watch request, whatever its type
    key: bytes
    range_end: bytes
    next_rev: int
    prev_kv: bool


@dataclass(eq=False)
class Conn:
    """A client connection. Replies produced in one loop iteration go out in
    one write: a batch of 64 answers costs one syscall, not 64."""

    writer: asyncio.StreamWriter
    peer: str
    watchers: dict[Any, Watcher] = field(default_factory=dict)
    closed: bool = False
    _out: list[bytes] = field(default_factory=list)

    def send(self, obj: dict[str, Any]) -> None:
        if self.closed:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(encode(obj))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.closed or not out:
            return
        try:
            self.writer.write(b"".join(out) if len(out) > 1 else out[0])
        except Exception:  # noqa: BLE001 - any write failure means the peer is gone
            self.closed = True
