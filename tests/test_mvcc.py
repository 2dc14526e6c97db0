"""Unit tests for raftstore.mvcc (pure state machine, no servers)."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest

from raftstore.mvcc import (
    CompactedError,
    Event,
    FutureRevisionError,
    InvalidArgumentError,
    KeyValue,
    LeaseNotFoundError,
    MVCCError,
    MVCCStore,
    SessionExpiredError,
    prefix_range_end,
)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- helpers


def put(s: MVCCStore, key: bytes, value: bytes = b"v", **kw: Any) -> dict[str, Any]:
    return s.apply({"op": "put", "key": key, "value": value, **kw})


def delete(s: MVCCStore, key: bytes, range_end: bytes = b"", **kw: Any) -> dict[str, Any]:
    return s.apply({"op": "delete_range", "key": key, "range_end": range_end, **kw})


def txn(s: MVCCStore, compare=(), success=(), failure=()) -> dict[str, Any]:
    return s.apply(
        {"op": "txn", "compare": list(compare), "success": list(success), "failure": list(failure)}
    )


def cmp(key: bytes, target: str, result: str, value: Any, range_end: bytes = b"") -> dict[str, Any]:
    return {"key": key, "range_end": range_end, "target": target, "result": result, "value": value}


def p(key: bytes, value: bytes = b"v", **kw: Any) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value, **kw}


def kvt(kv: KeyValue) -> tuple:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def keys(s: MVCCStore, key: bytes = b"", range_end: bytes = b"\0", **kw: Any) -> list[bytes]:
    return [kv.key for kv in s.range(key, range_end, **kw).kvs]


def expect(code: str, fn, *args: Any, **kw: Any) -> MVCCError:
    with pytest.raises(MVCCError) as ei:
        fn(*args, **kw)
    assert ei.value.code == code, ei.value.to_dict()
    assert ei.value.message
    return ei.value


# ------------------------------------------------------------ prefix/range


@pytest.mark.parametrize(
    "prefix,end",
    [
        (b"a", b"b"),
        (b"abc", b"abd"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"a\xfe\xff", b"a\xff"),
        (b"\xff", b"\0"),
        (b"\xff\xff", b"\0"),
        (b"", b"\0"),
    ],
)
def test_prefix_range_end(prefix: bytes, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


def test_empty_store_starts_at_revision_1() -> None:
    s = MVCCStore()
    assert s.revision == 1 and s.compact_revision == 0
    r = s.range(b"", b"\0")
    assert (r.kvs, r.count, r.more, r.revision) == ([], 0, False, 1)
    assert s.apply({"op": "noop"}) == {"op": "noop", "revision": 1}


def test_revisions_and_versions_per_key() -> None:
    s = MVCCStore()
    assert put(s, b"a", b"1")["revision"] == 2
    assert put(s, b"b", b"1")["revision"] == 3
    r = put(s, b"a", b"2", prev_kv=True)
    assert r["revision"] == 4
    assert r["prev_kv"] == {"k": b"a", "v": b"1", "cr": 2, "mr": 2, "ver": 1, "lease": 0}
    assert put(s, b"a", b"3")["prev_kv"] is None  # not requested
    assert kvt(s.get(b"a")) == (b"a", b"3", 2, 5, 3, 0)
    assert kvt(s.get(b"b")) == (b"b", b"1", 3, 3, 1, 0)
    assert s.revision == 5


def test_create_and_mod_revision_across_delete_and_recreate() -> None:
    s = MVCCStore()
    put(s, b"k", b"1")  # 2
    put(s, b"k", b"2")  # 3
    r = delete(s, b"k", prev_kv=True)  # 4
    assert r["revision"] == 4 and r["deleted"] == 1
    assert r["prev_kvs"] == [{"k": b"k", "v": b"2", "cr": 2, "mr": 3, "ver": 2, "lease": 0}]
    assert s.get(b"k") is None
    put(s, b"k", b"3")  # 5
    assert kvt(s.get(b"k")) == (b"k", b"3", 5, 5, 1, 0)
    put(s, b"k", b"4")  # 6
    assert kvt(s.get(b"k")) == (b"k", b"4", 5, 6, 2, 0)
    # old incarnation still visible at past revisions
    assert kvt(s.get(b"k", revision=3)) == (b"k", b"2", 2, 3, 2, 0)
    assert s.get(b"k", revision=4) is None
    assert s.get(b"k", revision=1) is None


def test_delete_matching_nothing_does_not_bump_revision() -> None:
    s = MVCCStore()
    put(s, b"a")
    before = s.digest()
    r = delete(s, b"zz")
    assert r == {"op": "delete_range", "revision": 2, "deleted": 0}
    r = delete(s, b"x", b"\0", prev_kv=True)
    assert r["deleted"] == 0 and r["prev_kvs"] == [] and s.revision == 2
    assert s.digest() == before
    delete(s, b"a")
    assert delete(s, b"a")["deleted"] == 0  # already a tombstone
    assert s.revision == 3


def test_delete_range_one_revision_for_all_keys() -> None:
    s = MVCCStore()
    for k in [b"a", b"b1", b"b2", b"b3", b"c"]:
        put(s, k)
    r = delete(s, b"b", prefix_range_end(b"b"), prev_kv=True)
    assert r["deleted"] == 3 and r["revision"] == 7
    assert [kv["k"] for kv in r["prev_kvs"]] == [b"b1", b"b2", b"b3"]
    assert keys(s) == [b"a", b"c"]
    evs = s.events_since(7, b"", b"\0")
    assert [(e.type, e.kv.key, e.kv.mod_revision, e.kv.version, e.kv.value) for e in evs] == [
        ("DELETE", b"b1", 7, 0, b""),
        ("DELETE", b"b2", 7, 0, b""),
        ("DELETE", b"b3", 7, 0, b""),
    ]
    assert evs[0].prev_kv is not None and evs[0].prev_kv.key == b"b1"


def test_range_prefix_limit_count_more() -> None:
    s = MVCCStore()
    for k in [b"a", b"b/1", b"b/2", b"b/3", b"b0", b"c"]:
        put(s, k, k.upper())
    r = s.range(b"b/", prefix_range_end(b"b/"))
    assert [kv.key for kv in r.kvs] == [b"b/1", b"b/2", b"b/3"]
    assert (r.count, r.more, r.revision) == (3, False, 7)
    r = s.range(b"b/", prefix_range_end(b"b/"), limit=2)
    assert [kv.key for kv in r.kvs] == [b"b/1", b"b/2"] and r.count == 3 and r.more
    r = s.range(b"b/", prefix_range_end(b"b/"), limit=3)
    assert len(r.kvs) == 3 and not r.more
    r = s.range(b"b", b"c", keys_only=True)
    assert [kv.value for kv in r.kvs] == [b""] * 4 and [kv.key for kv in r.kvs][-1] == b"b0"
    r = s.range(b"a", b"\0", count_only=True)
    assert r.kvs == [] and r.count == 6
    assert keys(s, b"b0", b"\0") == [b"b0", b"c"]  # \0: everything >= key
    assert keys(s, b"", b"\0") == [b"a", b"b/1", b"b/2", b"b/3", b"b0", b"c"]
    assert keys(s, b"c", b"a") == []  # range_end <= key
    assert keys(s, b"b/2", b"") == [b"b/2"]
    assert keys(s, b"zzz", b"") == []
    assert s.range(b"a").kvs[0].value == b"A"
    assert s.range(b"b", b"c").to_wire()["count"] == 4


def test_range_wire_roundtrip_through_msgpack() -> None:
    s = MVCCStore()
    put(s, b"a", b"x")
    delete(s, b"a")
    ev = s.events_since(1, b"a")
    wire = msgpack.unpackb(msgpack.packb([e.to_wire() for e in ev]))
    assert [Event.from_wire(w) for w in wire] == ev
    assert wire[1]["t"] == "DELETE" and wire[1]["prev"]["v"] == b"x"
    assert wire[0]["prev"] is None


def test_reads_at_past_revisions() -> None:
    s = MVCCStore()
    put(s, b"a", b"1")  # 2
    put(s, b"b", b"1")  # 3
    put(s, b"a", b"2")  # 4
    delete(s, b"b")  # 5
    put(s, b"c", b"1")  # 6
    assert keys(s, revision=1) == []
    assert keys(s, revision=2) == [b"a"]
    assert keys(s, revision=4) == [b"a", b"b"]
    assert s.range(b"a", revision=3).kvs[0].value == b"1"
    assert s.range(b"a", revision=4).kvs[0].value == b"2"
    assert keys(s, revision=5) == [b"a"]
    assert keys(s, revision=6) == [b"a", b"c"]
    r = s.range(b"", b"\0", revision=3)
    assert r.revision == 6 and r.count == 2  # header revision is current
    e = expect("future_revision", s.range, b"a", revision=7)
    assert "future" in e.message


# -------------------------------------------------------------- compaction


def test_compaction_semantics() -> None:
    s = MVCCStore()
    put(s, b"a", b"1")  # 2
    put(s, b"a", b"2")  # 3
    put(s, b"b", b"1")  # 4
    delete(s, b"b")  # 5
    put(s, b"c", b"1")  # 6
    put(s, b"a", b"3")  # 7
    assert s.stats()["history"] == 6 and s.stats()["events"] == 6

    assert s.apply({"op": "compact", "revision": 5}) == {"op": "compact", "revision": 7}
    assert s.compact_revision == 5 and s.revision == 7
    for rev in (1, 4):
        e = expect("compacted", s.range, b"a", revision=rev)
        assert e.details["compact_revision"] == 5
        assert isinstance(e, CompactedError)
    # at exactly the compact revision and later: still correct
    assert [kvt(kv) for kv in s.range(b"", b"\0", revision=5).kvs] == [(b"a", b"2", 2, 3, 2, 0)]
    assert keys(s, revision=6) == [b"a", b"c"]
    assert s.range(b"a", revision=6).kvs[0].value == b"2"
    assert s.range(b"a").kvs[0].value == b"3"
    # b's tombstone at 5 and older history are gone; a keeps rev 3 and 7
    st = s.stats()
    assert st["history"] == 3 and st["keys"] == 2
    assert st["events"] == 3  # revisions 5, 6, 7
    assert [e.kv.mod_revision for e in s.events_since(5, b"", b"\0")] == [5, 6, 7]
    e = expect("compacted", s.events_since, 4, b"", b"\0")
    assert e.details["compact_revision"] == 5

    e = expect("compacted", s.apply, {"op": "compact", "revision": 5})
    assert e.details["compact_revision"] == 5
    expect("compacted", s.apply, {"op": "compact", "revision": 3})
    expect("future_revision", s.apply, {"op": "compact", "revision": 8})
    # compacting at the current revision is allowed; version continuity kept
    s.apply({"op": "compact", "revision": 7})
    put(s, b"a", b"4")
    assert kvt(s.get(b"a")) == (b"a", b"4", 2, 8, 4, 0)
    assert s.stats()["history"] == 3


def test_compaction_of_recreated_key_keeps_new_incarnation() -> None:
    s = MVCCStore()
    put(s, b"k", b"1")  # 2
    delete(s, b"k")  # 3
    put(s, b"k", b"2")  # 4
    delete(s, b"k")  # 5
    s.apply({"op": "compact", "revision": 4})
    assert kvt(s.get(b"k", revision=4)) == (b"k", b"2", 4, 4, 1, 0)
    assert s.get(b"k") is None
    s.apply({"op": "compact", "revision": 5})
    assert s.stats()["history"] == 0 and s.stats()["keys"] == 0
    assert keys(s, revision=5) == []


def test_compaction_large_store_is_correct() -> None:
    s = MVCCStore()
    n = 50_000
    for i in range(n):
        put(s, b"key/%06d" % i, b"a")
    # second generation for every 5th key, delete every 7th
    for i in range(0, n, 5):
        put(s, b"key/%06d" % i, b"b")
    s.apply({"op": "delete_range", "key": b"key/", "range_end": b"key/001000"})
    mid = s.revision
    for i in range(0, n, 7):
        delete(s, b"key/%06d" % i)
    live_before = s.range(b"key/", prefix_range_end(b"key/"), count_only=True).count
    s.apply({"op": "compact", "revision": mid})
    r = s.range(b"key/", prefix_range_end(b"key/"), revision=mid, count_only=True)
    assert r.count == n - 1000
    assert s.range(b"key/", prefix_range_end(b"key/"), count_only=True).count == live_before
    assert s.range(b"key/001005", revision=mid).kvs[0].value == b"b"
    assert s.range(b"key/001001", revision=mid).kvs[0].value == b"a"
    assert s.get(b"key/000500", revision=mid) is None
    st = s.stats()
    # one record per key live at mid, plus a tombstone per later delete
    assert st["history"] == (n - 1000) + sum(1 for i in range(1000, n) if i % 7 == 0)
    # events kept: the 1000 deletes at mid itself plus one per later revision
    assert st["events"] == 1000 + (s.revision - mid) and st["keys"] == live_before


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


# ------------------------------------------------------------------ events


def test_events_since_ordering_filtering_and_limit() -> None:
    s = MVCCStore()
    put(s, b"a", b"1")  # 2
    put(s, b"b", b"1")  # 3
    txn(s, [], [p(b"a", b"2"), p(b"b", b"2"), p(b"c", b"2")])  # 4
    delete(s, b"a")  # 5
    put(s, b"b", b"3")  # 6
    all_ev = s.events_since(1, b"", b"\0")
    assert [(e.kv.mod_revision, e.type, e.kv.key) for e in all_ev] == [
        (2, "PUT", b"a"),
        (3, "PUT", b"b"),
        (4, "PUT", b"a"),
        (4, "PUT", b"b"),
        (4, "PUT", b"c"),
        (5, "DELETE", b"a"),
        (6, "PUT", b"b"),
    ]
    assert all_ev[5].kv == KeyValue(b"a", b"", 0, 5, 0, 0)
    assert all_ev[5].prev_kv == KeyValue(b"a", b"2", 2, 4, 2, 0)
    assert all_ev[2].prev_kv == KeyValue(b"a", b"1", 2, 2, 1, 0)
    assert [e.kv.mod_revision for e in s.events_since(4, b"", b"\0")] == [4, 4, 4, 5, 6]
    assert [e.kv.mod_revision for e in s.events_since(4, b"a")] == [4, 5]
    assert [e.kv.key for e in s.events_since(1, b"b", b"c")] == [b"b", b"b", b"b"]
    assert s.events_since(7, b"", b"\0") == []
    assert s.events_since(100, b"", b"\0") == []
    assert s.events_since(0, b"", b"\0") == []  # 0 means "from now on"
    # limit never splits a revision
    assert [e.kv.mod_revision for e in s.events_since(1, b"", b"\0", limit=3)] == [2, 3]
    assert [e.kv.mod_revision for e in s.events_since(1, b"", b"\0", limit=5)] == [2, 3, 4, 4, 4]
    assert [e.kv.mod_revision for e in s.events_since(1, b"", b"\0", limit=6)] == [2, 3, 4, 4, 4, 5]
    # a revision larger than the limit is returned whole so callers progress
    assert [e.kv.mod_revision for e in s.events_since(4, b"", b"\0", limit=1)] == [4, 4, 4]
    # the limit counts matching events only
    assert [e.kv.mod_revision for e in s.events_since(1, b"a", limit=2)] == [2, 4]
    # paging by "last revision + 1" reproduces the full stream
    paged: list[Event] = []
    start = 1
    while True:
        page = s.events_since(start, b"", b"\0", limit=2)
        if not page:
            break
        paged += page
        start = page[-1].kv.mod_revision + 1
    assert paged == all_ev


def test_events_since_compacted() -> None:
    s = MVCCStore()
    for i in range(10):
        put(s, b"k", b"%d" % i)  # revisions 2..11
    s.apply({"op": "compact", "revision": 6})
    e = expect("compacted", s.events_since, 5, b"k")
    assert e.details["compact_revision"] == 6
    assert [ev.kv.mod_revision for ev in s.events_since(6, b"k")] == [6, 7, 8, 9, 10, 11]
    assert s.events_since(0, b"k") == []
    assert s.stats()["events"] == 6


# ------------------------------------------------------------------ leases


def test_leases_attach_move_revoke() -> None:
    s = MVCCStore()
    assert s.apply({"op": "lease_grant", "id": 1, "ttl": 10}) == {
        "op": "lease_grant", "revision": 1, "id": 1, "ttl": 10,
    }
    s.apply({"op": "lease_grant", "id": 2, "ttl": 20})
    assert s.revision == 1  # grants do not bump
    e = expect("invalid_argument", s.apply, {"op": "lease_grant", "id": 1, "ttl": 5})
    assert "lease already exists" in e.message
    assert s.leases() == [{"id": 1, "ttl": 10}, {"id": 2, "ttl": 20}]

    put(s, b"a", lease=1)
    put(s, b"b", lease=1)
    put(s, b"c", lease=2)
    put(s, b"d")
    assert s.lease_ttl(1) == {"id": 1, "ttl": 10, "keys": [b"a", b"b"]}
    put(s, b"b", lease=2)  # move
    assert s.lease_ttl(1)["keys"] == [b"a"] and s.lease_ttl(2)["keys"] == [b"b", b"c"]
    put(s, b"b", b"new", ignore_lease=True)  # keeps lease 2
    assert s.get(b"b").lease == 2 and s.get(b"b").value == b"new"
    s.apply({"op": "put", "key": b"b", "ignore_value": True, "lease": 1})  # keeps value
    assert s.get(b"b").value == b"new" and s.lease_ttl(1)["keys"] == [b"a", b"b"]
    put(s, b"a")  # re-put without lease detaches
    assert s.lease_ttl(1)["keys"] == [b"b"] and s.get(b"a").lease == 0
    put(s, b"a", lease=1)
    delete(s, b"c")  # deleting detaches
    assert s.lease_ttl(2, keys=False) == {"id": 2, "ttl": 20}
    assert s.lease_ttl(2)["keys"] == []

    e = expect("lease_not_found", put, s, b"x", lease=3)
    assert isinstance(e, LeaseNotFoundError) and "3" in e.message
    rev = s.revision
    r = s.apply({"op": "lease_revoke", "id": 1})
    assert r == {"op": "lease_revoke", "revision": rev + 1, "deleted": 2}
    assert keys(s) == [b"d"]
    evs = s.events_since(rev + 1, b"", b"\0")
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in evs] == [
        ("DELETE", b"a", rev + 1),
        ("DELETE", b"b", rev + 1),
    ]
    expect("lease_not_found", s.lease_ttl, 1)
    expect("lease_not_found", s.apply, {"op": "lease_revoke", "id": 1})
    # revoking a lease without keys does not bump
    assert s.apply({"op": "lease_revoke", "id": 2}) == {
        "op": "lease_revoke", "revision": rev + 1, "deleted": 0,
    }
    assert s.leases() == []


def test_revoke_after_key_moved_and_recreated() -> None:
    s = MVCCStore()
    s.apply({"op": "lease_grant", "id": 9, "ttl": 1})
    put(s, b"k", lease=9)
    delete(s, b"k")
    put(s, b"k")  # new incarnation, no lease
    r = s.apply({"op": "lease_revoke", "id": 9})
    assert r["deleted"] == 0 and s.get(b"k") is not None


# ----------------------------------------------------------- exactly once


def test_exactly_once_duplicate_returns_stored_result() -> None:
    s = MVCCStore()
    r1 = s.apply_client("c1", 1, 1, p(b"a", b"1"))
    assert r1["revision"] == 2 and "duplicate" not in r1
    r1b = s.apply_client("c1", 1, 1, p(b"a", b"1"))
    assert r1b["duplicate"] is True and r1b["revision"] == 2
    assert s.revision == 2 and s.get(b"a").version == 1
    assert s._sessions["c1"].results[1] is r1  # stored == returned object
    assert "duplicate" not in r1  # the copy was marked, not the stored dict


def test_exactly_once_out_of_order_and_pruning() -> None:
    s = MVCCStore()
    r3 = s.apply_client("c", 3, 1, p(b"k3"))
    r1 = s.apply_client("c", 1, 1, p(b"k1"))
    r2 = s.apply_client("c", 2, 1, p(b"k2"))
    assert [r3["revision"], r1["revision"], r2["revision"]] == [2, 3, 4]
    assert s.apply_client("c", 3, 1, p(b"k3"))["revision"] == 2
    # client acknowledges 1 and 2
    r4 = s.apply_client("c", 4, 3, p(b"k4"))
    assert sorted(s._sessions["c"].results) == [3, 4]
    assert s.apply_client("c", 3, 3, p(b"k3"))["duplicate"]
    e = expect("session_expired", s.apply_client, "c", 2, 2, p(b"k2"))
    assert isinstance(e, SessionExpiredError) and e.details["first_incomplete"] == 3
    # a lower first_incomplete later never lowers the recorded one
    s.apply_client("c", 5, 1, p(b"k5"))
    assert s._sessions["c"].first_incomplete == 3
    assert s.revision == r4["revision"] + 1
    # clients are independent
    assert "duplicate" not in s.apply_client("other", 1, 1, p(b"o"))


def test_exactly_once_errors_are_remembered() -> None:
    s = MVCCStore()
    e = expect("lease_not_found", s.apply_client, "c", 1, 1, p(b"a", lease=5))
    assert s._sessions["c"].results[1] == {"error": e.to_dict()}
    s.apply({"op": "lease_grant", "id": 5, "ttl": 3})
    e2 = expect("lease_not_found", s.apply_client, "c", 1, 1, p(b"a", lease=5))
    assert e2.details["duplicate"] is True and s.get(b"a") is None
    # bad arguments to apply_client itself are not recorded
    before = s.digest()
    expect("invalid_argument", s.apply_client, "c", 2, 3, p(b"a"))
    expect("invalid_argument", s.apply_client, "", 2, 1, p(b"a"))
    expect("invalid_argument", s.apply_client, "c", -1, 0, p(b"a"))
    expect("session_expired", s.apply_client, "c", 0, 0, p(b"a"))
    assert s.digest() == before


def test_exactly_once_lru_eviction() -> None:
    s = MVCCStore(max_sessions=3)
    for c in ("a", "b", "c"):
        s.apply_client(c, 1, 1, p(c.encode()))
    s.apply_client("a", 1, 1, p(b"a"))  # touch a: b is now least recently used
    s.apply_client("d", 1, 1, p(b"d"))
    assert list(s._sessions) == ["c", "a", "d"] and s.stats()["sessions"] == 3
    rev = s.revision
    # documented limitation: evicted client is new again and its retry re-applies
    r = s.apply_client("b", 1, 1, p(b"b"))
    assert "duplicate" not in r and s.revision == rev + 1
    assert "c" not in s._sessions
    assert s.apply_client("a", 1, 1, p(b"a"))["duplicate"]


# ------------------------------------------------------------- determinism


def _mixed_ops() -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [
        {"op": "lease_grant", "id": 1, "ttl": 5},
        {"op": "lease_grant", "id": 2, "ttl": 5},
    ]
    for i in range(60):
        ops.append(p(b"k%02d" % (i % 17), b"v%d" % i, lease=[0, 1, 2][i % 3]))
        if i % 7 == 0:
            ops.append({"op": "delete_range", "key": b"k0", "range_end": b"k1", "prev_kv": True})
        if i % 11 == 0:
            ops.append(
                {
                    "op": "txn",
                    "compare": [cmp(b"k01", "version", ">", 1)],
                    "success": [p(b"t%d" % i), {"op": "range", "key": b"k", "range_end": b"l"}],
                    "failure": [p(b"f%d" % i, lease=3)],  # fails: no lease 3
                }
            )
    ops += [
        {"op": "lease_revoke", "id": 2},
        {"op": "compact", "revision": 30},
        {"op": "bogus"},
        p(b"z", lease=2),
        {"op": "lease_revoke", "id": 1},
    ]
    return ops


def _run(s: MVCCStore, ops: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for i, op in enumerate(ops):
        try:
            out.append(s.apply_client("cl%d" % (i % 3), i, max(0, i - 5), op))
        except MVCCError as e:
            out.append(e.to_dict())
    return out


def test_determinism_and_pickle_roundtrip() -> None:
    ops = _mixed_ops()
    a, b = MVCCStore(), MVCCStore()
    ra, rb = _run(a, ops), _run(b, ops)
    assert ra == rb and a.digest() == b.digest()
    assert any("code" in r for r in ra) and a.stats()["leases"] == 0

    c = pickle.loads(pickle.dumps(a))
    assert c.digest() == a.digest() and c.stats() == a.stats()
    assert c.range(b"", b"\0", revision=30).kvs == a.range(b"", b"\0", revision=30).kvs
    # both continue identically, including exactly-once state
    more = [p(b"n%d" % i) for i in range(5)] + [ops[-4]]
    assert _run(a, more) == _run(c, more)
    assert a.digest() == c.digest()
    assert a.apply_client("fresh", 3, 0, p(b"x")) == c.apply_client("fresh", 3, 0, p(b"x"))
    assert a.digest() == c.digest()

    e = pickle.loads(pickle.dumps(CompactedError("gone", compact_revision=4)))
    assert isinstance(e, CompactedError) and e.details == {"compact_revision": 4}


def test_digest_independent_of_hash_seed() -> None:
    # Lease key sets hash bytes; outputs must not depend on the per-process seed.
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from raftstore.mvcc import MVCCStore
        s = MVCCStore()
        s.apply({"op": "lease_grant", "id": 1, "ttl": 5})
        for i in range(200):
            s.apply({"op": "put", "key": b"key%d" % i, "value": b"v", "lease": 1})
        s.apply({"op": "lease_revoke", "id": 1})
        print(s.digest())
        """
    )
    digests = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script, str(ROOT)], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# ------------------------------------------------------------ invalid ops

