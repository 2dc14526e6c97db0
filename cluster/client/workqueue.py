"""Work queues with client-go's semantics (k8s.io/client-go/util/workqueue), for asyncio.

``WorkQueue``
    - *dedup*: an item added while it is already waiting is queued once;
    - *no concurrent processing of one item*: an item added while a worker
      holds it (between ``get`` and ``done``) is queued again only when
      ``done`` is called, so one key is never processed by two workers at once;
    - FIFO otherwise; ``shut_down`` lets workers drain what is queued, then
      ``get`` raises ``ShutDown``.

``DelayingQueue`` adds ``add_after(item, delay)``; an item already waiting
keeps the earlier of its two ready times.

``RateLimitingQueue`` adds ``add_rate_limited`` / ``forget`` /
``num_requeues`` with a pluggable limiter; the default, as in client-go's
``DefaultControllerRateLimiter``, is the max of a per-item exponential
back-off (5 ms doubling to 1000 s) and an overall token bucket (10 qps,
burst 100).

Time comes from a ``Clock`` so tests use a ``FakeClock`` and never sleep.
``run_worker`` is the usual controller loop: get, handle, forget or
requeue rate-limited, done.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Generic, Hashable, Protocol, TypeVar

from .clock import REAL_CLOCK, Clock

T = TypeVar("T", bound=Hashable)
log = logging.getLogger("raykube.workqueue")


class ShutDown(Exception):
    """The queue is shut down and has nothing left to hand out."""


# --------------------------------------------------------------------- limiters
class RateLimiter(Protocol):
    def when(self, item: Any) -> float: ...

    def forget(self, item: Any) -> None: ...

    def num_requeues(self, item: Any) -> int: ...


class ItemExponentialFailureRateLimiter:
    """``base_delay * 2**failures(item)``, capped at ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Any, int] = {}

    def when(self, item: Any) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp > 62:
            return self.max_delay
        return min(self.base_delay * (2**exp), self.max_delay)

    def forget(self, item: Any) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Any) -> int:
        return self._failures.get(item, 0)


class ItemFastSlowRateLimiter:
    """``fast_delay`` for the first ``max_fast_attempts`` failures of an item, then ``slow_delay``."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        self.fast_delay, self.slow_delay, self.max_fast_attempts = fast_delay, slow_delay, max_fast_attempts
        self._failures: dict[Any, int] = {}

    def when(self, item: Any) -> float:
        n = self._failures.get(item, 0) + 1
        self._failures[item] = n
        return self.fast_delay if n <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: Any) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Any) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket (``qps`` refill, ``burst`` deep): each ``when`` reserves a token
    and returns how long until it is valid, so requeues as a whole never exceed ``qps``."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = REAL_CLOCK) -> None:
        self.qps = float(qps)
        self.burst = int(burst)
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Any) -> float:
        now = self.clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Any) -> None:
        pass

    def num_requeues(self, item: Any) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of ``limiters`` asks for (each one still records the attempt)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Any) -> float:
        return max(lim.when(item) for lim in self.limiters)

    def forget(self, item: Any) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item: Any) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_controller_rate_limiter(clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock))


# ----------------------------------------------------------------------- queues
class WorkQueue(Generic[T]):
    def __init__(self, name: str = "", clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.clock = clock
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._waiters: list[asyncio.Future[None]] = []
        self._enqueued_at: dict[T, float] = {}
        self.adds = 0
        self.retries = 0
        self.max_wait = 0.0  # longest time an item sat in the queue before a worker got it

    # -- internals
    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _pop(self) -> T:
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        t = self._enqueued_at.pop(item, None)
        if t is not None:
            self.max_wait = max(self.max_wait, self.clock.now() - t)
        return item

    def _promote(self) -> None:
        """Hook for delaying queues: move items whose time has come onto the queue."""

    def _next_ready(self) -> float | None:
        return None

    # -- API
    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self.adds += 1
        self._dirty.add(item)
        if item in self._processing:
            return  # queued again by done()
        self._queue.append(item)
        self._enqueued_at[item] = self.clock.now()
        self._wake()

    def __len__(self) -> int:
        self._promote()
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def get_nowait(self) -> T:
        """The next item, or ``asyncio.QueueEmpty``; ``ShutDown`` once shut down and drained."""
        self._promote()
        if self._queue:
            return self._pop()
        if self._shutting_down:
            raise ShutDown(self.name)
        raise asyncio.QueueEmpty

    async def get(self) -> T:
        """Wait for the next item; the caller must call ``done(item)`` when finished with it."""
        loop = asyncio.get_running_loop()
        while True:
            self._promote()
            if self._queue:
                return self._pop()
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            ready = self._next_ready()
            timer: asyncio.Task[None] | None = None
            try:
                if ready is None:
                    await fut
                else:
                    timer = loop.create_task(self.clock.sleep(ready - self.clock.now()))
                    await asyncio.wait({fut, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if timer is not None and not timer.done():
                    timer.cancel()
                if not fut.done():
                    fut.cancel()
                    try:
                        self._waiters.remove(fut)
                    except ValueError:
                        pass

    def done(self, item: T) -> None:
        """Processing of ``item`` finished; if it was added meanwhile, it is queued now."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._enqueued_at[item] = self.clock.now()
            self._wake()
        elif self._shutting_down and not self._processing:
            self._wake()

    def shut_down(self) -> None:
        """Stop accepting items; workers drain what is queued, then ``get`` raises ``ShutDown``."""
        self._shutting_down = True
        self._wake()

    async def shut_down_with_drain(self) -> None:
        """``shut_down`` and wait until every item handed out has been ``done``."""
        self.shut_down()
        loop = asyncio.get_running_loop()
        while self._processing or self._queue:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            await fut

    def metrics(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "depth": len(self),
            "processing": len(self._processing),
            "adds": self.adds,
            "retries": self.retries,
            "max_wait": self.max_wait,
        }


