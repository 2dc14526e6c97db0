"""Watch checker: every event exactly once, in order, nothing phantom."""

from __future__ import annotations

from typing import Any

from raftstore.chaos.checkers import check_watch

# -- watch ----------------------------------------------------------------------


def ev(rev: int, key: str, value: Any = None, typ: str = "PUT") -> dict[str, Any]:
    return {"revision": rev, "key": key, "type": typ, "value": value}


REFERENCE = [
    ev(5, "a", 1),
    ev(6, "b", 1),
    ev(7, "a", 2),
    ev(7, "b", 2),  # one transaction, two keys
    ev(8, "a", None, "DELETE"),
    ev(9, "c", 1),
]


def test_watch_exact_stream_is_valid() -> None:
    r = check_watch(list(REFERENCE), REFERENCE, start_revision=5)
    assert r.valid is True
    assert (r.missing, r.duplicated, r.out_of_order, r.phantom) == (0, 0, 0, 0)
    # Events before start_revision in the reference are not expected.
    r = check_watch(REFERENCE[2:], REFERENCE, start_revision=7)
    assert r.valid is True and r.reference_count == 4


def test_watch_missing_event() -> None:
    observed = [e for e in REFERENCE if e["revision"] != 6]
    r = check_watch(observed, REFERENCE, start_revision=5)
    assert r.valid is False and r.missing == 1
    assert r.examples["missing"] == [ev(6, "b", 1)]


def test_watch_duplicated_event_across_reconnect() -> None:
    observed = REFERENCE[:4] + REFERENCE[2:]  # replayed from revision 7
    r = check_watch(observed, REFERENCE, start_revision=5)
    assert r.valid is False
    assert r.duplicated == 2 and r.out_of_order == 0 and r.missing == 0


def test_watch_out_of_order() -> None:
    observed = [REFERENCE[0], REFERENCE[2], REFERENCE[1], *REFERENCE[3:]]
    r = check_watch(observed, REFERENCE, start_revision=5)
    assert r.valid is False and r.out_of_order == 1
    assert r.examples["out_of_order"] == [ev(6, "b", 1)]
    # Within one revision the reference order must be kept too.
    observed = [REFERENCE[0], REFERENCE[1], REFERENCE[3], REFERENCE[2], *REFERENCE[4:]]
    r = check_watch(observed, REFERENCE, start_revision=5)
    assert r.valid is False and r.out_of_order == 1


def test_watch_phantom_event() -> None:
    r = check_watch([*REFERENCE, ev(10, "z", 1)], REFERENCE, start_revision=5)
    assert r.valid is False and r.phantom == 1 and r.missing == 0
    # A wrong value is a phantom plus a missing event.
    observed = [ev(5, "a", 999), *REFERENCE[1:]]
    r = check_watch(observed, REFERENCE, start_revision=5)
    assert (r.phantom, r.missing) == (1, 1)
    # So is an event older than the watch's start.
    r = check_watch([ev(4, "a", 0), *REFERENCE], [ev(4, "a", 0), *REFERENCE], start_revision=5)
    assert r.phantom == 1
    assert r.to_dict()["phantom"] == 1


def test_watch_without_reference() -> None:
    r = check_watch(list(REFERENCE), None, start_revision=5)
    assert r.valid is True and r.reference_count is None
    r = check_watch([*REFERENCE, REFERENCE[1]], None, start_revision=5)
    assert r.valid is False and r.duplicated == 1
    r = check_watch([REFERENCE[2], REFERENCE[0]], None, start_revision=5)
    assert r.valid is False and r.out_of_order == 1
    r = check_watch([ev(3, "a", 1), *REFERENCE], None, start_revision=5)
    assert r.valid is False and r.phantom == 1


def test_watch_gaps_need_all_revisions() -> None:
    gappy = [e for e in REFERENCE if e["revision"] != 6]
    assert check_watch(gappy, None, start_revision=5).valid is True  # undetectable
    r = check_watch(gappy, None, start_revision=5, all_revisions=True)
    assert r.valid is False and r.missing == 1
    assert r.examples["missing"] == [{"revision": 6}]
    r = check_watch(list(REFERENCE), None, start_revision=4, all_revisions=True)
    assert r.missing == 1  # revision 4 itself was never delivered
    assert check_watch(list(REFERENCE), None, start_revision=5, all_revisions=True).valid is True