INVALID_OPS = [
    {"op": "frobnicate"},
    {"op": 3},
    {},
    {"op": "put", "value": b"v"},  # missing key
    {"op": "put", "key": "str-key", "value": b"v"},
    {"op": "put", "key": b"", "value": b"v"},
    {"op": "put", "key": b"k", "value": "str"},
    {"op": "put", "key": b"k", "lease": -1},
    {"op": "put", "key": b"k", "lease": True},
    {"op": "put", "key": b"k", "prev_kv": 1},
    {"op": "put", "key": b"k", "value": b"v", "ignore_value": True},
    {"op": "put", "key": b"k", "lease": 1, "ignore_lease": True},
    {"op": "put", "key": b"missing", "ignore_value": True},
    {"op": "put", "key": b"k", "extra": 1},
    {"op": "delete_range", "key": b""},
    {"op": "delete_range", "key": 5},
    {"op": "range", "key": b"k", "limit": -1},
    {"op": "lease_grant", "id": 5, "ttl": -1},
    {"op": "lease_grant", "id": 5, "ttl": 0},
    {"op": "lease_grant", "id": 0, "ttl": 5},
    {"op": "lease_grant", "id": -3, "ttl": 5},
    {"op": "lease_grant", "id": 1, "ttl": 5},  # exists
    {"op": "lease_revoke", "id": "1"},
    {"op": "compact", "revision": -1},
    {"op": "compact"},
    {"op": "txn", "compare": "nope"},
    {"op": "txn", "compare": [cmp(b"k", "size", "==", 1)]},
    {"op": "txn", "compare": [cmp(b"k", "version", "<=", 1)]},
    {"op": "txn", "compare": [cmp(b"k", "value", "==", 1)]},
    {"op": "txn", "compare": [cmp(b"k", "version", "==", b"1")]},
    {"op": "txn", "compare": [{"key": b"k", "target": "version", "result": "=="}]},
    {"op": "txn", "success": [{"op": "compact", "revision": 2}]},
    {"op": "txn", "success": [{"op": "lease_grant", "id": 9, "ttl": 1}]},
    {"op": "txn", "success": ["put"]},
    "not a dict",
]


