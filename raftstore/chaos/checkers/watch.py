"""Watch-stream checker: did a watcher see every event exactly once, in order?

An event is a dict ``{"revision": int, "key": str, "type": "PUT"|"DELETE",
"value": ...}``.  The watcher's stream (``observed``, possibly stitched
together across reconnects) is compared with ``reference``, the authoritative
events of the same key range from ``start_revision`` on, taken from the
store's history.  Anomalies:

* **missing**    -- a reference event never observed (a gap);
* **duplicated** -- a reference event observed more than once;
* **out_of_order** -- an event observed after one that comes later in the
  reference (revisions must not decrease; within one revision, events keep
  the reference order);
* **phantom**    -- an observed event that is not in the reference (wrong
  value or type, an older revision than ``start_revision``, or invented).

Events are matched on (revision, key, type, value), so an event delivered with
a corrupted value shows up as one phantom plus one missing event.

Without a reference only internal consistency can be checked: revisions
non-decreasing, no (revision, key) twice, nothing before ``start_revision``,
and -- if ``all_revisions`` says every revision from ``start_revision`` on
touches the watched range -- no revision number skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_EXAMPLES = 5
CATEGORIES = ("missing", "duplicated", "out_of_order", "phantom")

Event = Mapping[str, Any]


@dataclass(slots=True)
class WatchResult:
    """Anomaly counts, with the first few examples of each category.

    In reference-less mode with ``all_revisions``, missing examples are
    ``{"revision": r}`` for each skipped revision number.
    """

    valid: bool
    observed_count: int
    reference_count: int | None
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    phantom: int = 0
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})

    def note(self, category: str, event: Event) -> None:
        setattr(self, category, getattr(self, category) + 1)
        if len(self.examples[category]) < _EXAMPLES:
            self.examples[category].append(dict(event))

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "observed_count": self.observed_count,
            "reference_count": self.reference_count,
            **{c: getattr(self, c) for c in CATEGORIES},
            "examples": self.examples,
        }


def _freeze(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def _identity(ev: Event) -> tuple[Any, ...]:
    return (int(ev["revision"]), ev["key"], ev["type"], _freeze(ev.get("value")))


def check_watch(
    observed: Sequence[Event],
    reference: Sequence[Event] | None,
    *,
    start_revision: int,
    all_revisions: bool = False,
) -> WatchResult:
    """Compare a watcher's stream with the store's events from ``start_revision``.

    ``reference=None`` checks the stream on its own (see the module
    docstring); ``all_revisions`` only matters then.
    """
    if reference is None:
        return _check_alone(observed, start_revision, all_revisions)

    # Stable sort: events of one revision keep their reference order.
    ref = sorted((e for e in reference if int(e["revision"]) >= start_revision), key=lambda e: int(e["revision"]))
    position: dict[tuple[Any, ...], int] = {}
    for i, ev in enumerate(ref):
        ident = _identity(ev)
        if ident in position:
            raise ValueError(f"reference lists the same event twice: {ev}")
        position[ident] = i

    result = WatchResult(valid=True, observed_count=len(observed), reference_count=len(ref))
    seen: set[int] = set()
    last = -1
    for ev in observed:
        pos = position.get(_identity(ev))
        if pos is None:
            result.note("phantom", ev)
        elif pos in seen:
            result.note("duplicated", ev)
        else:
            seen.add(pos)
            if pos < last:
                result.note("out_of_order", ev)
            last = max(last, pos)
    for i, ev in enumerate(ref):
        if i not in seen:
            result.note("missing", ev)
    result.valid = not any(getattr(result, c) for c in CATEGORIES)
    return result


def _check_alone(observed: Sequence[Event], start_revision: int, all_revisions: bool) -> WatchResult:
    result = WatchResult(valid=True, observed_count=len(observed), reference_count=None)
    seen: set[tuple[int, Any]] = set()
    revisions: set[int] = set()
    last = start_revision
    for ev in observed:
        rev = int(ev["revision"])
        ident = (rev, ev["key"])
        if rev < start_revision:
            result.note("phantom", ev)
        elif ident in seen:
            result.note("duplicated", ev)
        else:
            seen.add(ident)
            revisions.add(rev)
            if rev < last:
                result.note("out_of_order", ev)
            last = max(last, rev)
    if all_revisions and revisions:
        # Every revision touches the range, so each number up to the newest
        # one delivered must have produced at least one event.
        for rev in range(start_revision, max(revisions) + 1):
            if rev not in revisions:
                result.note("missing", {"revision": rev})
    result.valid = not any(getattr(result, c) for c in CATEGORIES)
    return result
