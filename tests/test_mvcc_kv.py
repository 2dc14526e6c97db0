"""Unit tests for raftstore.mvcc: revisions, versions, puts, deletes and ranges.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

import msgpack
import pytest
from mvcc_helpers import delete, expect, keys, kvt, put

from raftstore.mvcc import Event, MVCCStore, prefix_range_end

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
