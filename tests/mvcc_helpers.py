"""Shared helpers of the raftstore.mvcc unit tests (test_mvcc_*.py).

Plain functions, no fixtures and no state: every test builds its own store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from raftstore.mvcc import KeyValue, MVCCError, MVCCStore


def put(s: MVCCStore, key: bytes, value: bytes = b"v", **kw: Any) -> dict[str, Any]:
    return s.apply({"op": "put", "key": key, "value": value, **kw})


def delete(s: MVCCStore, key: bytes, range_end: bytes = b"", **kw: Any) -> dict[str, Any]:
    return s.apply({"op": "delete_range", "key": key, "range_end": range_end, **kw})


def txn(
    s: MVCCStore,
    compare: Iterable[dict[str, Any]] = (),
    success: Iterable[dict[str, Any]] = (),
    failure: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    return s.apply({"op": "txn", "compare": list(compare), "success": list(success), "failure": list(failure)})


def cmp(key: bytes, target: str, result: str, value: Any, range_end: bytes = b"") -> dict[str, Any]:
    return {"key": key, "range_end": range_end, "target": target, "result": result, "value": value}


def p(key: bytes, value: bytes = b"v", **kw: Any) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value, **kw}


def kvt(kv: KeyValue) -> tuple[Any, ...]:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def keys(s: MVCCStore, key: bytes = b"", range_end: bytes = b"\0", **kw: Any) -> list[bytes]:
    return [kv.key for kv in s.range(key, range_end, **kw).kvs]


def expect(code: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> MVCCError:
    with pytest.raises(MVCCError) as ei:
        fn(*args, **kw)
    assert ei.value.code == code, ei.value.to_dict()
    assert ei.value.message
    return ei.value
