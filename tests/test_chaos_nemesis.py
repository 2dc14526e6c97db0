"""Pure logic of the consensus lab's nemeses: partition shapes and scheduling."""

from __future__ import annotations

import itertools
import random

import pytest

from raftstore.chaos.faults import drop_sets, union_grudges
from raftstore.chaos.nemesis import (
    NEMESES,
    bridge,
    bridge_of,
    complete_grudge,
    connected_both_ways,
    default_hold,
    grudge_text,
    halves,
    isolate,
    majorities_ring,
    majority,
    parse_nemeses,
    plan_schedule,
    visible,
)

THREE = ["m0", "m1", "m2"]
FIVE = ["n1", "n2", "n3", "n4", "n5"]


def components_of(grudge: dict[str, set[str]], nodes: list[str]) -> list[set[str]]:
    """Groups of nodes that talk both ways to each other (for complete grudges)."""
    groups: list[set[str]] = []
    for n in nodes:
        for g in groups:
            if all(connected_both_ways(grudge, n, m) for m in g):
                g.add(n)
                break
        else:
            groups.append({n})
    return groups


# ---------------------------------------------------------------- halves


@pytest.mark.parametrize("nodes", [THREE, FIVE])
@pytest.mark.parametrize("seed", range(20))
def test_halves_split_into_minority_and_majority(nodes: list[str], seed: int) -> None:
    comps = halves(nodes, random.Random(seed))
    assert len(comps) == 2
    small, big = comps
    assert len(small) == len(nodes) // 2 and len(big) == len(nodes) - len(nodes) // 2
    assert len(big) >= majority(len(nodes)) > len(small)
    assert sorted(small + big) == sorted(nodes)
    grudge = complete_grudge(comps)
    for a, b in itertools.product(nodes, nodes):
        same = (a in small) == (b in small)
        # Inside a half everything flows; across halves nothing, either way.
        assert (b in grudge[a]) == (not same), (a, b, grudge)
    assert [set(c) for c in comps] == components_of(grudge, small + big)


def test_halves_are_random_but_seeded() -> None:
    shapes = {tuple(halves(FIVE, random.Random(s))[0]) for s in range(40)}
    assert len(shapes) > 5
    assert halves(FIVE, random.Random(7)) == halves(FIVE, random.Random(7))


@pytest.mark.parametrize("nodes", [THREE, FIVE])
def test_isolate_cuts_one_node_off_both_ways(nodes: list[str]) -> None:
    target = nodes[1]
    grudge = complete_grudge(isolate(target, nodes))
    assert grudge[target] == set(nodes) - {target}
    for n in nodes:
        if n != target:
            assert grudge[n] == {target}
            assert visible(grudge, n, nodes) == set(nodes) - {target}
    assert visible(grudge, target, nodes) == {target}
    with pytest.raises(ValueError):
        isolate("nope", nodes)


# ---------------------------------------------------------------- majorities ring


@pytest.mark.parametrize("nodes", [THREE, FIVE])
@pytest.mark.parametrize("seed", range(20))
def test_majorities_ring_every_node_sees_a_distinct_majority(nodes: list[str], seed: int) -> None:
    grudge = majorities_ring(nodes, random.Random(seed))
    assert set(grudge) == set(nodes)
    seen = [frozenset(visible(grudge, n, nodes)) for n in nodes]
    m = majority(len(nodes))
    for n, v in zip(nodes, seen):
        assert n in v
        assert len(v) == m, (n, v)
    assert len(set(seen)) == len(nodes), "two nodes see the same majority"


def test_majorities_ring_five_nodes_hear_their_two_ring_neighbours() -> None:
    grudge = majorities_ring(FIVE, random.Random(3))
    # Reconstruct the ring: each node hears exactly two others, and the
    # "hears" relation is symmetric for five nodes (a ring of neighbours).
    for n in FIVE:
        others = visible(grudge, n, FIVE) - {n}
        assert len(others) == 2
        for o in others:
            assert n in visible(grudge, o, FIVE)
    # The neighbour graph is one cycle through all five nodes.
    start = FIVE[0]
    prev, cur, walk = None, start, [start]
    while True:
        nxt = next(o for o in sorted(visible(grudge, cur, FIVE) - {cur}) if o != prev)
        if nxt == start:
            break
        walk.append(nxt)
        prev, cur = cur, nxt
    assert sorted(walk) == sorted(FIVE)


def test_majorities_ring_three_nodes_is_a_one_way_cycle() -> None:
    grudge = majorities_ring(THREE, random.Random(0))
    # Each node drops exactly one peer, and nobody is dropped by two nodes.
    assert all(len(g) == 1 for g in grudge.values())
    dropped = [next(iter(g)) for g in grudge.values()]
    assert sorted(dropped) == sorted(THREE)
    for a, g in grudge.items():
        b = next(iter(g))
        # One-way: b does not drop a (b -> a is cut, a -> b flows).
        assert a not in grudge[b]


# ---------------------------------------------------------------- bridge


