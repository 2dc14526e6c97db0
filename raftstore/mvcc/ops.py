"""Parsing and validation of state-machine operations into plans.

``parse_op`` turns one msgpack-shaped op dict (``{"op": "put", ...}``) into a
typed, immutable plan (``Put``, ``Txn``, ...) or raises
``InvalidArgumentError``. Everything that can be checked without looking at
the store is checked here, once, so the store executes plans without
re-validating them. Checks that need store state (does the lease exist, is
the revision compacted) belong to ``store``.

Like the rest of the state machine this is deterministic: error messages sort
anything that could otherwise come out in hash or insertion order.

Concurrency model: pure functions over their arguments; no shared state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple, TypeAlias, cast

from .types import MAX_INT64, MAX_LEASE_TTL, MAX_TXN_DEPTH, InvalidArgumentError

# --------------------------------------------------------------------------
# Plans (validated once, then executed without further checks)
# --------------------------------------------------------------------------


class Put(NamedTuple):
    key: bytes
    value: bytes
    lease: int
    prev_kv: bool
    ignore_value: bool
    ignore_lease: bool


class Delete(NamedTuple):
    key: bytes
    range_end: bytes
    prev_kv: bool


class Range(NamedTuple):
    key: bytes
    range_end: bytes
    revision: int
    limit: int
    keys_only: bool
    count_only: bool


class Compare(NamedTuple):
    key: bytes
    range_end: bytes
    target: str
    result: str
    value: Any


class Txn(NamedTuple):
    compare: tuple[Compare, ...]
    success: tuple[KVOp, ...]
    failure: tuple[KVOp, ...]


class Compact(NamedTuple):
    revision: int


class LeaseGrant(NamedTuple):
    id: int
    ttl: int


class LeaseRevoke(NamedTuple):
    id: int


class Noop(NamedTuple):
    pass


# The ops a txn branch may hold.
KVOp: TypeAlias = Put | Delete | Range | Txn
Op: TypeAlias = KVOp | Compact | LeaseGrant | LeaseRevoke | Noop


# --------------------------------------------------------------------------
# Field checking
# --------------------------------------------------------------------------

_REQUIRED: Final = object()

# field -> (kind, default); kinds are checked by check_field.
FieldSpec: TypeAlias = dict[str, tuple[str, Any]]
_OP_FIELDS: Final[dict[str, FieldSpec]] = {
    "put": {
        "key": ("bytes", _REQUIRED),
        "value": ("bytes", b""),
        "lease": ("lease", 0),
        "prev_kv": ("bool", False),
        "ignore_value": ("bool", False),
        "ignore_lease": ("bool", False),
    },
    "delete_range": {
        "key": ("bytes", _REQUIRED),
        "range_end": ("bytes", b""),
        "prev_kv": ("bool", False),
    },
    "range": {
        "key": ("bytes", _REQUIRED),
        "range_end": ("bytes", b""),
        "revision": ("uint", 0),
        "limit": ("uint", 0),
        "keys_only": ("bool", False),
        "count_only": ("bool", False),
    },
    "txn": {
        "compare": ("list", ()),
        "success": ("list", ()),
        "failure": ("list", ()),
    },
    "compact": {"revision": ("uint", _REQUIRED)},
    "lease_grant": {"id": ("lease_id", _REQUIRED), "ttl": ("ttl", _REQUIRED)},
    "lease_revoke": {"id": ("lease_id", _REQUIRED)},
    "noop": {},
}
_COMPARE_FIELDS: Final[FieldSpec] = {
    "key": ("bytes", _REQUIRED),
    "range_end": ("bytes", b""),
    "target": ("str", _REQUIRED),
    "result": ("str", _REQUIRED),
    "value": ("any", _REQUIRED),
}
_TXN_BRANCH_OPS: Final[frozenset[str]] = frozenset({"put", "delete_range", "range", "txn"})
_COMPARE_TARGETS: Final[frozenset[str]] = frozenset({"value", "version", "create", "mod", "lease"})
_COMPARE_RESULTS: Final[frozenset[str]] = frozenset({"==", "!=", "<", ">"})


def is_int(v: Any) -> bool:
    # bool is an int subclass; a True lease id is a client bug, not lease 1.
    return type(v) is int


def check_field(where: object, name: str, kind: str, v: Any) -> None:
    """Raise ``invalid_argument`` unless ``v`` is of ``kind`` (``FieldSpec`` kinds)."""
    # One flat chain, no helper call: this runs for every field of every op.
    bad: str | None = None
    if kind == "bytes":
        if type(v) is not bytes:
            bad = "must be bytes"
    elif kind == "bool":
        if type(v) is not bool:
            bad = "must be a bool"
    elif kind == "uint":
        if not is_int(v) or v < 0:
            bad = "must be a non-negative int"
        elif v > MAX_INT64:
            bad = "must fit in int64"
    elif kind == "lease":
        if not is_int(v) or v < 0 or v > MAX_INT64:
            bad = "must be an int in [0, 2**63)"
    elif kind == "lease_id":
        if not is_int(v) or v <= 0 or v > MAX_INT64:
            bad = "must be an int in [1, 2**63)"
    elif kind == "ttl":
        if not is_int(v) or v <= 0 or v > MAX_LEASE_TTL:
            bad = f"must be an int in [1, {MAX_LEASE_TTL}]"
    elif kind == "list":
        if not isinstance(v, (list, tuple)):
            bad = "must be a list"
    elif kind == "str" and type(v) is not str:
        bad = "must be a str"
    if bad is not None:
        raise InvalidArgumentError(f"{where}: field {name!r} {bad} (got {type(v).__name__})", field=name)


class _Where:
    """An error-message prefix built only if an error is raised: formatting
    it for every valid op cost more than validating the op."""

    __slots__ = ("base", "name")

    def __init__(self, base: object, name: str) -> None:
        self.base = base
        self.name = name

    def __str__(self) -> str:
        return f"{self.base} {self.name!r}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _take_fields(where: object, d: Any, spec: FieldSpec, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise InvalidArgumentError(f"{where} must be a dict, got {type(d).__name__}")
    unknown = [k for k in d if k not in spec and k not in skip]
    if unknown:
        # sorted reprs: deterministic message even for mixed str/bytes keys
        names = ", ".join(sorted(repr(k) for k in unknown))
        raise InvalidArgumentError(f"{where}: unknown field(s) {names}")
    out: dict[str, Any] = {}
    for name, (kind, default) in spec.items():
        if name in d:
            v = d[name]
        elif default is _REQUIRED:
            raise InvalidArgumentError(f"{where}: missing required field {name!r}", field=name)
        else:
            v = default
        check_field(where, name, kind, v)
        out[name] = v
    return out


def check_range_key(where: object, key: bytes, range_end: bytes) -> None:
    # etcd rejects an empty key for single-key ops; with a range_end an empty
    # key simply means "from the first key".
    if not key and not range_end:
        raise InvalidArgumentError(f"{where}: key must not be empty")


# --------------------------------------------------------------------------
# Key ranges
# --------------------------------------------------------------------------


def range_bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None, bool]:
    """(start, end or None for unbounded, single_key)."""
    if range_end == b"":
        return key, None, True
    if range_end == b"\0":
        return key, None, False
    return key, range_end, False


def in_range(k: bytes, start: bytes, end: bytes | None, single: bool) -> bool:
    if single:
        return k == start
    return k >= start and (end is None or k < end)


_Interval: TypeAlias = tuple[bytes, bytes | None]


def _intersects(k: bytes, dels: list[_Interval]) -> bool:
    return any(k >= s and (e is None or k < e) for s, e in dels)


def _check_intervals(ops: tuple[KVOp, ...]) -> tuple[dict[bytes, None], list[_Interval]]:
    """etcd's checkIntervals: no key may be put twice, or put and deleted, in one txn.

    Returns (puts, deletes) of this op list including nested txns. The then
    and else branches of one nested txn exclude each other, so the same key
    may be put in both. Dicts instead of sets keep iteration deterministic.
    """
    dels: list[_Interval] = []
    for op in ops:
        if isinstance(op, Delete):
            start, end, single = range_bounds(op.key, op.range_end)
            dels.append((start, start + b"\0") if single else (start, end))
    puts: dict[bytes, None] = {}
    for op in ops:
        if not isinstance(op, Txn):
            continue
        puts_then, dels_then = _check_intervals(op.success)
        puts_else, dels_else = _check_intervals(op.failure)
        for k in puts_then:
            if k in puts or _intersects(k, dels):
                raise _duplicate_key(k)
            puts[k] = None
        for k in puts_else:
            if (k in puts and k not in puts_then) or _intersects(k, dels):
                raise _duplicate_key(k)
            puts[k] = None
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if isinstance(op, Put):
            if op.key in puts or _intersects(op.key, dels):
                raise _duplicate_key(op.key)
            puts[op.key] = None
    return puts, dels


def _duplicate_key(k: bytes) -> InvalidArgumentError:
    return InvalidArgumentError(f"duplicate key given in txn request: {k!r}", key=k)


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def parse_op(op: Any, *, depth: int, where: object) -> Op:
    """The plan for one op dict; ``depth`` > 0 means inside a txn branch."""
    if not isinstance(op, Mapping):
        raise InvalidArgumentError(f"{where} must be a dict, got {type(op).__name__}")
    name = op.get("op")
    if type(name) is not str or name not in _OP_FIELDS:
        raise InvalidArgumentError(f"{where}: unknown op {name!r}", op=repr(name))
    if depth > 0 and name not in _TXN_BRANCH_OPS:
        raise InvalidArgumentError(f"{where}: op {name!r} is not allowed inside a txn")
    where = _Where(where, name)
    f = _take_fields(where, op, _OP_FIELDS[name], skip=("op",))
    if name == "put":
        check_range_key(where, f["key"], b"")
        if f["ignore_value"] and f["value"]:
            raise InvalidArgumentError(f"{where}: value is provided with ignore_value")
        if f["ignore_lease"] and f["lease"]:
            raise InvalidArgumentError(f"{where}: lease is provided with ignore_lease")
        return Put(f["key"], f["value"], f["lease"], f["prev_kv"], f["ignore_value"], f["ignore_lease"])
    if name == "delete_range":
        check_range_key(where, f["key"], f["range_end"])
        return Delete(f["key"], f["range_end"], f["prev_kv"])
    if name == "range":
        check_range_key(where, f["key"], f["range_end"])
        return Range(f["key"], f["range_end"], f["revision"], f["limit"], f["keys_only"], f["count_only"])
    if name == "txn":
        if depth >= MAX_TXN_DEPTH:
            raise InvalidArgumentError(f"{where}: txn nesting deeper than {MAX_TXN_DEPTH}")
        compare = tuple(_parse_compare(c, f"{where} compare[{i}]") for i, c in enumerate(f["compare"]))
        # depth > 0 admits only _TXN_BRANCH_OPS, i.e. KVOp.
        success = tuple(
            cast(KVOp, parse_op(o, depth=depth + 1, where=f"{where} success[{i}]")) for i, o in enumerate(f["success"])
        )
        failure = tuple(
            cast(KVOp, parse_op(o, depth=depth + 1, where=f"{where} failure[{i}]")) for i, o in enumerate(f["failure"])
        )
        if depth == 0:
            # Like etcd, the request is checked statically (both branches),
            # independent of which branch will run.
            _check_intervals(success)
            _check_intervals(failure)
        return Txn(compare, success, failure)
    if name == "compact":
        return Compact(f["revision"])
    if name == "lease_grant":
        return LeaseGrant(f["id"], f["ttl"])
    if name == "lease_revoke":
        return LeaseRevoke(f["id"])
    return Noop()


def _parse_compare(c: Any, where: str) -> Compare:
    f = _take_fields(where, c, _COMPARE_FIELDS)
    check_range_key(where, f["key"], f["range_end"])
    if f["target"] not in _COMPARE_TARGETS:
        raise InvalidArgumentError(
            f"{where}: unknown compare target {f['target']!r} (expected one of {sorted(_COMPARE_TARGETS)})"
        )
    if f["result"] not in _COMPARE_RESULTS:
        raise InvalidArgumentError(
            f"{where}: unknown compare result {f['result']!r} (expected one of {sorted(_COMPARE_RESULTS)})"
        )
    v = f["value"]
    if f["target"] == "value":
        if type(v) is not bytes:
            raise InvalidArgumentError(f"{where}: a value compare needs a bytes value")
    elif not is_int(v):
        raise InvalidArgumentError(f"{where}: a {f['target']} compare needs an int value")
    return Compare(f["key"], f["range_end"], f["target"], f["result"], v)
