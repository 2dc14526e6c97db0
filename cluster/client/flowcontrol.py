"""Client-side rate limiting of API requests: client-go's flowcontrol token bucket (QPS and burst).

Concurrency: not thread-safe; one ``Client`` on one event loop calls it, and the caller sleeps for the
delay it returns.
"""

from __future__ import annotations

import time
from typing import Any


class TokenBucket:
    """client-go's flowcontrol token bucket: ``qps`` tokens per second, ``burst`` deep."""

    def __init__(self, qps: float, burst: int, clock: Any = time.monotonic) -> None:
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps
