"""Partition shapes ("grudges") for the nemeses, as pure functions.

A grudge maps each node to the set of nodes whose messages it drops, as in
Jepsen.  The builders here are functions of the node list and a seeded RNG
(no I/O, no shared state), so they are unit-tested without a cluster and can
serve any lab that cuts links between named nodes; turning a grudge into
real dropped messages is the fault layer's job
(:class:`~raftstore.chaos.faults.Faults` for raftstore).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

Grudge = dict[str, set[str]]


def complete_grudge(components: Sequence[Sequence[str]]) -> Grudge:
    """Every node drops messages from every node outside its own component."""
    all_nodes = [n for comp in components for n in comp]
    grudge: Grudge = {}
    for comp in components:
        inside = set(comp)
        for n in comp:
            grudge[n] = {m for m in all_nodes if m not in inside}
    return grudge


def bisect(nodes: Sequence[str]) -> list[list[str]]:
    """Split in two, the smaller half first (Jepsen's ``bisect``)."""
    k = len(nodes) // 2
    return [list(nodes[:k]), list(nodes[k:])]


def halves(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """Random halves: shuffle, then bisect (minority first)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return bisect(shuffled)


def isolate(node: str, nodes: Sequence[str]) -> list[list[str]]:
    """``node`` alone against the rest."""
    if node not in nodes:
        raise ValueError(f"{node!r} is not one of {list(nodes)}")
    return [[node], [n for n in nodes if n != node]]


def majority(n: int) -> int:
    return n // 2 + 1


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Jepsen's majorities ring.

    The nodes are shuffled onto a ring; each window of ``majority(n)``
    consecutive nodes is the majority its middle node can hear from, and the
    middle node drops everything from the others.  Every node sees a
    majority (itself included) and no two nodes see the same one.  With five
    nodes each hears its two ring neighbours; with three each hears exactly
    one other node and the cuts are one-way (a hears c but not b, b hears a
    but not c, c hears b but not a).
    """
    ring = list(nodes)
    rng.shuffle(ring)
    n = len(ring)
    if n < 3:
        return {x: set() for x in ring}
    m = majority(n)
    everyone = set(ring)
    grudge: Grudge = {}
    for i in range(n):
        window = [ring[(i + j) % n] for j in range(m)]
        centre = window[m // 2]
        grudge[centre] = everyone - set(window)
    return grudge


def bridge(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Two halves that cannot talk to each other, plus one bridge node that
    talks to both (Jepsen's ``bridge``): for 5 nodes 2 | 1 | 2, for 3 nodes
    1 | 1 | 1.  The bridge node holds no grudge and nobody holds one against it.
    """
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    k = len(shuffled) // 2
    left, middle, right = shuffled[:k], shuffled[k], shuffled[k + 1 :]
    if len(shuffled) % 2 == 0:
        # Even: the bridge comes out of the larger right side.
        left, middle, right = shuffled[: k - 1], shuffled[k - 1], shuffled[k:]
    grudge = complete_grudge([left, right])
    grudge[middle] = set()
    return grudge


def bridge_of(grudge: Grudge) -> str | None:
    """The node of a bridge grudge that everyone still hears from."""
    for n, g in grudge.items():
        if not g and all(n not in other for other in grudge.values()):
            return n
    return None


def visible(grudge: Grudge, node: str, nodes: Sequence[str]) -> set[str]:
    """The nodes whose messages ``node`` receives (itself included)."""
    return {m for m in nodes if m not in grudge.get(node, set())}


def connected_both_ways(grudge: Grudge, a: str, b: str) -> bool:
    return b not in grudge.get(a, set()) and a not in grudge.get(b, set())


def grudge_text(grudge: Grudge) -> str:
    cut = sorted((src, dst) for dst, srcs in grudge.items() for src in srcs)
    if not cut:
        return "no cuts"
    pairs = {(a, b) for a, b in cut}
    seen: set[tuple[str, str]] = set()
    parts = []
    for a, b in cut:
        if (a, b) in seen:
            continue
        if (b, a) in pairs:
            seen.add((b, a))
            parts.append(f"{a}<x>{b}")
        else:
            parts.append(f"{a}-x>{b}")
        seen.add((a, b))
    return " ".join(parts)


def plan_partition(
    name: str, nodes: Sequence[str], rng: random.Random, leader: str | None = None
) -> tuple[Grudge, list[str], str]:
    """The grudge, targets and description of partition nemesis ``name``.

    ``leader`` is only used (and needed) by ``isolate-leader``; the caller
    looks it up, since that is I/O.  Draws from ``rng`` exactly as the
    nemesis always has, so a seed replays the same partitions.
    """
    nodes = list(nodes)
    if name == "partition-halves":
        comps = halves(nodes, rng)
        return complete_grudge(comps), comps[0], " | ".join(",".join(c) for c in comps)
    if name == "isolate-leader":
        if leader is None:
            raise ValueError("isolate-leader needs the leader")
        comps = isolate(leader, nodes)
        return complete_grudge(comps), [leader], f"{leader} | {','.join(comps[1])}"
    if name == "majorities-ring":
        grudge = majorities_ring(nodes, rng)
        return grudge, nodes, "ring " + grudge_text(grudge)
    if name == "bridge":
        grudge = bridge(nodes, rng)
        b = bridge_of(grudge)
        return grudge, [b] if b else [], f"bridge {b}: " + grudge_text(grudge)
    raise ValueError(f"not a partition nemesis: {name!r}")
