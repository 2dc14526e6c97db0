"""Exactly-once bookkeeping: one session per client, results by sequence number.

A client numbers its writes (``seq``) and says with each which is its lowest
unfinished one (``first_incomplete``). The store applies a seq once, keeps its
result (or error) until the client moves ``first_incomplete`` past it, and
answers a retry from what it kept. Sessions are evicted least recently used
first, by a counter of calls rather than by time, so every member evicts the
same ones.

The store owns the session table (``OrderedDict[str, Session]``, LRU first)
and the call counter; these functions implement the rules on top of them.
Sessions are pickled with every snapshot, so ``Session`` stays a plain
dataclass.

Concurrency model: pure functions over the table passed in; the caller
serialises them with every other store mutation.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from .ops import is_int
from .types import MAX_INT64, InvalidArgumentError, MVCCError, SessionExpiredError

MAX_CLIENT_ID_LEN: Final[int] = 1024


@dataclass(slots=True)
class Session:
    first_incomplete: int
    results: dict[int, dict[str, Any]]
    last_used: int
    # Min-heap of the seqs in ``results``: pruning below first_incomplete is
    # O(log n) per dropped result instead of a scan of every stored result
    # (a client with 64 writes in flight made that scan the hot spot).
    order: list[int] = field(default_factory=list)


def find(sessions: OrderedDict[str, Session], client_id: str, seq: int, first_incomplete: int) -> Session | None:
    """Check a request's session fields and return the client's session, if any.

    Raises ``invalid_argument`` for malformed fields and ``session_expired``
    for a seq whose result the client already let go of. Changes nothing.
    """
    if type(client_id) is not str or not client_id or len(client_id) > MAX_CLIENT_ID_LEN:
        raise InvalidArgumentError(f"client_id must be a non-empty str of at most {MAX_CLIENT_ID_LEN} chars")
    if not is_int(seq) or seq < 0 or seq > MAX_INT64:
        raise InvalidArgumentError("seq must be a non-negative int", field="seq")
    if not is_int(first_incomplete) or first_incomplete < 0:
        raise InvalidArgumentError("first_incomplete must be a non-negative int", field="first_incomplete")
    if first_incomplete > seq:
        # The request itself is still incomplete, so it bounds first_incomplete.
        raise InvalidArgumentError(
            f"first_incomplete {first_incomplete} is above seq {seq}",
            field="first_incomplete",
        )
    sess = sessions.get(client_id)
    if sess is not None and seq < sess.first_incomplete:
        raise SessionExpiredError(
            f"result of seq {seq} for client {client_id!r} was already discarded "
            f"(client acknowledged everything below {sess.first_incomplete})",
            client_id=client_id,
            seq=seq,
            first_incomplete=sess.first_incomplete,
        )
    return sess


def touch(
    sessions: OrderedDict[str, Session],
    sess: Session | None,
    *,
    max_sessions: int,
    tick: int,
    client_id: str,
    seq: int,
    first_incomplete: int,
) -> tuple[Session, dict[str, Any] | None]:
    """Record a call of ``client_id`` (from ``find``) at LRU clock ``tick``.

    Creates the session (evicting the least recently used beyond
    ``max_sessions``) or refreshes it and drops results below the new
    ``first_incomplete``. Returns the session and, for a retry of an applied
    seq, a copy of its result marked ``"duplicate": True``; a retry of a
    failed seq raises the stored error again, also marked as a duplicate.
    """
    if sess is None:
        sess = Session(first_incomplete, {}, tick, [])
        sessions[client_id] = sess
        while len(sessions) > max_sessions:
            sessions.popitem(last=False)
        return sess, None
    sessions.move_to_end(client_id)
    sess.last_used = tick
    if first_incomplete > sess.first_incomplete:
        sess.first_incomplete = first_incomplete
        order = sess.order
        while order and order[0] < first_incomplete:
            sess.results.pop(heapq.heappop(order), None)
    stored = sess.results.get(seq)
    if stored is None:
        return sess, None
    if "error" in stored:
        raise MVCCError.from_dict({**stored["error"], "duplicate": True})
    dup = dict(stored)
    dup["duplicate"] = True
    return sess, dup


def remember(sess: Session, seq: int, outcome: dict[str, Any]) -> None:
    """Keep the outcome of ``seq``: its result dict, or ``{"error": {...}}``."""
    sess.results[seq] = outcome
    heapq.heappush(sess.order, seq)
