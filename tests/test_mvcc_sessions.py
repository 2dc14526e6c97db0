"""Unit tests for raftstore.mvcc: exactly-once sessions.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

from mvcc_helpers import expect, p

from raftstore.mvcc import MVCCStore, SessionExpiredError

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
