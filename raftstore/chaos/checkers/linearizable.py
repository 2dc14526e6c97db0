"""Exact linearizability checking of per-key read/write/cas registers.

Linearizability is compositional (Herlihy & Wing's locality, the
"P-compositionality" Porcupine exploits), so a history over many keys is
linearizable iff every key's sub-history is, and each key is checked alone
against a register whose initial value is None (the key is missing).

Each key is searched with the Wing & Gong algorithm with Lowe's improvements
(the "WGL" search of Porcupine and of Knossos's linear checker):

* call and return entries, ordered by time, sit in a doubly linked list;
* linearizing an op *lifts* its two entries out of the list, backtracking
  *unlifts* them (dancing links, so both are O(1));
* a cache of (set of linearized ops, register state) prunes every
  configuration already explored -- the remaining search only depends on it;
* the search is an explicit stack, never Python recursion; sets of ops are
  Python ints used as bitsets and register values are coded as small ints.

On top of that come exact reductions for indeterminate and read-only ops
(see ``_search``) and, before any search, a near-linear scan for provably
stale reads (``_quick_reject``), which finds the commonest violations
without exhausting the search space -- the one thing WGL is slow at.

Operation semantics:

* ``fail`` ops certainly did not happen and are dropped;
* ``info`` ops, and invokes that never completed, may take effect at any
  point after their invocation or never: they get no return entry at all, so
  nothing ever forces them, and the search succeeds as soon as every op with
  a real return is linearized.  Unknown reads cannot constrain anything and
  are dropped outright;
* an ok read of None means the key was missing;
* an ok cas ``[expected, new]`` requires the register to hold ``expected``.

Real-time order comes from ``Op.time``.  Events with equal times count as
concurrent (calls sort before returns), so a tie can never cause a rejection.

The verdict is exact: True or False is only returned once the search has
proved it, and a search cut short by ``timeout`` says ``"unknown"``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from raftstore.chaos.history import REGISTER_FS, Op, Pair, completion_type, pair_ops

Verdict = Literal[True, False, "unknown"]

READ, WRITE, CAS = 0, 1, 2
_KIND = {"read": READ, "write": WRITE, "cas": CAS}

# Entry markers in the `match` array (non-negative values are return nodes).
_NO_RETURN = -1  # call entry of an info op: it has no return entry
_IS_RETURN = -2  # this entry is itself a return entry

# How many search steps between two looks at the clock.
_CLOCK_EVERY = 4096


@dataclass(slots=True)
class KeyResult:
    """Verdict and search statistics for one key."""

    key: str
    valid: Verdict
    op_count: int  # operations searched (fail ops and unknown reads are dropped)
    ok_count: int
    info_count: int  # info or never completed
    fail_count: int
    steps: int = 0
    cache_size: int = 0
    elapsed: float = 0.0
    # For a non-linearizable key: why; the longest linearization the search
    # found (after a quick rejection: the ops that must precede the culprit,
    # ending with the one that overwrote what it needed); the register value
    # after it; and the ops that could not be placed next, the first one
    # being the op whose return forced the search back.
    reason: str = ""
    linearized: list[Pair] = field(default_factory=list)
    state: Any = None
    unplaced: list[Pair] = field(default_factory=list)

    def explain(self) -> str:
        if self.valid is True:
            return f"key {self.key!r}: linearizable ({self.op_count} ops)"
        if self.valid == "unknown":
            return f"key {self.key!r}: unknown (search cut short after {self.steps} steps)"
        lines = [
            f"key {self.key!r}: NOT linearizable",
            f"  why: {self.reason}",
            f"  longest linearization found: {len(self.linearized)} ops, "
            f"leaving the register at {self.state!r}",
        ]
        if self.linearized:
            lines.append("  its last ops:")
            lines.extend(f"    {describe(p)}" for p in self.linearized[-5:])
        lines.append("  could not place:")
        lines.extend(f"    {describe(p)}" for p in self.unplaced)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "valid": self.valid,
            "op_count": self.op_count,
            "ok_count": self.ok_count,
            "info_count": self.info_count,
            "fail_count": self.fail_count,
            "steps": self.steps,
            "cache_size": self.cache_size,
            "elapsed": self.elapsed,
            "reason": self.reason,
            "linearized": [describe(p) for p in self.linearized],
            "state": self.state,
            "unplaced": [describe(p) for p in self.unplaced],
        }


@dataclass(slots=True)
class LinearizabilityResult:
    """Overall verdict: False if any key is not linearizable, else "unknown" if
    any key could not be decided in time, else True."""

    valid: Verdict
    keys: dict[str, KeyResult]
    failed_keys: list[str]
    unknown_keys: list[str]
    key_count: int
    op_count: int  # operations (invoke + completion pairs) considered
    ignored_count: int  # non-register operations skipped (add, read_set, ...)
    elapsed: float
    timed_out: bool

    def explain(self) -> str:
        head = (
            f"linearizable={self.valid} keys={self.key_count} ops={self.op_count} "
            f"elapsed={self.elapsed:.3f}s"
        )
        bad = [self.keys[k].explain() for k in self.failed_keys]
        if self.unknown_keys:
            bad.append(f"{len(self.unknown_keys)} key(s) undecided: {self.unknown_keys[:10]}")
        return "\n".join([head, *bad])

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "key_count": self.key_count,
            "op_count": self.op_count,
            "ignored_count": self.ignored_count,
            "elapsed": self.elapsed,
            "timed_out": self.timed_out,
            "failed_keys": self.failed_keys,
            "unknown_keys": self.unknown_keys,
            "failures": {k: self.keys[k].to_dict() for k in self.failed_keys},
        }


def describe(pair: Pair) -> str:
    """One-line human form of an operation, e.g. ``p3 write 'x' 5 -> ok [1.20, 1.31]``."""
    inv, comp = pair
    status = completion_type(pair)
    if inv.f == "read" and comp is not None and status == "ok":
        what = f"read {inv.key!r} -> {comp.value!r}"
    else:
        what = f"{inv.f} {inv.key!r} {inv.value!r}"
    end = "inf" if comp is None or status == "info" else f"{comp.time:.6f}"
    return f"p{inv.process} {what} {status} [{inv.time:.6f}, {end}]"


def _freeze(v: Any) -> Any:
    """A hashable stand-in for a value, so lists from JSON can be coded."""
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


class _Problem:
    """One key's operations, integer-coded for the search."""

    __slots__ = ("pairs", "kind", "a", "b", "call", "ret", "values", "ok", "info", "fail")

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
            fv = _freeze(v)
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
            k = _KIND[inv.f]
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


