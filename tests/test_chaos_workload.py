"""The workload's error mapping (ok / fail / info) and the run's pure analysis,
with a fake transport: no cluster needed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raftstore.chaos.history import History
from raftstore.chaos.runner import (
    availability_bins,
    elections,
    op_counts,
    overall_verdict,
    recovery_after_faults,
    successful_write_spans,
    successful_write_times,
    write_unavailability,
)
from raftstore.chaos.workload import (
    Executor,
    OpFailed,
    Workload,
    WorkloadConfig,
    classify_attempt,
    completion_for,
)
from raftstore.client import RaftstoreError, Unavailable

EPS = ["a:1", "b:2", "c:3"]


def not_leader(hint: str | None = "b:2") -> RaftstoreError:
    return RaftstoreError("not_leader", "member a is not the leader", leader=hint, leader_name="m1")


def unavailable_from(cause: BaseException) -> Unavailable:
    try:
        raise Unavailable("unavailable", f"x: {cause!r}") from cause
    except Unavailable as exc:
        return exc


class FakeSend:
    """Replays a script of results/exceptions; records (endpoint, op, fields)."""

    def __init__(self, script: list[Any], default: Any = None) -> None:
        self.script = list(script)
        self.default = default
        self.calls: list[tuple[str, str, dict[str, Any], float]] = []

    async def __call__(self, endpoint: str, op: str, fields: dict[str, Any], timeout: float) -> Any:
        self.calls.append((endpoint, op, dict(fields), timeout))
        item = self.script.pop(0) if self.script else self.default
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return await item(timeout)
        return item


async def hang(timeout: float) -> Any:
    await asyncio.sleep(timeout)
    raise asyncio.TimeoutError()


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "exc, definite, retry",
    [
        (not_leader(), True, True),
        (RaftstoreError("overloaded", "proposal failed"), True, True),
        (RaftstoreError("invalid_argument", "bad"), True, False),
        (RaftstoreError("lease_not_found", "no lease"), True, False),
        (RaftstoreError("timeout", "not committed in time", outcome="unknown"), False, True),
        (RaftstoreError("leader_changed", "proposal discarded", outcome="unknown"), False, True),
        (RaftstoreError("session_expired", "discarded"), False, False),
        (RaftstoreError("internal", "boom"), False, False),
        (RaftstoreError("brand_new_code", "?", outcome="unknown"), False, False),
        (unavailable_from(ConnectionRefusedError(111, "refused")), True, True),
        (unavailable_from(ConnectionError("connection to a:1 closed")), False, True),
        (unavailable_from(asyncio.TimeoutError()), False, True),
        (asyncio.TimeoutError(), False, True),
        (ConnectionResetError(), False, True),
        (ConnectionRefusedError(), True, True),
    ],
)
def test_classify_attempt(exc: BaseException, definite: bool, retry: bool) -> None:
    err = classify_attempt(exc)
    assert (err.definite, err.retry) == (definite, retry), err


def test_not_leader_carries_the_hint() -> None:
    assert classify_attempt(not_leader("c:3")).hint == "c:3"


def test_completion_for() -> None:
    for f in ("write", "cas", "add"):
        assert completion_for(f, True) == "info"
        assert completion_for(f, False) == "fail"
    for f in ("read", "read_set"):
        assert completion_for(f, True) == "fail"
        assert completion_for(f, False) == "fail"


# ---------------------------------------------------------------- executor


async def run_op(
    script: list[Any],
    f: str = "write",
    default: Any = None,
    op_timeout: float = 0.3,
    attempt_timeout: float = 0.1,
    pinned: str | None = None,
) -> tuple[Any, FakeSend, Executor]:
    send = FakeSend(script, default)
    ex = Executor(None, EPS, op_timeout=op_timeout, attempt_timeout=attempt_timeout, send=send, client_id="cid")
    ex.leader = "a:1"
    op = {"write": "put", "cas": "txn", "add": "put", "read": "range"}[f]
    try:
        return await ex.execute(f, op, {"key": b"k"}, pinned=pinned), send, ex
    except OpFailed as exc:
        return exc, send, ex


async def test_not_leader_then_success_is_ok_and_follows_the_hint() -> None:
    res, send, ex = await run_op([not_leader("b:2"), {"revision": 5}])
    assert res == {"revision": 5}
    assert [c[0] for c in send.calls] == ["a:1", "b:2"]
    assert ex.leader == "b:2"
    # Both attempts of one write carry the same (client id, seq): applied at most once.
    assert send.calls[0][2]["seq"] == send.calls[1][2]["seq"] == 1
    assert send.calls[0][2]["cid"] == "cid" and send.calls[0][2]["fi"] == 1


async def test_only_definite_errors_until_the_deadline_is_fail() -> None:
    res, send, _ = await run_op([], default=not_leader(None))
    assert isinstance(res, OpFailed) and res.status == "fail" and res.code == "not_leader"
    assert len(send.calls) > 1
    res, _, _ = await run_op([], default=unavailable_from(ConnectionRefusedError(111, "refused")))
    assert res.status == "fail"


async def test_invalid_argument_fails_at_once() -> None:
    res, send, _ = await run_op([RaftstoreError("invalid_argument", "bad key")])
    assert isinstance(res, OpFailed) and res.status == "fail" and res.code == "invalid_argument"
    assert len(send.calls) == 1


@pytest.mark.parametrize(
    "unknown",
    [
        RaftstoreError("timeout", "proposal timed out", outcome="unknown"),
        RaftstoreError("leader_changed", "discarded", outcome="unknown"),
        ConnectionResetError("lost"),
        asyncio.TimeoutError(),
    ],
)
async def test_unknown_outcome_then_definite_errors_is_info(unknown: BaseException) -> None:
    res, send, _ = await run_op([unknown], default=not_leader(None))
    assert isinstance(res, OpFailed) and res.status == "info", res
    # The seq stays the same on every retry.
    assert {c[2]["seq"] for c in send.calls} == {1}


async def test_unknown_outcome_then_success_is_ok() -> None:
    res, send, _ = await run_op([RaftstoreError("leader_changed", "x", outcome="unknown"), {"revision": 9}])
    assert res == {"revision": 9}
    assert send.calls[0][2]["seq"] == send.calls[1][2]["seq"]


async def test_a_hanging_member_gets_one_attempt_timeout_not_the_whole_budget() -> None:
    res, send, _ = await run_op([hang, {"revision": 3}], op_timeout=1.0, attempt_timeout=0.05)
    assert res == {"revision": 3}
    assert send.calls[0][3] == pytest.approx(0.05)
    assert send.calls[1][0] != send.calls[0][0]


async def test_reads_that_time_out_are_fail_not_info() -> None:
    res, _, _ = await run_op([], f="read", default=asyncio.TimeoutError())
    assert isinstance(res, OpFailed) and res.status == "fail"
    res, send, _ = await run_op([], f="read", default=RaftstoreError("timeout", "x", outcome="unknown"))
    assert res.status == "fail"
    assert "seq" not in send.calls[0][2]  # reads carry no write session


async def test_pinned_reader_tries_its_member_once() -> None:
    res, send, _ = await run_op([not_leader("b:2")], f="read", pinned="c:3")
    assert isinstance(res, OpFailed) and res.status == "fail"
    assert [c[0] for c in send.calls] == ["c:3"]


async def test_each_op_gets_a_new_seq() -> None:
    send = FakeSend([], {"revision": 1})
    ex = Executor(None, EPS, send=send, client_id="cid")
    await ex.execute("write", "put", {"key": b"k"})
    await ex.execute("cas", "txn", {})
    await ex.execute("read", "range", {"key": b"k"})
    assert [c[2].get("seq") for c in send.calls] == [1, 2, None]


# ---------------------------------------------------------------- recording


def fake_executor(script: list[Any], default: Any = None) -> tuple[Executor, FakeSend]:
    send = FakeSend(script, default)
    return Executor(None, EPS, op_timeout=0.2, attempt_timeout=0.1, send=send, client_id="cid"), send


def kv(value: int) -> dict[str, Any]:
    return {"k": b"x", "v": str(value).encode(), "cr": 1, "mr": 2, "ver": 1, "lease": 0}


async def test_workload_records_invoke_and_completion() -> None:
    w = Workload(EPS, WorkloadConfig(keys=2, set_keys=1))
    ex, send = fake_executor(
        [
            {"kvs": [kv(7)], "count": 1, "more": False, "revision": 3},  # read -> 7
            {"kvs": [], "count": 0, "more": False, "revision": 3},  # read -> None
            {"revision": 4},  # write ok
            {"succeeded": False, "revision": 4, "responses": []},  # cas compare failed
            {"succeeded": True, "revision": 5, "responses": []},  # cas ok
            RaftstoreError("timeout", "x", outcome="unknown"),  # write: unknown...
        ],
        default=not_leader(None),
    )  # ...then no leader until the deadline -> info
    assert await w._op(ex, 0, "read", "k0", None) == ("ok", 7)
    assert await w._op(ex, 0, "read", "k1", None) == ("ok", None)
    assert await w._op(ex, 0, "write", "k0", 11) == ("ok", 11)
    assert (await w._op(ex, 0, "cas", "k0", [3, 12]))[0] == "fail"
    assert (await w._op(ex, 0, "cas", "k0", [11, 12]))[0] == "ok"
    assert (await w._op(ex, 0, "write", "k1", 13))[0] == "info"
    h = w.history
    assert [(o.type, o.f, o.value) for o in h] == [
        ("invoke", "read", None),
        ("ok", "read", 7),
        ("invoke", "read", None),
        ("ok", "read", None),
        ("invoke", "write", 11),
        ("ok", "write", 11),
        ("invoke", "cas", [3, 12]),
        ("fail", "cas", [3, 12]),
        ("invoke", "cas", [11, 12]),
        ("ok", "cas", [11, 12]),
        ("invoke", "write", 13),
        ("info", "write", 13),
    ]
    assert h[7].error.startswith("compare_failed")
    assert h[11].error.startswith("timeout")
    assert all(a.time <= b.time for a, b in zip(h, list(h)[1:]))
    # The cas compares the key's value; expected None compares create_revision == 0.
    txn = send.calls[3][2]
    assert txn["compare"][0]["target"] == "value" and txn["compare"][0]["value"] == b"3"
    assert txn["success"][0]["value"] == b"12"
    await w._op(ex, 0, "cas", "k1", [None, 14])
    assert send.calls[-1][2]["compare"][0]["target"] in ("create", "value")
    assert w.counts["ok"] == 4 and w.counts["fail"] >= 1 and w.counts["info"] == 1


async def test_set_ops_use_the_set_prefix() -> None:
    w = Workload(EPS, WorkloadConfig(keys=1, set_keys=1, prefix="chaos/t/"))
    ex, send = fake_executor([{"revision": 2}, {"kvs": [kv(5), kv(3)], "count": 2, "more": False, "revision": 2}])
    assert await w._op(ex, 0, "add", "s0", 5) == ("ok", 5)
    assert await w._op(ex, 0, "read_set", "s0", None) == ("ok", [3, 5])
    assert send.calls[0][2]["key"] == b"chaos/t/s/s0/000000000005"
    assert send.calls[1][2]["key"] == b"chaos/t/s/s0/"


# ---------------------------------------------------------------- analysis


def small_history() -> History:
    h = History()
    h.invoke(0, "write", "k", 1, 10.0)
    h.ok(0, "write", "k", 1, 10.1)
    h.invoke(1, "read", "k", None, 10.2)
    h.ok(1, "read", "k", 1, 10.3)
    h.invoke(0, "write", "k", 2, 10.4)
    h.info(0, "write", "k", 2, 12.0, "timeout")
    h.invoke(2, "cas", "k", [1, 3], 12.1)
    h.fail(2, "cas", "k", [1, 3], 12.2, "compare_failed")
    h.invoke(2, "add", "s", 7, 12.3)
    h.ok(2, "add", "s", 7, 13.0)
    h.invoke(3, "write", "k", 4, 13.5)  # never completed
    return h


def test_op_counts_and_write_times() -> None:
    h = small_history()
    c = op_counts(h)
    assert (c["total"], c["ok"], c["fail"], c["info"]) == (6, 3, 1, 2)
    assert c["by_f"]["write"] == {"ok": 1, "fail": 0, "info": 2}
    assert successful_write_times(h) == [10.1, 13.0]
    assert successful_write_spans(h) == [(10.0, 10.1), (12.3, 13.0)]


def test_write_unavailability_windows() -> None:
    u = write_unavailability([1.0, 1.1, 1.2, 2.0, 2.1, 4.1], start=1.0, end=4.2, threshold=0.25)
    assert u["count"] == 2
    assert u["windows"] == [[1.2, 2.0], [2.1, 4.1]]
    assert u["max"] == pytest.approx(2.0)
    assert u["median"] == pytest.approx(1.4)
    assert u["availability"] == pytest.approx(1 - 2.8 / 3.2)
    none = write_unavailability([], 0.0, 1.0)
    assert none["count"] == 1 and none["max"] == pytest.approx(1.0) and none["availability"] == 0.0
    assert availability_bins([0.5, 2.5], 0.0, 4.0) == 0.5


def test_elections_from_raft_events() -> None:
    evs = [
        {"member": "m0", "time": 1.0, "role": "leader", "term": 1, "leader": "m0"},
        {"member": "m1", "time": 5.0, "role": "candidate", "term": 2, "leader": None},
        {"member": "m1", "time": 5.2, "role": "leader", "term": 2, "leader": "m1"},
        {"member": "m2", "time": 5.3, "role": "follower", "term": 2, "leader": "m1"},
        {"member": "m2", "time": 7.0, "role": "candidate", "term": 3, "leader": None},
        {"member": "m2", "time": 7.1, "role": "candidate", "term": 4, "leader": None},
        {"member": "m2", "time": 7.3, "role": "leader", "term": 4, "leader": "m2"},
        {"member": "m0", "time": 50.0, "role": "leader", "term": 9, "leader": "m0"},
    ]
    e = elections(evs, start=2.0, end=10.0)
    assert e["elections"] == 2
    assert (e["term_at_start"], e["term_at_end"], e["term_changes"]) == (1, 4, 3)
    assert [x["leader"] for x in e["leaders"]] == ["m1", "m2"]
    assert e["candidacies"] == 3


def test_recovery_and_verdicts() -> None:
    windows = [
        {"nemesis": "leader-kill", "start": 10.0, "stop": 12.0, "description": "SIGKILL m1"},
        {"nemesis": "pause", "start": 20.0, "stop": 21.0, "skipped": True},
    ]
    rec = recovery_after_faults(windows, [(9.9, 10.05), (10.1, 10.6), (12.5, 12.6)])
    assert len(rec) == 1
    assert rec[0]["first_write_after_start"] == pytest.approx(0.6)
    assert rec[0]["first_write_after_stop"] == pytest.approx(0.6)
    assert overall_verdict([True, True]) is True
    assert overall_verdict([True, "unknown"]) == "unknown"
    assert overall_verdict([True, "unknown", False]) is False
