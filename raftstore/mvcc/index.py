"""Reads over the key index: one key's history, and range scans at a revision.

The index is a ``SortedDict[bytes, list[KeyValue]]``: per key, its history in
``mod_revision`` order, where a record with ``version == 0`` is a tombstone
(see ``store`` for the full data layout). These helpers only read it; the
store is the only writer.

Concurrency model: pure functions; the caller holds whatever lock guards the
index while a returned iterator is consumed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Final

from .ops import range_bounds
from .types import KeyValue

if TYPE_CHECKING:
    from sortedcontainers import SortedDict

# Sort keys for bisecting a key's history and the event log by revision.
MOD_REV: Final = attrgetter("mod_revision")
EVENT_REV: Final = attrgetter("kv.mod_revision")


def at(hist: list[KeyValue], rev: int) -> KeyValue | None:
    """The live record of one key's history as of ``rev``, or None."""
    kv = hist[-1]
    if kv.mod_revision > rev:
        i = bisect_right(hist, rev, key=MOD_REV) - 1
        if i < 0:
            return None
        kv = hist[i]
    return None if kv.version == 0 else kv


def latest_live(index: SortedDict, key: bytes) -> KeyValue | None:
    """The key's current record, or None if it never existed or is deleted."""
    hist = index.get(key)
    if not hist:
        return None
    kv: KeyValue = hist[-1]
    return None if kv.version == 0 else kv


def scan(index: SortedDict, key: bytes, range_end: bytes, rev: int) -> Iterator[KeyValue]:
    """Live KeyValues in range as of ``rev``, in key order."""
    start, end, single = range_bounds(key, range_end)
    if single:
        hist = index.get(start)
        if hist:
            kv = at(hist, rev)
            if kv is not None:
                yield kv
        return
    if end is not None and end <= start:
        return
    for k in index.irange(start, end, inclusive=(True, False)):
        kv = at(index[k], rev)
        if kv is not None:
            yield kv