class _Timeout(Exception):
    pass


def _search(p: _Problem, deadline: float | None, result: KeyResult) -> None:
    """WGL search over one key; fills in ``result`` (verdict, stats, explanation).

    Ops with a return ("finite" ops) live in the classic WGL doubly linked
    list of call and return entries; linearizing one lifts its two entries
    out, backtracking puts them back.  The candidates of a configuration are
    the calls before the first return entry left in the list.  Info ops have
    no return: they are candidates once invoked before that first return, and
    the search succeeds as soon as the list is empty, whatever info ops are
    left.

    Exact reductions on top of plain WGL keep histories with many concurrent
    or indeterminate ops tractable:

    * pure ops first: an op that never changes the state wherever it is
      legal (a read, or a cas whose new value is its expected one) and is
      legal now can be moved to the front of any linearization of the
      remaining ops -- every pending op returns after its call, so no
      real-time order is broken.  So once such an op has been tried, the
      configuration it was tried from needs no other alternative.  (A write
      of the current value does not qualify: elsewhere it would change the
      state.)
    * interchangeable unknowns: info ops with the same effect are
      interchangeable once invoked, so they form one class and only the
      earliest-invoked unused op of a class is ever a candidate.
    * subsumption: a configuration is (finite ops done, state, info ops
      used).  Having used fewer info ops only leaves more options, so a
      configuration is pruned when one with the same finite ops and state
      and a subset of its info ops was reached before (the cache maps
      (finite set, state) to the info sets seen).

    Finite ops are numbered in return order, so the linearized ones are
    mostly a prefix: the set is kept as (length of the all-linearized prefix,
    bitset of the rest relative to it).  Both stay small however long the
    history, which keeps every step and cache entry O(concurrency) instead of
    O(history).
    """
    n = len(p.kind)
    entries: list[tuple[float, int, int]] = []
    for i in range(n):
        entries.append((p.call[i], 0, i))
        r = p.ret[i]
        if r is not None:
            entries.append((r, 1, i))
    # Calls sort before returns at equal times: ties are concurrent.  Node
    # numbers follow this order, so "invoked before return node R" is "< R".
    entries.sort()
    m = len(entries)
    head, tail = 0, m + 1
    nxt = [tail] * (m + 2)
    prv = [head] * (m + 2)
    op_of = [-1] * (m + 2)
    match = [_IS_RETURN] * (m + 2)
    kind = [0] * (m + 2)
    arg_a = [0] * (m + 2)
    arg_b = [0] * (m + 2)
    bit = [0] * (m + 2)  # info call nodes: their bit in the info set
    rank = [0] * (m + 2)  # finite call nodes: position of the op in return order
    pure = [False] * (m + 2)
    info_class = [-1] * (m + 2)  # class of an info call node, -1 for finite nodes
    class_of: dict[tuple[int, int, int], int] = {}
    class_nodes: list[list[int]] = []
    class_new: list[int] = []
    call_node = [0] * n
    last = head
    n_info = 0
    n_returned = 0
    for pos, (_, is_ret, i) in enumerate(entries):
        node = pos + 1
        op_of[node] = i
        k, a, b = p.kind[i], p.a[i], p.b[i]
        if is_ret:
            match[call_node[i]] = node
            rank[call_node[i]] = n_returned
            n_returned += 1
        elif p.ret[i] is None:
            effect = (k, a, b)
            c = class_of.get(effect)
            if c is None:
                c = class_of[effect] = len(class_nodes)
                class_nodes.append([])
                class_new.append(a if k == WRITE else b)
            class_nodes[c].append(node)
            info_class[node] = c
            match[node] = _NO_RETURN
            bit[node] = 1 << n_info
            n_info += 1
            kind[node], arg_a[node], arg_b[node] = k, a, b
            continue  # info calls are not in the list
        else:
            call_node[i] = node
            kind[node], arg_a[node], arg_b[node] = k, a, b
            pure[node] = k == READ or (k == CAS and a == b)
        nxt[last], prv[node], last = node, last, node
    nxt[last], prv[tail] = tail, last
    # Info classes that may be linearized in each state: writes always, cas
    # only from its expected value.
    by_state: list[list[int]] = [[] for _ in p.values]
    for (k, a, _), c in class_of.items():
        if k == CAS:
            by_state[a].append(c)
    for (k, _, _), c in class_of.items():
        if k == WRITE:
            for lst in by_state:
                lst.append(c)
    # Earliest-invoked classes first, so a scan can stop at the first class
    # invoked after the first pending return.
    for lst in by_state:
        lst.sort(key=lambda c: class_nodes[c][0])
    class_first = [nodes[0] for nodes in class_nodes]
    used = [0] * len(class_nodes)
    # How many ops not yet linearized need each value (reads of it, cas
    # expecting it).  An info op writing a value nobody needs any more is
    # useless now: the next op after it would have to overwrite it anyway,
    # so any linearization using it also works without it.
    needs = [-1] * (m + 2)
    needed = [0] * len(p.values)
    for node in range(1, m + 1):
        if match[node] >= 0 and kind[node] != WRITE:
            needs[node] = arg_a[node]
            needed[arg_a[node]] += 1
    for nodes in class_nodes:
        for node in nodes:
            if kind[node] != WRITE:
                needs[node] = arg_a[node]
                needed[arg_a[node]] += 1

    # Cache keys pack (prefix length, rest of the finite set, state) in one int.
    span = n_returned + 1
    n_values = len(p.values)
    has_info = bool(class_nodes)
    cache: dict[int, list[int]] = {}  # with info ops: key -> info sets seen
    seen_keys: set[int] = set()  # without info ops
    stack_node: list[int] = []
    stack_state: list[int] = []
    stack_limit: list[int] = []
    stack_j: list[int] = []
    stack_base: list[int] = []
    stack_rest: list[int] = []
    base = 0  # finite ops of rank < base are all linearized
    rest = 0  # bit r: the op of rank base + r is linearized
    lin_i = 0  # info ops linearized
    state = 0
    node = nxt[head]
    limit = tail  # the first return entry in the list, once found
    j = 0  # position in by_state[state] while trying info candidates
    in_info = False
    steps = 0
    clock = _CLOCK_EVERY
    best_depth = -1
    best_lin: list[int] = []
    best_state = 0
    best_pending: list[int] = []
    verdict: Verdict = "unknown"
    try:
        while True:
            steps += 1
            clock -= 1
            if not clock:
                clock = _CLOCK_EVERY
                if deadline is not None and time.monotonic() > deadline:
                    raise _Timeout
            if in_info:
                classes = by_state[state]
                if j >= len(classes):
                    # Nothing more to try: a dead end.
                    depth = len(stack_node)
                    if depth > best_depth:
                        best_depth = depth
                        best_lin = stack_node[:]
                        best_state = state
                        best_pending = _pending(limit, head, nxt, match, op_of, class_nodes, used)
                    dead = True
                else:
                    c = classes[j]
                    if class_first[c] > limit:
                        j = len(classes)
                        continue
                    u = used[c]
                    nodes = class_nodes[c]
                    new = class_new[c]
                    if u == len(nodes) or not needed[new] or nodes[u] > limit:
                        j += 1
                        continue
                    node = nodes[u]
                    nbase, nrest, ni = base, rest, lin_i | bit[node]
                    dead = False
            elif node == tail:
                # No finite op is left; pending info ops may never happen.
                verdict = True
                break
            elif match[node] == _IS_RETURN:
                # The earliest pending return: finite candidates are exhausted,
                # try the info ops invoked before it.
                limit = node
                in_info = True
                j = 0
                continue
            else:
                k = kind[node]
                if k == WRITE:
                    new = arg_a[node]
                elif state != arg_a[node]:
                    node = nxt[node]
                    continue
                elif k == READ:
                    new = state
                else:
                    new = arg_b[node]
                r = rank[node] - base
                if r:
                    nbase, nrest = base, rest | (1 << r)
                else:
                    # The prefix grows past every linearized op that follows.
                    nrest = rest | 1
                    t = (~nrest & (nrest + 1)).bit_length() - 1
                    nbase, nrest = base + t, nrest >> t
                ni = lin_i
                dead = False
            if not dead:
                key = (nrest * span + nbase) * n_values + new
                if has_info:
                    seen = cache.get(key)
                    fresh = True
                    if seen is None:
                        cache[key] = [ni]
                    else:
                        for other in seen:
                            if other & ni == other:
                                fresh = False
                                break
                        if fresh:
                            seen.append(ni)
                else:
                    size = len(seen_keys)
                    seen_keys.add(key)
                    fresh = len(seen_keys) != size
                if fresh:
                    stack_node.append(node)
                    stack_state.append(state)
                    stack_limit.append(limit)
                    stack_j.append(j)
                    stack_base.append(base)
                    stack_rest.append(rest)
                    base, rest, lin_i = nbase, nrest, ni
                    state = new
                    if needs[node] >= 0:
                        needed[needs[node]] -= 1
                    if in_info:
                        used[info_class[node]] += 1
                    else:
                        # Lift the call entry and its return entry.
                        a = prv[node]
                        z = nxt[node]
                        nxt[a] = z
                        prv[z] = a
                        mt = match[node]
                        a = prv[mt]
                        z = nxt[mt]
                        nxt[a] = z
                        prv[z] = a
                    node = nxt[head]
                    in_info = False
                    continue
                if in_info:
                    j += 1
                    continue
                if not pure[node]:
                    node = nxt[node]
                    continue
                # A legal pure op whose successor configuration is subsumed by
                # one that failed: this configuration fails too.
            # Backtrack.  Popping a pure op proves the configuration below it
            # failed as a whole, so keep popping until an impure op, then try
            # the alternatives after it.
            while stack_node:
                node = stack_node.pop()
                state = stack_state.pop()
                limit = stack_limit.pop()
                j = stack_j.pop()
                base = stack_base.pop()
                rest = stack_rest.pop()
                if needs[node] >= 0:
                    needed[needs[node]] += 1
                c = info_class[node]
                if c >= 0:
                    used[c] -= 1
                    lin_i ^= bit[node]
                    in_info = True
                    j += 1
                    break
                # Unlift in the reverse order of the lift.
                mt = match[node]
                nxt[prv[mt]] = mt
                prv[nxt[mt]] = mt
                nxt[prv[node]] = node
                prv[nxt[node]] = node
                if not pure[node]:
                    in_info = False
                    node = nxt[node]
                    break
            else:
                verdict = False
                break
    except _Timeout:
        verdict = "unknown"

    result.valid = verdict
    result.steps = steps
    result.cache_size = sum(len(v) for v in cache.values()) + len(seen_keys)
    if verdict is False:
        result.reason = "no order of the ops explains the results (search exhausted)"
        result.linearized = [p.pairs[op_of[x]] for x in best_lin]
        result.state = p.values[best_state]
        result.unplaced = [p.pairs[op_of[x]] for x in best_pending]