@pytest.mark.parametrize("op", INVALID_OPS, ids=lambda o: repr(o)[:60])
def test_invalid_ops_raise_invalid_argument_and_change_nothing(op: Any) -> None:
    s = MVCCStore()
    s.apply({"op": "lease_grant", "id": 1, "ttl": 5})
    put(s, b"k", b"v", lease=1)
    before = (s.digest(), s.stats())
    e = expect("invalid_argument", s.apply, op)
    assert isinstance(e, InvalidArgumentError)
    assert (s.digest(), s.stats()) == before


def test_nested_txn_depth_is_bounded() -> None:
    s = MVCCStore()
    op: dict[str, Any] = p(b"deep")
    for _ in range(40):
        op = {"op": "txn", "success": [op]}
    e = expect("invalid_argument", s.apply, op)
    assert "nesting" in e.message


def test_invalid_read_arguments() -> None:
    s = MVCCStore()
    expect("invalid_argument", s.range, b"")
    expect("invalid_argument", s.range, "a")
    expect("invalid_argument", s.range, b"a", revision=-1)
    expect("invalid_argument", s.events_since, -1, b"a")
    expect("invalid_argument", s.events_since, 1, b"")
    expect("invalid_argument", s.lease_ttl, 0)
    fut = expect("future_revision", s.range, b"a", revision=2)
    assert isinstance(fut, FutureRevisionError)


