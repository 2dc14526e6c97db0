"""Compaction: dropping history and watch events older than a revision.

etcd's ``compact``: after compacting at ``rev``, reads at ``rev`` and later
still answer exactly as before, reads and watches from earlier revisions are
refused with ``compacted``. The store calls ``check_target`` before
``compact_history``, so a refused compaction changes nothing.

Concurrency model: pure functions that mutate only the index and event list
passed in; the caller serialises them with every other store mutation.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from .index import EVENT_REV, MOD_REV
from .types import CompactedError, Event, FutureRevisionError

if TYPE_CHECKING:
    from sortedcontainers import SortedDict


def check_target(rev: int, compact_revision: int, revision: int) -> None:
    """Raise unless ``rev`` lies in (compact_revision, revision]."""
    if rev <= compact_revision:
        raise CompactedError(
            f"revision {rev} is already compacted (compact revision {compact_revision})",
            compact_revision=compact_revision,
            revision=rev,
        )
    if rev > revision:
        raise FutureRevisionError(
            f"cannot compact future revision {rev} (current revision {revision})",
            revision=rev,
            current_revision=revision,
        )


def compact_history(index: SortedDict, events: list[Event], rev: int) -> int:
    """Drop what no read at ``rev`` or later can see; returns the records dropped.

    Keeps, per key, the newest record <= rev (so reads at exactly rev still
    work) unless it is a tombstone; drops everything older. Events before
    ``rev`` go too. O(keys * log(history) + dropped); emptied keys leave the
    index.
    """
    emptied: list[bytes] = []
    dropped = 0
    for k, hist in index.items():
        if hist[0].mod_revision > rev or (len(hist) == 1 and hist[0].version):
            continue
        i = bisect_right(hist, rev, key=MOD_REV) - 1
        cut = i + 1 if hist[i].version == 0 else i
        if cut:
            del hist[:cut]
            dropped += cut
            if not hist:
                emptied.append(k)
    for k in emptied:
        del index[k]
    del events[: bisect_left(events, rev, key=EVENT_REV)]
    return dropped