class DelayingQueue(WorkQueue[T]):
    def __init__(self, name: str = "", clock: Clock = REAL_CLOCK) -> None:
        super().__init__(name, clock)
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, float] = {}
        self._seq = itertools.count()

    def add_after(self, item: T, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self.clock.now() + delay
        cur = self._waiting.get(item)
        if cur is not None and cur <= ready:
            return  # already waiting for an earlier time
        self._waiting[item] = ready
        heapq.heappush(self._heap, (ready, next(self._seq), item))
        self._wake()  # a sleeping getter recomputes its timer

    def _promote(self) -> None:
        now = self.clock.now()
        while self._heap and self._heap[0][0] <= now:
            ready, _, item = heapq.heappop(self._heap)
            if self._waiting.get(item) != ready:
                continue  # superseded by an earlier add_after
            del self._waiting[item]
            self.add(item)

    def _next_ready(self) -> float | None:
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def metrics(self) -> dict[str, Any]:
        return super().metrics() | {"waiting": self.waiting}


class RateLimitingQueue(DelayingQueue[T]):
    def __init__(self, rate_limiter: RateLimiter | None = None, name: str = "", clock: Clock = REAL_CLOCK) -> None:
        super().__init__(name, clock)
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(clock)

    def add_rate_limited(self, item: T) -> None:
        """Requeue ``item`` after the limiter's delay (the retry path of a failed reconcile)."""
        self.retries += 1
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """``item`` succeeded: reset its back-off (it stays queued if it is)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)


async def run_worker(
    queue: RateLimitingQueue[T], handler: Callable[[T], Awaitable[Any] | Any], *, max_retries: int | None = None
) -> None:
    """Process items until the queue shuts down: success -> ``forget``; failure ->
    ``add_rate_limited`` (or drop after ``max_retries``); always ``done``."""
    while True:
        try:
            item = await queue.get()
        except ShutDown:
            return
        try:
            res = handler(item)
            if inspect.isawaitable(res):
                await res
        except asyncio.CancelledError:
            queue.done(item)
            raise
        except Exception as exc:  # noqa: BLE001 - a controller never dies of one bad item
            if max_retries is not None and queue.num_requeues(item) >= max_retries:
                log.warning("%s: dropping %r after %d retries: %r", queue.name, item, max_retries, exc)
                queue.forget(item)
            else:
                log.debug("%s: requeue %r: %r", queue.name, item, exc)
                queue.add_rate_limited(item)
        else:
            queue.forget(item)
        queue.done(item)
