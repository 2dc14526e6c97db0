"""Consistency checkers for chaos histories: linearizability, lost writes, watch streams."""

from raftstore.chaos.checkers.linearizable import (
    KeyResult,
    LinearizabilityResult,
    check_linearizable,
)
from raftstore.chaos.checkers.lost_writes import (
    AckResult,
    SetResult,
    check_acknowledged_writes,
    check_lost_writes,
)
from raftstore.chaos.checkers.watch import WatchResult, check_watch

__all__ = [
    "AckResult",
    "KeyResult",
    "LinearizabilityResult",
    "SetResult",
    "WatchResult",
    "check_acknowledged_writes",
    "check_linearizable",
    "check_lost_writes",
    "check_watch",
]
