"""Linearizability checker on hand-made histories: accepted, rejected, timeouts.

Every rejection is checked twice: with the quick stale-read scan on (the
default) and off, so the WGL search itself is shown to reject.
"""

from __future__ import annotations

import json

import pytest
from checker_fixtures import BOTH, call, lin

from raftstore.chaos.checkers import check_linearizable
from raftstore.chaos.history import History

# -- linearizability: accepted ------------------------------------------------


def test_sequential_history() -> None:
    h = History()
    h.invoke(0, "read", "x", None, 0.0)
    h.ok(0, "read", "x", None, 1.0)
    h.invoke(0, "write", "x", 1, 2.0)
    h.ok(0, "write", "x", 1, 3.0)
    h.invoke(1, "read", "x", None, 4.0)
    h.ok(1, "read", "x", 1, 5.0)
    h.invoke(1, "cas", "x", [1, 2], 6.0)
    h.ok(1, "cas", "x", [1, 2], 7.0)
    h.invoke(0, "read", "x", None, 8.0)
    h.ok(0, "read", "x", 2, 9.0)
    r = check_linearizable(h)
    assert r.valid is True
    assert r.key_count == 1 and r.op_count == 5
    assert r.keys["x"].ok_count == 5


def test_concurrent_writes_reads_see_either_value() -> None:
    for first, second in [(1, 2), (2, 1), (1, 1), (2, 2)]:
        h = History()
        call(h, 0, "write", "x", 1, 0.0, 10.0)
        call(h, 1, "write", "x", 2, 1.0, 9.0)
        call(h, 2, "read", "x", None, 2.0, 8.0, out=first)
        call(h, 3, "read", "x", None, 11.0, 12.0, out=second)
        expected = first == second or (first, second) in [(1, 2), (2, 1)]
        assert lin(h) is expected, (first, second)
    # A read overlapping both writes may also still see the initial None.
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 10.0)
    call(h, 1, "write", "x", 2, 1.0, 9.0)
    call(h, 2, "read", "x", None, 0.5, 3.0, out=None)
    assert lin(h) is True


def test_equal_times_are_concurrent() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 5.0)
    call(h, 1, "write", "x", 2, 5.0, 6.0)  # begins the instant the first ends
    call(h, 2, "read", "x", None, 6.0, 7.0, out=1)
    # Strictly after would force 1 then 2; a tie leaves the order open.
    assert lin(h) is True


def test_info_write_that_later_shows_up() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "write", "x", 2, 2.0, 3.0, status="info")
    call(h, 2, "read", "x", None, 4.0, 5.0, out=1)
    call(h, 2, "read", "x", None, 6.0, 7.0, out=2)  # it landed late
    call(h, 2, "read", "x", None, 8.0, 9.0, out=2)
    assert lin(h) is True


def test_info_write_that_never_shows_up() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "write", "x", 2, 2.0, 3.0, status="info")
    call(h, 2, "read", "x", None, 4.0, 5.0, out=1)
    call(h, 2, "read", "x", None, 100.0, 101.0, out=1)
    assert lin(h) is True


def test_invoke_without_completion_is_info() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "write", "x", 2, 2.0, None)  # the client crashed
    call(h, 2, "read", "x", None, 4.0, 5.0, out=2)
    call(h, 2, "read", "x", None, 6.0, 7.0, out=2)
    assert lin(h) is True
    r = check_linearizable(h)
    assert r.keys["x"].info_count == 1


def test_info_write_cannot_unwind() -> None:
    # An info write may land at most once: after 2 showed up and was
    # overwritten by 3, seeing 2 again is impossible.
    h = History()
    call(h, 1, "write", "x", 2, 0.0, 1.0, status="info")
    call(h, 2, "read", "x", None, 2.0, 3.0, out=2)
    call(h, 0, "write", "x", 3, 4.0, 5.0)
    call(h, 2, "read", "x", None, 6.0, 7.0, out=2)
    assert lin(h) is False
    assert lin(h, quick_reject=False) is False


