"""One key's register operations, integer-coded for the linearizability search.

:class:`RegisterProblem` turns (invoke, completion) pairs into parallel
columns of small ints (kind, arguments, call and return times), dropping the
ops that cannot matter to any linearization; :func:`find_stale_read` is the
near-linear scan for provably stale reads that runs before any search.
Pure and single-threaded: no I/O, no shared state.
"""

from __future__ import annotations

from typing import Any

from raftstore.chaos.history import Pair, completion_type

READ, WRITE, CAS = 0, 1, 2
KIND = {"read": READ, "write": WRITE, "cas": CAS}


def freeze(v: Any) -> Any:
    """A hashable stand-in for a value, so lists from JSON can be coded."""
    if isinstance(v, list | tuple):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    return v


class RegisterProblem:
    """One key's operations, integer-coded for the search."""

    __slots__ = ("a", "b", "call", "fail", "info", "kind", "ok", "pairs", "ret", "values")

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs: list[Pair] = []
        self.kind: list[int] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.call: list[float] = []
        self.ret: list[float | None] = []  # None: no return (info)
        self.values: list[Any] = [None]
        self.ok = self.info = self.fail = 0
        codes: dict[Any, int] = {None: 0}

        def code(v: Any) -> int:
            fv = freeze(v)
            c = codes.get(fv)
            if c is None:
                c = codes[fv] = len(self.values)
                self.values.append(v)
            return c

        for pair in pairs:
            inv, comp = pair
            status = completion_type(pair)
            if status == "fail":
                self.fail += 1
                continue
            if status == "ok":
                self.ok += 1
            else:
                self.info += 1
                if inv.f == "read":
                    continue  # an unknown read has no effect and no result
            k = KIND[inv.f]
            if k == READ:
                a, b = code(comp.value), 0  # type: ignore[union-attr]
            elif k == WRITE:
                a, b = code(inv.value), 0
            else:
                if not isinstance(inv.value, list | tuple) or len(inv.value) != 2:
                    raise ValueError(f"cas value must be [expected, new]: {inv}")
                a, b = code(inv.value[0]), code(inv.value[1])
            self.pairs.append(pair)
            self.kind.append(k)
            self.a.append(a)
            self.b.append(b)
            self.call.append(inv.time)
            self.ret.append(comp.time if status == "ok" else None)  # type: ignore[union-attr]
        self._drop_invisible_unknowns()

    def _drop_invisible_unknowns(self) -> None:
        """Drop info ops that cannot matter to any linearization.

        * an info cas [v, v] changes nothing even if it happens;
        * an info op writing v (write v, or cas to v) invoked at t: if every
          op that observes v (a read of v, a cas expecting v) returned before
          t, nothing can observe its effect -- the register leaves v again
          with the next write before any read or cas -- so it may as well
          not happen, which info ops may.

        Dropping a cas can leave its expected value unobserved, hence the loop.
        """
        while True:
            # value -> latest return of an op observing it (info cas: never returns)
            seen_until: dict[int, float] = {}
            for k, a, r in zip(self.kind, self.a, self.ret, strict=True):
                if k != WRITE:
                    t = float("inf") if r is None else r
                    if t > seen_until.get(a, float("-inf")):
                        seen_until[a] = t
            keep = []
            for i, (k, a, b, r) in enumerate(zip(self.kind, self.a, self.b, self.ret, strict=True)):
                if r is None:
                    if k == CAS and a == b:
                        continue
                    if seen_until.get(a if k == WRITE else b, float("-inf")) < self.call[i]:
                        continue
                keep.append(i)
            if len(keep) == len(self.kind):
                return
            for name in ("pairs", "kind", "a", "b", "call", "ret"):
                column = getattr(self, name)
                setattr(self, name, [column[i] for i in keep])


def find_stale_read(p: RegisterProblem) -> tuple[int, int | None, int | None] | None:
    """Find a read or ok cas that provably cannot see the value it needs.

    Cheap (sorting plus one sweep) and sound, so a hit needs no search:

    * it needs a value nothing ever wrote; or
    * it needs v, yet some acknowledged write/cas B of another value began
      after every op that could write v had completed (the initial None
      counts as written at the start), and completed before it began: every
      linearization places all writers of v, then B, then it, with no writer
      of v in between.  This is the classic stale read.

    Returns (culprit, B or None, last writer of v or None) as op indices.
    """
    inf = float("inf")
    last_end: dict[int, float] = {0: -inf}  # value -> latest return of an op writing it
    last_writer: dict[int, int | None] = {0: None}
    barriers: list[tuple[float, float, int, int]] = []  # (return, invoke, value, op)
    observers: list[tuple[float, int]] = []  # (invoke, op) of ok reads and ok cas
    for i, (k, a, b, r) in enumerate(zip(p.kind, p.a, p.b, p.ret, strict=True)):
        if k != WRITE and r is not None:
            observers.append((p.call[i], i))
        if k == READ:
            continue
        v = a if k == WRITE else b
        end = inf if r is None else r
        if end > last_end.get(v, -inf):
            last_end[v] = end
            last_writer[v] = i
        if r is not None:
            barriers.append((r, p.call[i], v, i))
    barriers.sort()
    observers.sort()
    # Among barriers returned so far: the latest-invoked one, and the
    # latest-invoked one whose value differs from it.
    top: tuple[float, int, int] | None = None  # (invoke, value, op)
    runner_up: tuple[float, int, int] | None = None
    nb = 0
    for start, i in observers:
        while nb < len(barriers) and barriers[nb][0] < start:
            _, inv, v, op = barriers[nb]
            nb += 1
            if top is None:
                top = (inv, v, op)
            elif v == top[1]:
                if inv > top[0]:
                    top = (inv, v, op)
            elif inv > top[0]:
                top, runner_up = (inv, v, op), top
            elif runner_up is None or inv > runner_up[0]:
                runner_up = (inv, v, op)
        need = p.a[i]
        need_end = last_end.get(need)
        if need_end is None:
            return i, None, None
        if need_end == inf:
            continue
        barrier = top if top is not None and top[1] != need else runner_up
        if barrier is not None and barrier[0] > need_end:
            return i, barrier[2], last_writer[need]
    return None
