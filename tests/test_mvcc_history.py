"""Unit tests for raftstore.mvcc: compaction and the watch event log.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

from mvcc_helpers import delete, expect, keys, kvt, p, put, txn

from raftstore.mvcc import CompactedError, Event, KeyValue, MVCCStore, prefix_range_end

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