def test_failed_cas_and_failed_write_are_ignored() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "cas", "x", [5, 6], 2.0, 3.0, status="fail")
    call(h, 1, "write", "x", 9, 3.5, 3.8, status="fail")
    call(h, 2, "read", "x", None, 4.0, 5.0, out=1)
    r = check_linearizable(h)
    assert r.valid is True
    assert r.keys["x"].fail_count == 2 and r.keys["x"].op_count == 2


def test_successful_cas_chain() -> None:
    h = History()
    call(h, 0, "write", "x", 0, 0.0, 1.0)
    t = 2.0
    for i in range(20):
        call(h, i % 3, "cas", "x", [i, i + 1], t, t + 1.0)
        t += 2.0
    call(h, 0, "read", "x", None, t, t + 1, out=20)
    assert lin(h) is True
    # Concurrent cas chain: each cas overlaps its neighbours, order still forced.
    h = History()
    for i in range(10):
        call(h, i, "cas", "x", [None if i == 0 else i, i + 1], float(i), i + 1.5)
    call(h, 99, "read", "x", None, 20.0, 21.0, out=10)
    assert lin(h) is True


def test_info_cas_may_or_may_not_apply() -> None:
    for seen in (1, 2):
        h = History()
        call(h, 0, "write", "x", 1, 0.0, 1.0)
        call(h, 1, "cas", "x", [1, 2], 2.0, 3.0, status="info")
        call(h, 2, "read", "x", None, 4.0, 5.0, out=seen)
        assert lin(h) is True


def test_reads_of_none_before_any_write() -> None:
    h = History()
    call(h, 0, "read", "x", None, 0.0, 1.0, out=None)
    call(h, 1, "read", "x", None, 0.5, 1.5, out=None)
    call(h, 0, "write", "x", 7, 2.0, 3.0)
    call(h, 1, "read", "x", None, 2.5, 4.0, out=None)  # concurrent with the write
    call(h, 0, "read", "x", None, 5.0, 6.0, out=7)
    assert lin(h) is True


def test_several_keys_independently() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "write", "y", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "read", "y", None, 2.0, 3.0, out=1)
    call(h, 2, "read", "x", None, 4.0, 5.0, out=2)
    call(h, 2, "read", "z", None, 4.0, 5.0, out=None)
    # Non-register ops are ignored by this checker.
    call(h, 3, "add", "s", 1, 0.0, 1.0)
    r = check_linearizable(h)
    assert r.valid is True
    assert set(r.keys) == {"x", "y", "z"}
    assert r.ignored_count == 1
    assert check_linearizable(h, keys=["y"]).key_count == 1


# -- linearizability: rejected ------------------------------------------------


@BOTH
def test_stale_read(quick: bool) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "read", "x", None, 4.0, 5.0, out=1)
    r = check_linearizable(h, quick_reject=quick)
    assert r.valid is False
    assert r.failed_keys == ["x"]
    k = r.keys["x"]
    culprit = k.unplaced[0]
    assert culprit[0].f == "read" and culprit[1] is not None and culprit[1].value == 1
    assert k.state == 2
    assert [p[0].value for p in k.linearized][-1] == 2
    assert "NOT linearizable" in r.explain()
    json.dumps(r.to_dict())  # serialisable as is


@BOTH
def test_lost_write(quick: bool) -> None:
    # The acknowledged write of 2 is never visible: a later read still sees 1.
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "write", "x", 2, 2.0, 3.0)
    call(h, 2, "read", "x", None, 4.0, 5.0, out=1)
    call(h, 2, "read", "x", None, 6.0, 7.0, out=1)
    assert lin(h, quick_reject=quick) is False


@BOTH
def test_real_time_order_violation(quick: bool) -> None:
    # B (write 2) begins after A (write 1) completed, so B follows A, yet the
    # reads need 2 and then 1 with nothing else writing 1.
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)  # A
    call(h, 1, "write", "x", 2, 2.0, 10.0)  # B
    call(h, 2, "read", "x", None, 3.0, 4.0, out=2)
    call(h, 2, "read", "x", None, 5.0, 6.0, out=1)
    assert lin(h, quick_reject=quick) is False
    # Sanity: were B concurrent with A, the same results would be fine.
    h2 = History()
    call(h2, 0, "write", "x", 1, 0.0, 5.5)
    call(h2, 1, "write", "x", 2, 0.5, 10.0)
    call(h2, 2, "read", "x", None, 3.0, 4.0, out=2)
    call(h2, 2, "read", "x", None, 5.0, 6.0, out=1)
    assert lin(h2, quick_reject=quick) is True


