"""Selecting watch events from the store's event log.

The event log is every change in revision order; a watcher reads it from a
start revision for one key range. ``select_events`` implements the paging
rule that lets a watcher resume at ``last revision + 1`` without losing or
repeating events: a page holds whole revisions only.

Concurrency model: a pure function that only reads the list passed in; the
caller holds the store's lock.
"""

from __future__ import annotations

from bisect import bisect_left

from .index import EVENT_REV
from .ops import in_range, range_bounds
from .types import Event


def select_events(events: list[Event], start_revision: int, key: bytes, range_end: bytes, limit: int) -> list[Event]:
    """Events at revision >= ``start_revision`` for keys in the range, oldest first.

    ``limit`` (0 = none) caps the number of events, but a revision's events
    are never split: whole revisions only, except that a single revision
    larger than ``limit`` is returned whole so that the caller always makes
    progress.
    """
    start, end, single = range_bounds(key, range_end)
    out: list[Event] = []
    group: list[Event] = []
    group_rev = -1
    # Index loop, not islice: islice would walk the skipped prefix.
    for i in range(bisect_left(events, start_revision, key=EVENT_REV), len(events)):
        ev = events[i]
        rev = ev.kv.mod_revision
        if rev != group_rev:
            if group:
                if limit and out and len(out) + len(group) > limit:
                    return out
                out.extend(group)
                group = []
                if limit and len(out) >= limit:
                    return out
            group_rev = rev
        if in_range(ev.kv.key, start, end, single):
            group.append(ev)
    if group and not (limit and out and len(out) + len(group) > limit):
        out.extend(group)
    return out
