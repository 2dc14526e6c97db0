"""Linearizability checker against a brute-force oracle and on synthetic histories."""

from __future__ import annotations

import random
from typing import Any

import pytest
from checker_fixtures import lin

from raftstore.chaos.checkers import check_linearizable
from raftstore.chaos.history import History, Op, pair_ops
from raftstore.chaos.synth import generate_register_history, plant_stale_read

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
    h = generate_register_history(600, n_keys=2, n_processes=6, group_size=3, seed=seed, info_rate=0.05, fail_rate=0.02)
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