@pytest.mark.parametrize("nodes", [THREE, FIVE])
@pytest.mark.parametrize("seed", range(20))
def test_bridge_keeps_one_node_connected_to_both_halves(nodes: list[str], seed: int) -> None:
    grudge = bridge(nodes, random.Random(seed))
    b = bridge_of(grudge)
    assert b is not None
    assert grudge[b] == set()
    assert all(b not in g for g in grudge.values())
    rest = [n for n in nodes if n != b]
    comps = components_of({n: grudge[n] for n in rest}, rest)
    assert len(comps) == 2
    assert sorted(len(c) for c in comps) == [len(rest) // 2, len(rest) - len(rest) // 2]
    left, right = comps
    for a, c in itertools.product(left, right):
        assert c in grudge[a] and a in grudge[c]
    # The bridge sees everyone, and with it each half holds a majority of... at most one side
    assert visible(grudge, b, nodes) == set(nodes)
    for n in rest:
        side = left if n in left else right
        assert visible(grudge, n, nodes) == side | {b}


def test_bridge_three_nodes_is_one_one_one() -> None:
    grudge = bridge(THREE, random.Random(1))
    b = bridge_of(grudge)
    a, c = [n for n in THREE if n != b]
    assert grudge[a] == {c} and grudge[c] == {a}
    assert "<x>" in grudge_text(grudge)


# ---------------------------------------------------------------- grudge -> drop sets


def test_drop_sets_realise_the_grudge_at_both_ends() -> None:
    grudge = {"m0": {"m1"}}  # m0 drops messages from m1: m1 -> m0 is cut, one way
    sets = drop_sets(grudge, THREE)
    assert sets["m0"] == ([], ["m1"])
    assert sets["m1"] == (["m0"], [])
    assert sets["m2"] == ([], [])
    both = drop_sets(complete_grudge(isolate("m2", THREE)), THREE)
    assert both["m2"] == (["m0", "m1"], ["m0", "m1"])
    assert both["m0"] == (["m2"], ["m2"])


def test_union_of_grudges() -> None:
    u = union_grudges([{"a": {"b"}}, {"a": {"c"}, "b": {"a"}}])
    assert u == {"a": {"b", "c"}, "b": {"a"}}


# ---------------------------------------------------------------- names


def test_parse_nemeses() -> None:
    assert parse_nemeses("leader-kill,partition-halves") == ["leader-kill", "partition-halves"]
    assert parse_nemeses("kill-leader, partition-leader,ring,leader-kill") == [
        "leader-kill",
        "isolate-leader",
        "majorities-ring",
    ]
    assert parse_nemeses("all") == list(NEMESES)
    assert parse_nemeses("none") == [] == parse_nemeses("")
    with pytest.raises(ValueError) as ei:
        parse_nemeses("leader-kill,partiton-halves")
    msg = str(ei.value)
    assert "\n" not in msg and "partiton-halves" in msg
    for name in ("kill", "leader-kill", "pause", "partition-halves", "isolate-leader", "majorities-ring", "bridge"):
        assert name in msg


# ---------------------------------------------------------------- schedule


def test_schedule_one_nemesis_every_interval() -> None:
    plan = plan_schedule(["leader-kill"], 60, 5, rng=random.Random(1))
    starts = [p.start for p in plan]
    assert len(plan) == 12 - 1 or len(plan) == 12  # the last one must stop before the end
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(4.0 <= g <= 6.0 for g in gaps), gaps
    assert abs(sum(gaps) / len(gaps) - 5.0) < 0.3
    for p in plan:
        assert p.stop - p.start == pytest.approx(default_hold(5, 1))
        assert p.stop <= 60 - 1.0
    assert starts[0] == 1.0


def test_schedule_staggers_nemeses_without_overlap() -> None:
    plan = plan_schedule(["leader-kill", "partition-halves"], 60, 5, rng=random.Random(2))
    kills = [p for p in plan if p.nemesis == "leader-kill"]
    parts = [p for p in plan if p.nemesis == "partition-halves"]
    assert len(kills) >= 10 and len(parts) >= 10
    # About every 5 s each, interleaved, and (with the default hold) never overlapping.
    ordered = sorted(plan, key=lambda p: p.start)
    assert [p.nemesis for p in ordered[:4]] == ["leader-kill", "partition-halves"] * 2
    for a, b in zip(ordered, ordered[1:]):
        assert a.stop <= b.start, (a, b)
    assert plan == plan_schedule(["leader-kill", "partition-halves"], 60, 5, rng=random.Random(2))
    assert plan != plan_schedule(["leader-kill", "partition-halves"], 60, 5, rng=random.Random(3))


def test_schedule_hold_is_clamped_and_validated() -> None:
    plan = plan_schedule(["pause"], 30, 2, hold=10, rng=random.Random(0))
    for a, b in zip(plan, plan[1:]):
        assert a.stop <= b.start
    assert plan_schedule([], 30, 2) == []
    with pytest.raises(ValueError):
        plan_schedule(["pause"], 30, 0)
    assert plan_schedule(["pause"], 2, 5) == []  # nothing fits before the cooldown
