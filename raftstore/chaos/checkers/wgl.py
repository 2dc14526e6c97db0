"""The Wing & Gong / Lowe (WGL) search for one key's register history.

:func:`search` decides whether a :class:`~.linearizable_problem.RegisterProblem`
has a linearization and fills in a :class:`~.linearizable_results.KeyResult`.
The search is an explicit stack over dancing-links lists (see
:mod:`.linearizable` for the overview); it is pure, single-threaded and only
looks at the clock, every few thousand steps, to honour a deadline.
"""

from __future__ import annotations

import time

from raftstore.chaos.checkers.linearizable_problem import (
    CAS,
    READ,
    WRITE,
    RegisterProblem,
)
from raftstore.chaos.checkers.linearizable_results import KeyResult, Verdict

# Entry markers in the `match` array (non-negative values are return nodes).
_NO_RETURN = -1  # call entry of an info op: it has no return entry
_IS_RETURN = -2  # this entry is itself a return entry

# How many search steps between two looks at the clock.
_CLOCK_EVERY = 4096


class _Timeout(Exception):
    pass


def search(p: RegisterProblem, deadline: float | None, result: KeyResult) -> None:
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
