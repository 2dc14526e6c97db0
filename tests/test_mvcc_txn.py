"""Unit tests for raftstore.mvcc: txn compares, branches, nesting and key checks.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mvcc_helpers import cmp, expect, keys, p, put, txn

from raftstore.mvcc import MVCCError, MVCCStore, prefix_range_end

# --------------------------------------------------------------------- txn

TARGET_CASES = [
    # (target, result, operand, expected) against key k: value b"m", version 2,
    # create 2, mod 3, lease 7
    ("value", "==", b"m", True),
    ("value", "==", b"x", False),
    ("value", "!=", b"x", True),
    ("value", "!=", b"m", False),
    ("value", "<", b"n", True),
    ("value", "<", b"a", False),
    ("value", ">", b"a", True),
    ("value", ">", b"m", False),
    ("version", "==", 2, True),
    ("version", "!=", 2, False),
    ("version", "<", 3, True),
    ("version", ">", 2, False),
    ("create", "==", 2, True),
    ("create", "<", 2, False),
    ("create", ">", 1, True),
    ("create", "!=", 5, True),
    ("mod", "==", 3, True),
    ("mod", ">", 3, False),
    ("mod", "<", 4, True),
    ("mod", "!=", 3, False),
    ("lease", "==", 7, True),
    ("lease", "==", 0, False),
    ("lease", "!=", 0, True),
    ("lease", ">", 6, True),
    ("lease", "<", 7, False),
]


@pytest.mark.parametrize("target,result,operand,expected", TARGET_CASES)
def test_txn_compare_targets(target: str, result: str, operand: Any, expected: bool) -> None:
    s = MVCCStore()
    s.apply({"op": "lease_grant", "id": 7, "ttl": 10})
    put(s, b"k", b"l", lease=7)  # 2
    put(s, b"k", b"m", lease=7)  # 3
    r = txn(s, [cmp(b"k", target, result, operand)], [p(b"ok")], [p(b"ko")])
    assert r["succeeded"] is expected
    assert keys(s, b"o", b"\0") == ([b"ok"] if expected else [])
    assert s.get(b"ko" if not expected else b"ok") is not None


@pytest.mark.parametrize(
    "target,result,operand,expected",
    [
        ("value", "==", b"", False),  # absent is not the empty value
        ("value", "!=", b"x", False),
        ("value", ">", b"", False),
        ("version", "==", 0, True),
        ("version", ">", 0, False),
        ("create", "==", 0, True),
        ("mod", "==", 0, True),
        ("mod", "<", 1, True),
        ("lease", "==", 0, True),
        ("lease", "!=", 0, False),
    ],
)
def test_txn_compare_missing_key(target: str, result: str, operand: Any, expected: bool) -> None:
    s = MVCCStore()
    put(s, b"other")
    r = txn(s, [cmp(b"missing", target, result, operand)], [p(b"ok")])
    assert r["succeeded"] is expected


def test_txn_range_compare() -> None:
    s = MVCCStore()
    put(s, b"p/a", b"1")
    put(s, b"p/b", b"1")
    put(s, b"p/c", b"2")
    end = prefix_range_end(b"p/")
    assert not txn(s, [cmp(b"p/", "value", "==", b"1", end)])["succeeded"]
    assert txn(s, [cmp(b"p/", "value", "==", b"1", b"p/c")])["succeeded"]
    assert txn(s, [cmp(b"p/", "version", "==", 1, end)])["succeeded"]
    assert txn(s, [cmp(b"p/", "create", ">", 1, end)])["succeeded"]
    assert not txn(s, [cmp(b"p/", "mod", "<", 4, end)])["succeeded"]
    # keys absent inside a non-empty range are ignored (etcd)
    assert txn(s, [cmp(b"p/", "version", ">", 0, b"p/z")])["succeeded"]
    # an empty range compares as one zero KeyValue; value compares fail
    assert txn(s, [cmp(b"q/", "version", "==", 0, prefix_range_end(b"q/"))])["succeeded"]
    assert not txn(s, [cmp(b"q/", "value", "!=", b"x", prefix_range_end(b"q/"))])["succeeded"]
    # all compares must hold
    r = txn(s, [cmp(b"p/a", "value", "==", b"1"), cmp(b"p/c", "value", "==", b"1")])
    assert r["succeeded"] is False
    assert s.revision == 4  # read-only txns never bump


def test_txn_writes_share_one_revision_and_reads_see_own_writes() -> None:
    s = MVCCStore()
    put(s, b"a", b"0")  # 2
    r = txn(
        s,
        [cmp(b"a", "version", "==", 1)],
        [
            p(b"a", b"1", prev_kv=True),
            p(b"b", b"1"),
            {"op": "range", "key": b"", "range_end": b"\0"},
            {"op": "delete_range", "key": b"c"},
            {"op": "range", "key": b"a", "revision": 2},
        ],
    )
    assert r["succeeded"] and r["revision"] == 3 and s.revision == 3
    ops = [x["op"] for x in r["responses"]]
    assert ops == ["put", "put", "range", "delete_range", "range"]
    assert all(x["revision"] == 3 for x in r["responses"])
    assert r["responses"][0]["prev_kv"]["v"] == b"0"
    seen = r["responses"][2]["kvs"]
    assert [(kv["k"], kv["v"], kv["mr"]) for kv in seen] == [(b"a", b"1", 3), (b"b", b"1", 3)]
    assert r["responses"][3]["deleted"] == 0
    assert r["responses"][4]["kvs"][0]["v"] == b"0"  # explicit past revision
    assert s.get(b"a").mod_revision == s.get(b"b").mod_revision == 3
    evs = s.events_since(3, b"", b"\0")
    assert [(e.type, e.kv.key) for e in evs] == [("PUT", b"a"), ("PUT", b"b")]


def test_txn_read_only_and_noop_write_do_not_bump() -> None:
    s = MVCCStore()
    put(s, b"a")
    r = txn(s, [], [{"op": "range", "key": b"a"}, {"op": "delete_range", "key": b"zz"}])
    assert r["succeeded"] and r["revision"] == 2 and s.revision == 2
    assert r["responses"][0]["count"] == 1
    r = txn(s, [cmp(b"a", "version", "==", 5)], [p(b"x")], [])
    assert r == {"op": "txn", "revision": 2, "succeeded": False, "responses": []}


def test_nested_txn_compares_use_pre_txn_state() -> None:
    s = MVCCStore()
    put(s, b"a", b"1")  # 2
    inner = {
        "op": "txn",
        "compare": [cmp(b"a", "value", "==", b"1")],  # pre-txn value
        "success": [p(b"inner", b"then")],
        "failure": [p(b"inner", b"else")],  # same key in both branches is fine
    }
    r = txn(s, [], [p(b"a", b"2"), inner])
    assert r["responses"][1]["succeeded"] is True
    assert r["responses"][1]["op"] == "txn" and r["responses"][1]["revision"] == 3
    assert s.get(b"inner").value == b"then" and s.get(b"a").value == b"2"
    assert s.get(b"inner").mod_revision == s.get(b"a").mod_revision == 3


def test_txn_all_or_nothing_on_failing_op() -> None:
    s = MVCCStore()
    put(s, b"a", b"1")
    before = (s.digest(), s.revision, s.stats())
    for bad in (
        [p(b"x", b"1"), p(b"y", b"2", lease=99)],
        [p(b"x"), {"op": "txn", "success": [p(b"y", lease=5)]}],
        [p(b"x"), {"op": "put", "key": b"nokey", "ignore_value": True}],
        [p(b"x"), {"op": "range", "key": b"a", "revision": 50}],
        [p(b"x"), {"op": "delete_range", "key": b"a", "bogus": 1}],
        [p(b"x"), {"op": "compact", "revision": 1}],
    ):
        with pytest.raises(MVCCError):
            txn(s, [], bad)
        assert (s.digest(), s.revision, s.stats()) == before
    e = expect("lease_not_found", txn, s, [], [p(b"x"), p(b"y", lease=99)])
    assert "99" in e.message
    # the failing op in the branch that is NOT taken does not matter
    r = txn(s, [cmp(b"a", "value", "==", b"1")], [p(b"ok")], [p(b"y", lease=99)])
    assert r["succeeded"] and s.revision == 3


@pytest.mark.parametrize(
    "success",
    [
        [p(b"a"), p(b"a")],
        [p(b"a"), {"op": "delete_range", "key": b"a"}],
        [p(b"b"), {"op": "delete_range", "key": b"a", "range_end": b"c"}],
        [p(b"a"), {"op": "txn", "success": [p(b"a")]}],
        [{"op": "delete_range", "key": b"a", "range_end": b"\0"}, {"op": "txn", "failure": [p(b"z")]}],
        [{"op": "txn", "success": [p(b"a")]}, {"op": "txn", "failure": [p(b"a")]}],
    ],
)
def test_txn_duplicate_key_rejected(success: list) -> None:
    s = MVCCStore()
    put(s, b"a")
    before = s.digest()
    e = expect("invalid_argument", txn, s, [cmp(b"a", "version", "==", 99)], [], success)
    assert "duplicate key" in e.message  # rejected even in the branch not taken
    e = expect("invalid_argument", txn, s, [], success)
    assert "duplicate key" in e.message
    assert s.digest() == before


def test_txn_allowed_key_reuse() -> None:
    s = MVCCStore()
    # success and failure are separate; overlapping deletes are fine; reads are fine
    r = txn(
        s,
        [],
        [
            p(b"a"),
            {"op": "range", "key": b"a"},
            {"op": "delete_range", "key": b"x", "range_end": b"z"},
            {"op": "delete_range", "key": b"y"},
        ],
        [p(b"a")],
    )
    assert r["succeeded"]