def _pending(
    limit: int,
    head: int,
    nxt: list[int],
    match: list[int],
    op_of: list[int],
    class_nodes: list[list[int]],
    used: list[int],
) -> list[int]:
    """Nodes of the ops left unplaced at a dead end: the op whose return
    ``limit`` is, then the other finite candidates, then the info ops invoked
    before it."""
    out = [limit]
    c = nxt[head]
    while c != limit:
        if match[c] != _IS_RETURN and op_of[c] != op_of[limit]:
            out.append(c)
        c = nxt[c]
    for nodes, u in zip(class_nodes, used, strict=True):
        out.extend(x for x in nodes[u:] if x < limit)
    return out


def _quick_reject(p: _Problem) -> tuple[int, int | None, int | None] | None:
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
        end = last_end.get(need)
        if end is None:
            return i, None, None
        if end == inf:
            continue
        barrier = top if top is not None and top[1] != need else runner_up
        if barrier is not None and barrier[0] > end:
            return i, barrier[2], last_writer[need]
    return None


def check_key(
    key: str, pairs: list[Pair], *, deadline: float | None = None, quick_reject: bool = True
) -> KeyResult:
    """Check one key's (invoke, completion) pairs; ``deadline`` is a monotonic time."""
    started = time.monotonic()
    prob = _Problem(pairs)
    result = KeyResult(
        key=key,
        valid="unknown",
        op_count=len(prob.kind),
        ok_count=prob.ok,
        info_count=prob.info,
        fail_count=prob.fail,
    )
    hit = _quick_reject(prob) if quick_reject else None
    if hit is not None:
        culprit, barrier, writer = hit
        need = prob.values[prob.a[culprit]]
        result.valid = False
        result.unplaced = [prob.pairs[culprit]]
        if barrier is None:
            result.reason = f"{describe(prob.pairs[culprit])} needs {need!r}, which nothing ever wrote"
            result.state = None
        else:
            b = prob.pairs[barrier]
            result.reason = (
                f"{describe(prob.pairs[culprit])} needs {need!r}, but {describe(b)} "
                f"overwrote it after every write of {need!r} had completed and before it began"
            )
            result.linearized = ([] if writer is None else [prob.pairs[writer]]) + [b]
            result.state = prob.values[prob.b[barrier] if prob.kind[barrier] == CAS else prob.a[barrier]]
    elif deadline is None or time.monotonic() < deadline:
        _search(prob, deadline, result)
    result.elapsed = time.monotonic() - started
    return result