@BOTH
def test_cas_both_succeed_from_same_value(quick: bool) -> None:
    h = History()
    call(h, 0, "write", "x", 0, 0.0, 1.0)
    call(h, 1, "cas", "x", [0, 1], 2.0, 4.0)
    call(h, 2, "cas", "x", [0, 2], 2.5, 4.5)
    assert lin(h, quick_reject=quick) is False


@BOTH
def test_cas_against_value_never_current(quick: bool) -> None:
    h = History()
    call(h, 0, "write", "x", 0, 0.0, 1.0)
    call(h, 1, "cas", "x", [5, 6], 2.0, 3.0)
    assert lin(h, quick_reject=quick) is False
    # ... or against a value that was current, but no longer.
    h = History()
    call(h, 0, "write", "x", 0, 0.0, 1.0)
    call(h, 0, "write", "x", 1, 2.0, 3.0)
    call(h, 1, "cas", "x", [0, 6], 4.0, 5.0)
    assert lin(h, quick_reject=quick) is False


@BOTH
def test_read_of_value_never_written(quick: bool) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "read", "x", None, 0.5, 2.0, out=42)
    r = check_linearizable(h, quick_reject=quick)
    assert r.valid is False
    assert r.keys["x"].unplaced[0][1].value == 42  # type: ignore[union-attr]


@BOTH
def test_read_of_none_after_write_completed(quick: bool) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 1, "read", "x", None, 2.0, 3.0, out=None)
    assert lin(h, quick_reject=quick) is False


@BOTH
def test_per_key_independence(quick: bool) -> None:
    h = History()
    for key in ("a", "b", "c"):
        call(h, 0, "write", key, 1, 0.0, 1.0)
        call(h, 0, "write", key, 2, 2.0, 3.0)
    call(h, 1, "read", "a", None, 4.0, 5.0, out=2)
    call(h, 1, "read", "b", None, 4.0, 5.0, out=1)  # stale, in b only
    call(h, 1, "read", "c", None, 4.0, 5.0, out=2)
    r = check_linearizable(h, quick_reject=quick)
    assert r.valid is False
    assert r.failed_keys == ["b"]
    assert r.keys["a"].valid is True and r.keys["c"].valid is True
    assert check_linearizable(h, keys=["a", "c"], quick_reject=quick).valid is True


def test_malformed_history_is_an_error() -> None:
    h = History()
    h.ok(0, "write", "x", 1, 1.0)
    with pytest.raises(ValueError):
        check_linearizable(h)


def test_timeout_gives_unknown() -> None:
    # 24 concurrent writes of distinct values, then two reads that disagree
    # with nothing in between: refuting this means trying every order of
    # the writes (millions of configurations).
    h = History()
    for p in range(24):
        call(h, p, "write", "x", p, 0.0, 10.0)
    call(h, 100, "read", "x", None, 11.0, 12.0, out=3)
    call(h, 100, "read", "x", None, 13.0, 14.0, out=5)
    call(h, 200, "write", "y", 1, 0.0, 1.0)  # an easy key alongside
    r = check_linearizable(h, timeout=0.3)
    assert r.valid == "unknown"
    assert r.timed_out is True
    assert r.unknown_keys == ["x"]
    assert r.elapsed < 5.0


def test_timeout_still_reports_provable_violation() -> None:
    h = History()
    for p in range(24):
        call(h, p, "write", "x", p, 0.0, 10.0)
    call(h, 100, "read", "x", None, 11.0, 12.0, out=3)
    call(h, 100, "read", "x", None, 13.0, 14.0, out=5)
    call(h, 200, "write", "y", 1, 0.0, 1.0)
    call(h, 200, "write", "y", 2, 2.0, 3.0)
    call(h, 201, "read", "y", None, 4.0, 5.0, out=1)  # plainly stale
    r = check_linearizable(h, timeout=0.2)
    assert r.valid is False
    assert r.failed_keys == ["y"] and r.unknown_keys == ["x"]
