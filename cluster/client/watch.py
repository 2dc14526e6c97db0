"""Watch streams, decoded: newline-delimited JSON events in, ``WatchEvent``s out.

``WatchStreamDecoder`` is the pure half of ``Client.watch``: it buffers the chunks the connection
delivers, splits them into lines, and turns each line into a ``WatchEvent`` - or raises ``ApiError``
for an ERROR event (``.gone`` for 410 Gone) and ``WatchDisconnected`` for a line that is not JSON or a
stream that ends mid-event. Opening the stream, retries and reading belong to ``Client.watch``.

Concurrency: one decoder per stream, used by the one task reading that stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import ApiError, WatchDisconnected, reason_for


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion", ""))


class WatchStreamDecoder:
    """The events of one watch stream, from the chunks of bytes it arrives in."""

    def __init__(self, what: str) -> None:
        self.what = what  # names the stream in errors: "watch <resource>"
        self._buf = b""

    def feed(self, chunk: bytes) -> Iterator[WatchEvent]:
        """Take a chunk; iterate the events it completes (a partial line waits for the next chunk)."""
        self._buf += chunk
        return self._events()

    def _events(self) -> Iterator[WatchEvent]:
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return
            line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError as exc:
                raise WatchDisconnected(f"{self.what}: bad event line {line[:100]!r}") from exc
            etype = ev.get("type")
            obj = ev.get("object") or {}
            if etype == "ERROR":
                code = int(obj.get("code") or 500)
                raise ApiError(code, str(obj.get("reason") or reason_for(code)), str(obj.get("message") or ""), obj)
            yield WatchEvent(etype, obj)

    def end(self) -> None:
        """The server ended the stream: fine between events, a broken stream in the middle of one."""
        if self._buf.strip():
            raise WatchDisconnected(f"{self.what}: stream ended mid-event")
