"""What a failed attempt means for the history: ``fail`` or ``info``.

The workload drives each attempt itself (one member at a time, following
``not_leader`` hints, retrying until the op's deadline) so it knows whether
an attempt could have taken effect:

* definite -- the member answered and the op did not happen: ``not_leader``
  (raftstore checks leadership before proposing and pysyncobj only rejects
  commands it never appended), ``overloaded`` (the proposal was refused),
  ``invalid_argument`` and every other state-machine error, and a connection
  that was *refused* (nothing was sent);
* unknown -- ``timeout`` and ``leader_changed`` (the server says
  ``outcome: unknown``), a request timeout or a connection lost after
  sending, ``session_expired`` and ``internal``.

Writes carry ``(client id, seq)`` and every retry of one op reuses its seq,
so the state machine applies it at most once.  At the end a write is ``ok``
if some attempt succeeded, ``info`` if any attempt's outcome was unknown,
else ``fail``.  Reads never change anything, so a read that did not succeed
is always ``fail``.

Pure: these functions only look at an exception and a few constants, so
they are tested without a cluster and shared by every executor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from raftstore.client import RaftstoreError, Unavailable

#: Error codes after which another attempt may succeed (and the op did not happen).
DEFINITE_RETRY_CODES = frozenset({"not_leader", "overloaded"})
#: Error codes whose outcome is unknown (the op may have happened).
UNKNOWN_CODES = frozenset({"timeout", "leader_changed", "unavailable", "session_expired", "internal"})
#: Unknown codes worth another attempt (with the same seq, so at most once).
UNKNOWN_RETRY_CODES = frozenset({"timeout", "leader_changed", "unavailable"})
WRITE_FS = frozenset({"write", "cas", "add"})


@dataclass(frozen=True, slots=True)
class AttemptError:
    """What one failed attempt tells us."""

    code: str
    message: str
    definite: bool  # True: this attempt certainly had no effect
    retry: bool  # another attempt (same seq) makes sense
    hint: str | None = None  # the leader's endpoint, if the member named one


def classify_attempt(exc: BaseException) -> AttemptError:
    """Map one attempt's exception (from ``client.call(..., endpoint=...)``)."""
    if isinstance(exc, Unavailable):
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return AttemptError("connection_refused", str(cause), definite=True, retry=True)
        return AttemptError("unavailable", exc.message, definite=False, retry=True)
    if isinstance(exc, RaftstoreError):
        hint = exc.details.get("leader")
        hint = hint if isinstance(hint, str) else None
        if exc.code in DEFINITE_RETRY_CODES:
            return AttemptError(exc.code, exc.message, definite=True, retry=True, hint=hint)
        if exc.code in UNKNOWN_CODES or exc.details.get("outcome") == "unknown":
            return AttemptError(exc.code, exc.message, definite=False, retry=exc.code in UNKNOWN_RETRY_CODES, hint=hint)
        # Any other error is the member's (or the state machine's) answer: it did not happen.
        return AttemptError(exc.code, exc.message, definite=True, retry=False)
    if isinstance(exc, ConnectionRefusedError):
        return AttemptError("connection_refused", str(exc), definite=True, retry=True)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return AttemptError("timeout", "request timed out", definite=False, retry=True)
    if isinstance(exc, ConnectionError | OSError):
        return AttemptError("connection_lost", str(exc) or type(exc).__name__, definite=False, retry=True)
    return AttemptError("client_error", f"{type(exc).__name__}: {exc}", definite=False, retry=False)


def completion_for(f: str, maybe_happened: bool) -> str:
    """``fail`` or ``info`` for an op that never got an ok answer."""
    if f not in WRITE_FS:
        return "fail"  # reads have no effect, whatever happened to them
    return "info" if maybe_happened else "fail"


class OpFailed(Exception):
    """An op that did not get an ok answer: ``status`` is ``fail`` or ``info``."""

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(f"{status}: {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class CasFailed(OpFailed):
    def __init__(self) -> None:
        super().__init__("fail", "compare_failed", "cas compare did not hold")