# ------------------------------------------------------ randomized model


class Model:
    """Straightforward reference: a dict per revision, no MVCC cleverness."""

    def __init__(self) -> None:
        self.rev = 1
        self.kv: dict[bytes, tuple] = {}  # key -> (value, create, mod, version, lease)
        self.leases: dict[int, set[bytes]] = {}
        self.snapshots: dict[int, dict[bytes, tuple]] = {1: {}}

    def _commit(self, new: dict[bytes, tuple]) -> None:
        if new != self.kv:
            self.rev += 1
            self.kv = new
            self.snapshots[self.rev] = dict(new)

    def _put(self, new: dict, key: bytes, value: bytes, lease: int, rev: int) -> None:
        old = new.get(key)
        if old:
            new[key] = (value, old[1], rev, old[3] + 1, lease)
        else:
            new[key] = (value, rev, rev, 1, lease)

    def put(self, key: bytes, value: bytes, lease: int) -> bool:
        if lease and lease not in self.leases:
            return False
        new = dict(self.kv)
        self._put(new, key, value, lease, self.rev + 1)
        self._commit(new)
        return True

    def delete(self, lo: bytes, hi: bytes | None) -> None:
        new = {k: v for k, v in self.kv.items() if not (k >= lo and (hi is None or k < hi))}
        self._commit(new)

    def txn(self, ck: bytes, ver: int, puts: list, dels: list) -> bool:
        ok = self.kv.get(ck, (None, 0, 0, 0, 0))[3] == ver
        if ok:
            if any(l and l not in self.leases for _, _, l in puts):
                return False
            new = dict(self.kv)
            for k, v, l in puts:
                self._put(new, k, v, l, self.rev + 1)
            for k in dels:
                new.pop(k, None)
            self._commit(new)
        return True

    def revoke(self, lid: int) -> None:
        self.leases.pop(lid)
        self._commit({k: v for k, v in self.kv.items() if v[4] != lid})


