"""The chaos lab's clock: unix seconds that never go backwards.

Histories, fault windows and the members' ``raft-events.jsonl`` must line
up on one time axis, and intervals between events must be exact even if the
wall clock is stepped during a run; hence unix time anchored once, then
advanced by the monotonic clock.  Stateless after construction, so one
instance is safely shared by every task and thread of a run.
"""

from __future__ import annotations

import time


class Clock:
    """Unix seconds, but monotonic: anchored to ``time.time()`` once."""

    def __init__(self) -> None:
        self.unix0 = time.time()
        self.mono0 = time.monotonic()

    def __call__(self) -> float:
        return self.unix0 + (time.monotonic() - self.mono0)
