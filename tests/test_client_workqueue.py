"""cluster.client's work queue, delaying queue and rate limiters: pure unit tests on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from cluster.client import (
    BucketRateLimiter,
    DelayingQueue,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    ShutDown,
    TokenBucket,
    WorkQueue,
    default_controller_rate_limiter,
    run_worker,
)


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# ============================================================ work queue (unit)
class TestWorkQueue:
    async def test_dedup_and_fifo(self) -> None:
        q: WorkQueue[str] = WorkQueue(clock=FakeClock())
        for x in ["a", "b", "a", "c", "b"]:
            q.add(x)
        assert len(q) == 3
        assert [q.get_nowait() for _ in range(3)] == ["a", "b", "c"]
        with pytest.raises(asyncio.QueueEmpty):
            q.get_nowait()

    async def test_item_added_while_processing_is_requeued_on_done(self) -> None:
        q: WorkQueue[str] = WorkQueue(clock=FakeClock())
        q.add("a")
        assert q.get_nowait() == "a"
        q.add("a")
        q.add("a")
        assert len(q) == 0, "an item being processed is not handed to a second worker"
        q.done("a")
        assert len(q) == 1
        assert q.get_nowait() == "a"
        q.done("a")
        assert len(q) == 0

    async def test_blocking_get_and_shutdown_drains(self) -> None:
        q: WorkQueue[str] = WorkQueue(clock=FakeClock())
        getter = asyncio.create_task(q.get())
        await settle()
        assert not getter.done()
        q.add("x")
        assert await asyncio.wait_for(getter, 1) == "x"
        q.add("y")
        q.add("z")
        q.shut_down()
        q.add("ignored")
        assert q.get_nowait() == "y"
        assert await q.get() == "z"
        with pytest.raises(ShutDown):
            await q.get()

    async def test_shutdown_wakes_blocked_getters(self) -> None:
        q: WorkQueue[str] = WorkQueue(clock=FakeClock())
        getters = [asyncio.create_task(q.get()) for _ in range(3)]
        await settle()
        q.shut_down()
        for g in getters:
            with pytest.raises(ShutDown):
                await asyncio.wait_for(g, 1)

    async def test_shutdown_with_drain_waits_for_done(self) -> None:
        q: WorkQueue[str] = WorkQueue(clock=FakeClock())
        q.add("a")
        item = q.get_nowait()
        drain = asyncio.create_task(q.shut_down_with_drain())
        await settle()
        assert not drain.done()
        q.done(item)
        await asyncio.wait_for(drain, 1)


class TestDelayingQueue:
    async def test_add_after_uses_the_clock(self) -> None:
        clock = FakeClock()
        q: DelayingQueue[str] = DelayingQueue(clock=clock)
        q.add_after("a", 1.0)
        assert len(q) == 0 and q.waiting == 1
        clock.advance(0.5)
        assert len(q) == 0
        clock.advance(0.5)
        assert len(q) == 1 and q.waiting == 0

    async def test_earlier_ready_time_wins(self) -> None:
        clock = FakeClock()
        q: DelayingQueue[str] = DelayingQueue(clock=clock)
        q.add_after("a", 10.0)
        q.add_after("a", 1.0)  # earlier: replaces
        q.add_after("a", 5.0)  # later: ignored
        clock.advance(1.0)
        assert len(q) == 1
        assert q.get_nowait() == "a"
        q.done("a")
        clock.advance(10.0)
        assert len(q) == 0, "the superseded entries do not fire"

    async def test_waiting_item_does_not_duplicate_a_queued_one(self) -> None:
        clock = FakeClock()
        q: DelayingQueue[str] = DelayingQueue(clock=clock)
        q.add("a")
        q.add_after("a", 1.0)
        clock.advance(1.0)
        assert len(q) == 1

    async def test_blocked_get_wakes_when_time_comes(self) -> None:
        clock = FakeClock()
        q: DelayingQueue[str] = DelayingQueue(clock=clock)
        getter = asyncio.create_task(q.get())
        await settle()
        q.add_after("a", 2.0)
        await settle()
        assert not getter.done()
        clock.advance(1.9)
        await settle()
        assert not getter.done()
        clock.advance(0.1)
        assert await asyncio.wait_for(getter, 1) == "a"


class TestRateLimiters:
    def test_item_exponential(self) -> None:
        rl = ItemExponentialFailureRateLimiter(0.005, 1.0)
        delays = [rl.when("a") for _ in range(10)]
        assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
        assert delays[-1] == 1.0 and max(delays) == 1.0
        assert rl.num_requeues("a") == 10
        assert rl.when("b") == 0.005, "per item"
        rl.forget("a")
        assert rl.num_requeues("a") == 0 and rl.when("a") == 0.005
        for _ in range(200):
            rl.when("c")
        assert rl.when("c") == 1.0

    def test_bucket(self) -> None:
        clock = FakeClock()
        rl = BucketRateLimiter(qps=10, burst=2, clock=clock)
        assert [rl.when(i) for i in range(4)] == pytest.approx([0.0, 0.0, 0.1, 0.2])
        clock.advance(10.0)
        assert rl.when("x") == 0.0, "refilled (to burst, not beyond)"
        assert rl.when("y") == 0.0
        assert rl.when("z") == pytest.approx(0.1)

    def test_default_controller_limiter_is_max_of_both(self) -> None:
        clock = FakeClock()
        rl = default_controller_rate_limiter(clock)
        assert isinstance(rl, MaxOfRateLimiter)
        # burst of 100 distinct items: only the per-item back-off applies
        assert {rl.when(i) for i in range(100)} == {0.005}
        # the 101st without time passing waits for the bucket (10 qps)
        assert rl.when(100) == pytest.approx(0.1)
        # one item failing repeatedly: exponential
        clock.advance(1000)
        assert [rl.when("k") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
        assert rl.num_requeues("k") == 3
        rl.forget("k")
        assert rl.num_requeues("k") == 0

    def test_client_token_bucket(self) -> None:
        t = [0.0]
        tb = TokenBucket(qps=5, burst=1, clock=lambda: t[0])
        assert tb.reserve() == 0.0
        assert tb.reserve() == pytest.approx(0.2)
        t[0] += 1.0
        assert tb.reserve() == 0.0


class TestRateLimitingQueue:
    async def test_backoff_per_item_and_forget(self) -> None:
        clock = FakeClock()
        q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
        q.add_rate_limited("a")  # 1 s
        clock.advance(0.99)
        assert len(q) == 0
        clock.advance(0.01)
        assert q.get_nowait() == "a"
        q.add_rate_limited("a")  # 2 s (added while processing: comes back after done)
        q.done("a")
        clock.advance(1.5)
        assert len(q) == 0
        clock.advance(0.5)
        assert q.get_nowait() == "a"
        assert q.num_requeues("a") == 2
        q.forget("a")
        q.done("a")
        assert q.num_requeues("a") == 0
        q.add_rate_limited("a")
        clock.advance(1.0)
        assert len(q) == 1

    async def test_rate_limited_dedup(self) -> None:
        clock = FakeClock()
        q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
        for _ in range(5):
            q.add_rate_limited("a")  # 1, 2, 4, 8, 16 s: the earliest (1 s) wins
        clock.advance(1.0)
        assert len(q) == 1
        q.get_nowait()
        clock.advance(100)
        assert len(q) == 0, "deduplicated: one delivery"

    async def test_run_worker_retries_with_backoff_then_forgets(self) -> None:
        clock = FakeClock()
        q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
        calls: list[tuple[str, float]] = []

        def handler(item: str) -> None:
            calls.append((item, clock.now()))
            if len(calls) < 3:
                raise RuntimeError("transient")

        worker = asyncio.create_task(run_worker(q, handler))
        t0 = clock.now()
        q.add("k")
        await settle()
        assert len(calls) == 1
        clock.advance(1.0)
        await settle()
        assert len(calls) == 2
        clock.advance(1.0)
        await settle()
        assert len(calls) == 2, "second retry waits 2 s"
        clock.advance(1.0)
        await settle()
        assert [t - t0 for _, t in calls] == [0.0, 1.0, 3.0]
        assert q.num_requeues("k") == 0, "success forgets the back-off"
        q.shut_down()
        await asyncio.wait_for(worker, 1)

    async def test_run_worker_drops_after_max_retries(self) -> None:
        clock = FakeClock()
        q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
        calls = []

        def handler(item: str) -> None:
            calls.append(item)
            raise RuntimeError("permanent")

        worker = asyncio.create_task(run_worker(q, handler, max_retries=2))
        q.add("k")
        for _ in range(10):
            await settle()
            clock.advance(10)
        await settle()
        assert len(calls) == 3 and len(q) == 0 and q.waiting == 0
        q.shut_down()
        await asyncio.wait_for(worker, 1)

    async def test_one_key_never_processed_concurrently(self) -> None:
        q: RateLimitingQueue[str] = RateLimitingQueue(clock=FakeClock())
        active: set[str] = set()
        overlaps = []
        count = {"a": 0, "b": 0}

        async def handler(item: str) -> None:
            if item in active:
                overlaps.append(item)
            active.add(item)
            count[item] += 1
            await asyncio.sleep(0.01)
            active.discard(item)

        workers = [asyncio.create_task(run_worker(q, handler)) for _ in range(4)]
        for _ in range(20):
            q.add("a")
            q.add("b")
            await asyncio.sleep(0.003)
        await asyncio.sleep(0.1)
        q.shut_down()
        await asyncio.wait_for(asyncio.gather(*workers), 2)
        assert not overlaps
        assert 2 <= count["a"] < 20, "adds during processing coalesce"