def _as_model(kvs: list[KeyValue]) -> dict[bytes, tuple]:
    return {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in kvs}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_against_model(seed: int) -> None:
    rng = random.Random(seed)
    s, m = MVCCStore(), Model()
    keyspace = [b"k%02d" % i for i in range(24)]
    next_lease = 1
    for step in range(1500):
        roll = rng.random()
        before = s.digest()
        if roll < 0.45:
            k = rng.choice(keyspace)
            lease = rng.choice([0, 0, 0, *m.leases, 999])
            ok = m.put(k, b"v%d" % step, lease)
            try:
                put(s, k, b"v%d" % step, lease=lease)
                assert ok
            except LeaseNotFoundError:
                assert not ok and s.digest() == before
        elif roll < 0.55:
            k = rng.choice(keyspace)
            delete(s, k)
            m.delete(k, k + b"\0")
        elif roll < 0.62:
            a, b = sorted(rng.sample(keyspace, 2))
            if rng.random() < 0.3:
                delete(s, a, b"\0")
                m.delete(a, None)
            else:
                delete(s, a, b)
                m.delete(a, b)
        elif roll < 0.8:
            chosen = rng.sample(keyspace, rng.randint(1, 5))
            ck = rng.choice(keyspace)
            ver = rng.choice([0, 1, 2, m.kv.get(ck, (0, 0, 0, 0, 0))[3]])
            puts = [(k, b"t%d" % step, rng.choice([0, 0, *m.leases, 777])) for k in chosen[:-1]]
            dels = [chosen[-1]] if rng.random() < 0.5 else []
            if not dels:
                puts.append((chosen[-1], b"t%d" % step, 0))
            ok = m.txn(ck, ver, puts, dels)
            op = {
                "op": "txn",
                "compare": [cmp(ck, "version", "==", ver)],
                "success": [p(k, v, lease=l) for k, v, l in puts]
                + [{"op": "delete_range", "key": d} for d in dels],
                "failure": [{"op": "range", "key": ck}],
            }
            try:
                r = s.apply(op)
                assert ok and r["revision"] == m.rev
            except LeaseNotFoundError:
                assert not ok and s.digest() == before
        elif roll < 0.86:
            s.apply({"op": "lease_grant", "id": next_lease, "ttl": 5})
            m.leases[next_lease] = set()
            next_lease += 1
        elif roll < 0.9 and m.leases:
            lid = rng.choice(sorted(m.leases))
            s.apply({"op": "lease_revoke", "id": lid})
            m.revoke(lid)
        elif roll < 0.92 and m.rev > s.compact_revision + 1:
            target = rng.randint(s.compact_revision + 1, m.rev)
            s.apply({"op": "compact", "revision": target})
            assert all(e.kv.mod_revision >= target for e in s.events_since(target, b"", b"\0"))
        assert s.revision == m.rev
        # current state
        assert _as_model(s.range(b"", b"\0").kvs) == m.kv
        # history: any readable revision matches the snapshot taken then
        if step % 10 == 0:
            for _ in range(3):
                r = rng.randint(max(1, s.compact_revision), m.rev)
                snap = m.snapshots[max(x for x in m.snapshots if x <= r)]
                assert _as_model(s.range(b"", b"\0", revision=r).kvs) == snap
                lo = rng.choice(keyspace)
                got = s.range(lo, prefix_range_end(lo[:2]), revision=r, limit=3)
                want = sorted(k for k in snap if lo <= k < prefix_range_end(lo[:2]))
                assert [kv.key for kv in got.kvs] == want[:3]
                assert got.count == len(want) and got.more == (len(want) > 3)
    # replaying the retained event log on the snapshot before it rebuilds the state
    start = max(1, s.compact_revision)
    base = dict(m.snapshots[max(x for x in m.snapshots if x <= start - 1)]) if start > 1 else {}
    for ev in s.events_since(start, b"", b"\0"):
        if ev.type == "PUT":
            base[ev.kv.key] = (ev.kv.value, ev.kv.create_revision, ev.kv.mod_revision, ev.kv.version, ev.kv.lease)
        else:
            del base[ev.kv.key]
    assert base == m.kv
    # lease bookkeeping matches the keys
    for info in s.leases():
        attached = s.lease_ttl(info["id"])["keys"]
        assert attached == sorted(k for k, v in m.kv.items() if v[4] == info["id"])
