"""Tests of the chaos checkers on hand-made and synthetic histories.

Every linearizability rejection is checked twice: with the quick stale-read
scan on (the default) and off, so the WGL search itself is shown to reject.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from raftstore.chaos.checkers import (
    check_acknowledged_writes,
    check_linearizable,
    check_lost_writes,
    check_watch,
)
from raftstore.chaos.history import History, Op, pair_ops
from raftstore.chaos.synth import generate_register_history, plant_stale_read

BOTH = pytest.mark.parametrize("quick", [True, False], ids=["quick", "search"])


def call(
    h: History,
    p: int,
    f: str,
    key: str,
    value: Any,
    start: float,
    end: float | None,
    *,
    status: str = "ok",
    out: Any = None,
) -> None:
    """Record a whole op: invoke at ``start``, completion at ``end`` (None: never).

    Reads (read, read_set) take their result from ``out``; the checkers order ops by time, not
    by position in the history, so ops may be recorded one after the other.
    """
    reads = f in ("read", "read_set")
    h.invoke(p, f, key, None if reads else value, start)
    if end is not None:
        h.append(p, status, f, key, out if reads else value, end)  # type: ignore[arg-type]


def lin(h: History, **kw: Any) -> Any:
    return check_linearizable(h, **kw).valid


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


# -- linearizability: exactness against a brute-force oracle -------------------


def _oracle(h: History) -> bool:
    """Linearizable?  By exhaustive search over orders, no cleverness."""
    inf = float("inf")
    ops = []
    for inv, comp in pair_ops(h.ops):
        status = "info" if comp is None else comp.type
        if status == "fail" or (inv.f == "read" and status != "ok"):
            continue
        value = comp.value if inv.f == "read" else inv.value  # type: ignore[union-attr]
        ops.append((inv.f, value, inv.time, comp.time if status == "ok" else inf))  # type: ignore[union-attr]
    must = frozenset(i for i, o in enumerate(ops) if o[3] != inf)
    failed: set[tuple[frozenset[int], Any]] = set()

    def go(done: frozenset[int], state: Any) -> bool:
        if must <= done:
            return True
        if (done, state) in failed:
            return False
        rest = [i for i in range(len(ops)) if i not in done]
        for i in rest:
            f, v, start, _ = ops[i]
            if any(ops[j][3] < start for j in rest):
                continue  # something still pending had to come first
            if f == "read" and state != v or f == "cas" and state != v[0]:
                continue
            new = state if f == "read" else (v if f == "write" else v[1])
            if go(done | {i}, new):
                return True
        failed.add((done, state))
        return False

    return go(frozenset(), None)


def _random_small_history(rng: random.Random) -> History:
    values = rng.choice([[0, 1], [0, 1, 2]])
    events = []
    pid = 0
    for _ in range(rng.randint(2, 5)):
        t = rng.random() * 3
        for _ in range(rng.randint(1, 3)):
            d = rng.random() * 4
            f = rng.choice(["read", "write", "cas"])
            if f == "read":
                inv_v, out = None, rng.choice([None, *values])
            elif f == "write":
                inv_v = out = rng.choice(values)
            else:
                inv_v = out = [rng.choice([None, *values]), rng.choice(values)]
            status = rng.choices(["ok", "info", "fail", "none"], [10, 3, 1, 2])[0]
            # Whole-number times, so ties are common.
            events.append((round(t), pid, "invoke", f, inv_v))
            if status != "none":
                events.append((round(t + d), pid, status, f, out if status == "ok" else inv_v))
            t += d + rng.random()
            if status in ("info", "none"):
                pid += 1  # never reuse a process after an unknown outcome
        pid += 1
    events.sort(key=lambda e: e[0])  # stable: each process stays in order
    h = History()
    for t, p, typ, f, v in events:
        h.append(p, typ, f, "x", v, t)  # type: ignore[arg-type]
    return h


def test_agrees_with_brute_force_on_random_small_histories() -> None:
    rng = random.Random(20240611)
    verdicts = {True: 0, False: 0}
    for _ in range(1000):
        h = _random_small_history(rng)
        expected = _oracle(h)
        verdicts[expected] += 1
        assert lin(h) is expected, h.ops
        assert lin(h, quick_reject=False) is expected, h.ops
    assert min(verdicts.values()) > 200  # both outcomes well represented


# -- linearizability: property test on synthetic histories -------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_synthetic_histories_accepted_and_mutations_rejected(seed: int) -> None:
    h = generate_register_history(
        600, n_keys=2, n_processes=6, group_size=3, seed=seed, info_rate=0.05, fail_rate=0.02
    )
    pairs = h.pair()
    assert len(pairs) == 600
    assert any(c is None or c.type == "info" for _, c in pairs)
    r = check_linearizable(h)
    assert r.valid is True, r.explain()

    mutated = plant_stale_read(h, seed=seed)
    assert mutated is not None
    for quick in (True, False):
        r = check_linearizable(h, quick_reject=quick, timeout=20)
        assert r.valid is False, (quick, mutated)
        assert r.failed_keys == [mutated.key]


def test_synthetic_read_of_unwritten_value_rejected() -> None:
    h = generate_register_history(400, n_keys=1, n_processes=5, seed=7)
    reads = [c for i, c in h.pair() if i.f == "read" and c is not None and c.type == "ok"]
    random.Random(7).choice(reads).value = 10**6
    assert lin(h) is False
    assert lin(h, quick_reject=False, timeout=20) is False


def test_synthetic_history_is_well_formed() -> None:
    h = generate_register_history(300, n_keys=3, n_processes=6, group_size=2, seed=5)
    pairs = h.pair()
    last_of: dict[int, Op] = {}
    for inv, comp in pairs:
        assert comp is None or comp.time >= inv.time
        last_of[inv.process] = inv
    unknown = [inv for inv, comp in pairs if comp is None or comp.type == "info"]
    assert unknown
    # A process whose outcome is unknown is never used again.
    assert all(last_of[inv.process] is inv for inv in unknown)
    assert [op.index for op in h] == list(range(len(h)))
    assert all(a.time <= b.time for a, b in zip(h.ops, h.ops[1:]))


# -- lost writes: set workload -------------------------------------------------


def _set_history(adds: list[tuple[int, str, float, float]], final: list[Any], read_at: float = 100.0) -> History:
    h = History()
    for element, status, start, end in adds:
        call(h, 1000 + element, "add", "s", element, start, end, status=status)
    call(h, 0, "read_set", "s", None, read_at, read_at + 1, out=final)
    return h


def test_set_all_present_is_valid() -> None:
    h = _set_history([(1, "ok", 0, 1), (2, "ok", 1, 2), (3, "info", 2, 3), (4, "fail", 3, 4)], [1, 2])
    r = check_lost_writes(h)
    assert r.valid is True
    k = r.keys["s"]
    assert (k.ok_count, k.info_count, k.fail_count) == (2, 1, 1)
    assert k.final_read_size == 2 and not k.recovered


def test_set_info_add_present_is_recovered() -> None:
    h = _set_history([(1, "ok", 0, 1), (3, "info", 2, 3)], [1, 3])
    r = check_lost_writes(h)
    assert r.valid is True
    assert r.recovered == [("s", 3)]


def test_set_lost_add() -> None:
    h = _set_history([(1, "ok", 0, 1), (2, "ok", 1, 2)], [1])
    r = check_lost_writes(h)
    assert r.valid is False
    assert r.lost == [("s", 2)]
    assert r.to_dict()["lost_count"] == 1


def test_set_unexpected_element() -> None:
    r = check_lost_writes(_set_history([(1, "ok", 0, 1)], [1, 99]))
    assert r.valid is False and r.unexpected == [("s", 99)]
    # An add that failed must not show up either.
    r = check_lost_writes(_set_history([(1, "ok", 0, 1), (2, "fail", 1, 2)], [1, 2]))
    assert r.valid is False and r.unexpected == [("s", 2)]


def test_set_duplicated_element() -> None:
    r = check_lost_writes(_set_history([(1, "ok", 0, 1), (2, "ok", 1, 2)], [1, 2, 2]))
    assert r.valid is False and r.duplicated == [("s", 2)]
    assert not r.lost and not r.unexpected


def test_set_uses_last_ok_read_and_spares_concurrent_adds() -> None:
    h = History()
    call(h, 1, "add", "s", 1, 0.0, 1.0)
    call(h, 0, "read_set", "s", None, 2.0, 3.0, out=[])  # an early read
    call(h, 2, "add", "s", 2, 9.0, 12.0)  # acknowledged after the last read began
    call(h, 0, "read_set", "s", None, 10.0, 11.0, out=[1])
    call(h, 3, "read_set", "s", None, 20.0, 21.0, status="fail")
    r = check_lost_writes(h)
    assert r.valid is True
    assert r.keys["s"].unconfirmed == [2]


def test_set_without_final_read_is_unknown() -> None:
    h = History()
    call(h, 1, "add", "s", 1, 0.0, 1.0)
    call(h, 1, "add", "t", 1, 0.0, 1.0)
    call(h, 0, "read_set", "t", None, 2.0, 3.0, out=[1])
    r = check_lost_writes(h)
    assert r.valid == "unknown"
    assert r.keys["s"].valid == "unknown" and r.keys["t"].valid is True


def test_set_keys_are_independent() -> None:
    h = History()
    for key in ("a", "b"):
        call(h, 1, "add", key, 1, 0.0, 1.0)
        call(h, 1, "add", key, 2, 1.0, 2.0)
    call(h, 0, "read_set", "a", None, 5.0, 6.0, out=[1, 2])
    call(h, 0, "read_set", "b", None, 5.0, 6.0, out=[1])
    r = check_lost_writes(h)
    assert r.valid is False and r.lost == [("b", 2)]
    assert r.keys["a"].valid is True


# -- lost writes: register final values ----------------------------------------


def test_acknowledged_write_survives() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "cas", "y", [None, 5], 0.0, 1.0)
    r = check_acknowledged_writes(h, {"x": 2, "y": 5, "z": None})
    assert r.valid is True
    assert r.checked_count == 3
    assert r.keys["x"].last_acknowledged is not None


def test_acknowledged_write_lost() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    r = check_acknowledged_writes(h, {"x": 1})
    assert r.valid is False and r.lost == ["x"]
    assert r.keys["x"].explanations == [2]
    r = check_acknowledged_writes(h, {"x": None})
    assert r.valid is False and r.lost == ["x"]


def test_acknowledged_write_final_explained_by_others() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0)
    call(h, 0, "write", "x", 2, 2.0, 3.0)
    call(h, 1, "write", "x", 3, 2.5, 4.0)  # overlaps the last acknowledged write
    call(h, 2, "write", "x", 4, 0.0, 0.5, status="info")  # may land any time
    call(h, 3, "write", "x", 5, 5.0, 6.0, status="fail")  # did not happen
    for final in (2, 3, 4):
        assert check_acknowledged_writes(h, {"x": final}).valid is True
    for final in (1, 5, None):
        assert check_acknowledged_writes(h, {"x": final}).lost == ["x"]


def test_unacknowledged_key_unexpected_and_unchecked() -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.0, 1.0, status="info")
    call(h, 0, "write", "y", 1, 0.0, 1.0)
    for final in (None, 1):
        assert check_acknowledged_writes(h, {"x": final}).valid is True
    r = check_acknowledged_writes(h, {"x": 7, "w": 3})
    assert r.valid is False and r.unexpected == ["x", "w"]
    assert r.keys["y"].status == "unchecked" and r.unchecked_count == 1


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


# -- history files --------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.25, 1.5)
    call(h, 1, "cas", "x", [1, 2], 2.0, 3.0, status="fail")
    h.invoke(2, "read", "x", None, 4.0)
    h.info(2, "read", "x", None, 5.0, error="timeout")
    call(h, 3, "read_set", "s", None, 6.0, 7.0, out=[1, 2, 3])
    call(h, 4, "write", "y", 5, 8.0, None)
    path = tmp_path / "history.jsonl"
    h.write_jsonl(path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(h)
    assert set(json.loads(lines[0])) == {"index", "process", "type", "f", "key", "value", "time", "error"}
    back = History.read_jsonl(path)
    assert back.ops == h.ops
    assert [p[0].index for p in back.pair()] == [p[0].index for p in h.pair()]
    assert back.by_key().keys() == {"x", "s", "y"}
    assert all(isinstance(op, Op) for op in back)


def test_porcupine_export_shape(tmp_path: Path) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.5, 1.0)
    call(h, 1, "read", "x", None, 1.5, 2.0, out=1)
    call(h, 1, "read", "x", None, 2.5, 3.0, out=None)
    call(h, 2, "cas", "x", [1, 2], 3.5, 4.0)
    call(h, 3, "write", "x", 9, 4.0, 4.5, status="fail")  # dropped
    call(h, 4, "write", "x", 7, 5.0, 6.0, status="info")
    call(h, 5, "read", "x", None, 5.0, None)  # unknown read: dropped
    call(h, 6, "add", "s", 1, 5.0, 6.0)  # not a register op: skipped
    path = tmp_path / "porcupine.json"
    out = h.to_porcupine(path)
    assert json.loads(path.read_text()) == out
    assert len(out) == 5
    for o in out:
        assert set(o) == {"ClientId", "Input", "Call", "Output", "Return"}
        assert set(o["Input"]) == {"Op", "Key", "Value"} and set(o["Output"]) == {"Value"}
        assert isinstance(o["Call"], int) and isinstance(o["Return"], int)
        assert o["Call"] <= o["Return"]
    put, get1, get_missing, cas, info_put = out
    assert put == {
        "ClientId": 0,
        "Input": {"Op": 1, "Key": "x", "Value": "1"},
        "Call": 500_000_000,
        "Output": {"Value": ""},
        "Return": 1_000_000_000,
    }
    assert get1["Input"]["Op"] == 0 and get1["Output"]["Value"] == "1"
    assert get_missing["Output"]["Value"] == ""
    assert cas["Input"] == {"Op": 2, "Key": "x", "Value": "[1, 2]"} and cas["Output"]["Value"] == "ok"
    # An unknown outcome returns after the end of the history.
    assert info_put["Return"] > max(o["Call"] for o in out)
    assert info_put["Return"] > 6_000_000_000
