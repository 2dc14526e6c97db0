"""Runs one operation against the members with the lab's own retry loop.

The loop (one member at a time, following ``not_leader`` hints, retrying
until the op's deadline, at most once per write thanks to its ``(client id,
seq)``) is what lets the workload tell ``fail`` from ``info``: see
:mod:`raftstore.chaos.outcomes` for how each attempt is classified.

Concurrency: an :class:`Executor` belongs to one asyncio task and runs one
op at a time (its seq numbers rely on it); a run has one per worker.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

from raftstore.chaos.outcomes import (
    WRITE_FS,
    AttemptError,
    OpFailed,
    classify_attempt,
    completion_for,
)
from raftstore.client import RaftstoreClient


class Executor:
    """Runs single operations against a cluster with our own retry loop.

    ``send(endpoint, op, fields, timeout)`` performs one attempt and raises on
    error; by default it is ``client.call(op, endpoint=endpoint, ...)``.  Tests
    inject a fake.  An attempt gets at most ``attempt_timeout`` seconds, the
    whole op ``op_timeout``; with ``pinned`` (a pinned reader) there is one
    attempt with the whole budget.
    """

    def __init__(
        self,
        client: RaftstoreClient | None,
        endpoints: list[str],
        *,
        op_timeout: float = 2.0,
        attempt_timeout: float = 0.5,
        send: Any = None,
        rng: random.Random | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client = client
        self.endpoints = list(endpoints)
        self.op_timeout = op_timeout
        # One attempt may not eat the whole budget: a leader cut off by a
        # partition accepts requests and never answers them.
        self.attempt_timeout = attempt_timeout
        self.rng = rng or random.Random()
        self.leader: str | None = None
        self.client_id = client_id or (client.client_id if client is not None else "test")
        self._seq = itertools.count(1)
        self._send = send or self._client_send
        self.attempts = 0

    async def _client_send(self, endpoint: str, op: str, fields: dict[str, Any], timeout: float) -> Any:
        assert self.client is not None
        return await self.client.call(op, endpoint=endpoint, timeout=timeout, leader=False, **fields)

    def _next(self, current: str | None) -> str:
        if current is None or current not in self.endpoints:
            return self.rng.choice(self.endpoints)
        i = self.endpoints.index(current)
        return self.endpoints[(i + 1) % len(self.endpoints)]

    async def execute(
        self, f: str, op: str, fields: dict[str, Any], *, pinned: str | None = None, timeout: float | None = None
    ) -> Any:
        """Run ``op`` until it succeeds or its deadline passes.

        ``f`` is the history's op kind (it decides fail vs info).  With
        ``pinned`` only that endpoint is tried, once.  Raises :class:`OpFailed`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.op_timeout if timeout is None else timeout)
        write = f in WRITE_FS
        if write:
            seq = next(self._seq)
            # One op at a time per executor, so this seq is the first incomplete one.
            fields = {**fields, "cid": self.client_id, "seq": seq, "fi": seq}
        target = pinned or self.leader or self.rng.choice(self.endpoints)
        maybe = False
        last: AttemptError | None = None
        unknown: AttemptError | None = None  # the first attempt whose outcome is unknown
        backoff = 0.01
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self.attempts += 1
            try:
                result = await self._send(target, op, fields, min(remaining, self.attempt_timeout))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- every error is classified
                err = classify_attempt(exc)
            else:
                if pinned is None:
                    self.leader = target
                return result
            last = err
            if not err.definite and unknown is None:
                unknown = err
            maybe = maybe or not err.definite
            if not err.retry or pinned is not None:
                break
            if err.code == "not_leader" and err.hint in self.endpoints and err.hint != target:
                target = self.leader = err.hint
                continue
            if self.leader == target:
                self.leader = None
            target = err.hint if err.hint in self.endpoints and err.hint != target else self._next(target)
            await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
            backoff = min(backoff * 2, 0.1)
        assert last is not None or deadline <= loop.time()
        if last is None:
            last = AttemptError("timeout", "no attempt made before the deadline", definite=True, retry=False)
        status = completion_for(f, maybe)
        if status == "info" and unknown is not None and unknown is not last:
            # Say why the outcome is unknown, not just how the last attempt went.
            raise OpFailed(status, unknown.code, f"{unknown.message} (last attempt: {last.code}: {last.message})")
        raise OpFailed(status, last.code, last.message)