def check_linearizable(
    history: Iterable[Op],
    *,
    timeout: float | None = None,
    keys: Iterable[str] | None = None,
    quick_reject: bool = True,
) -> LinearizabilityResult:
    """Check that every key of ``history`` behaves as a linearizable register.

    ``history`` is a list of :class:`Op` events (or a History); ops other than
    read/write/cas are ignored.  ``keys`` restricts the check to those keys.
    ``timeout`` (seconds, for the whole check) turns undecided keys into
    ``"unknown"`` -- never into a guess.  ``quick_reject`` first looks for
    provably stale reads in near-linear time (sound, so it never changes a
    verdict, only how fast a violation is found); keys still unchecked at the
    deadline get this quick look too.  Turn it off to exercise the full search.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    wanted = None if keys is None else set(keys)
    groups: dict[str, list[Pair]] = {}
    ignored = 0
    op_count = 0
    for pair in pair_ops(history):
        inv = pair[0]
        if inv.f not in REGISTER_FS:
            ignored += 1
            continue
        if wanted is not None and inv.key not in wanted:
            continue
        groups.setdefault(inv.key, []).append(pair)
        op_count += 1

    done: dict[str, KeyResult] = {}
    # Smallest keys first: with a timeout, one hard key should not leave the
    # many easy ones undecided.
    for key in sorted(groups, key=lambda k: len(groups[k])):
        # Past the deadline check_key only runs the cheap quick rejection.
        done[key] = check_key(key, groups[key], deadline=deadline, quick_reject=quick_reject)
    results = {key: done[key] for key in groups}
    timed_out = any(r.valid == "unknown" for r in results.values())

    failed = [k for k, r in results.items() if r.valid is False]
    unknown = [k for k, r in results.items() if r.valid == "unknown"]
    verdict: Verdict = False if failed else ("unknown" if unknown else True)
    return LinearizabilityResult(
        valid=verdict,
        keys=results,
        failed_keys=failed,
        unknown_keys=unknown,
        key_count=len(groups),
        op_count=op_count,
        ignored_count=ignored,
        elapsed=time.monotonic() - started,
        timed_out=timed_out,
    )
