"""Unit tests for raftstore.mvcc: invalid operations change nothing.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mvcc_helpers import cmp, expect, p, put

from raftstore.mvcc import FutureRevisionError, InvalidArgumentError, MVCCStore

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
