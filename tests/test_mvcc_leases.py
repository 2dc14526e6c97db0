"""Unit tests for raftstore.mvcc: leases attach, move and revoke keys.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

from mvcc_helpers import delete, expect, keys, put

from raftstore.mvcc import LeaseNotFoundError, MVCCStore

# ------------------------------------------------------------------ leases


def test_leases_attach_move_revoke() -> None:
    s = MVCCStore()
    assert s.apply({"op": "lease_grant", "id": 1, "ttl": 10}) == {
        "op": "lease_grant",
        "revision": 1,
        "id": 1,
        "ttl": 10,
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
        "op": "lease_revoke",
        "revision": rev + 1,
        "deleted": 0,
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
