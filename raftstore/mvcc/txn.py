"""Txn resolution: deciding every branch of a txn against the pre-txn state.

etcd's ``compareToPath``: all compares of a txn, nested ones included, see
the state before the txn's first write, so the store decides the whole path
first (``resolve``) and then checks and executes a flat plan of puts,
deletes and ranges. Static validation of txns (shape, nesting, duplicate
keys) is the parser's job in ``ops``.

Concurrency model: pure functions that only read the index passed in; the
caller holds the store's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from .index import scan
from .ops import Compare, Delete, Put, Range, Txn
from .types import KeyValue

if TYPE_CHECKING:
    from sortedcontainers import SortedDict


class Resolved(NamedTuple):
    """A txn with every branch decision already taken (against pre-txn state)."""

    succeeded: bool
    ops: list[Step]


# What remains of a kv op once its txn branches are decided.
Step: TypeAlias = Put | Delete | Range | Resolved


def resolve(index: SortedDict, revision: int, txn: Txn) -> Resolved:
    """The branch path ``txn`` takes on the index as of ``revision``."""
    ok = all(_compare_holds(index, revision, c) for c in txn.compare)
    ops = txn.success if ok else txn.failure
    return Resolved(ok, [resolve(index, revision, o) if isinstance(o, Txn) else o for o in ops])


def _compare_holds(index: SortedDict, revision: int, c: Compare) -> bool:
    # etcd's applyCompare: a range holds if it holds for every existing key;
    # no key at all compares as a zero KeyValue, except that a value
    # compare then always fails (absent is not the same as empty).
    found = False
    for kv in scan(index, c.key, c.range_end, revision):
        found = True
        if not _cmp(_compare_target(kv, c.target), c.result, c.value):
            return False
    if found:
        return True
    if c.target == "value":
        return False
    return _cmp(0, c.result, c.value)


def _cmp(a: Any, result: str, b: Any) -> bool:
    if result == "==":
        return bool(a == b)
    if result == "!=":
        return bool(a != b)
    if result == "<":
        return bool(a < b)
    return bool(a > b)


def _compare_target(kv: KeyValue, target: str) -> Any:
    if target == "value":
        return kv.value
    if target == "version":
        return kv.version
    if target == "create":
        return kv.create_revision
    if target == "mod":
        return kv.mod_revision
    return kv.lease
