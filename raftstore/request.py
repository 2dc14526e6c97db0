"""Shape checks that turn client requests into state-machine operations.

The endpoint accepts msgpack requests from any client; before a write is
proposed to Raft, ``build_op`` keeps only the fields its op takes and checks
their types, so that a malformed request is refused at once with
``invalid_argument`` instead of costing a log entry. The state machine still
validates every op completely (``raftstore.mvcc.ops``); these checks only
catch what would otherwise be rejected after commit.

Concurrency model: pure functions; no shared state.
"""

from __future__ import annotations

from typing import Any, Final

# Requests the endpoint proposes through Raft, and reads it answers after a
# committed barrier (linearizable unless asked for "serializable").
WRITE_OPS: Final[frozenset[str]] = frozenset({"put", "delete_range", "txn", "compact", "lease_grant", "lease_revoke"})
BARRIER_READS: Final[frozenset[str]] = frozenset({"range", "lease_keepalive", "lease_ttl", "leases"})


class BadRequest(Exception):
    """A request of the wrong shape; answered with ``invalid_argument``."""


_OP_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "put": ("key", "value", "lease", "prev_kv", "ignore_value", "ignore_lease"),
    "delete_range": ("key", "range_end", "prev_kv"),
    "txn": ("compare", "success", "failure"),
    "compact": ("revision",),
    "lease_grant": ("ttl",),
    "lease_revoke": (),
}


def build_op(op: str, req: dict[str, Any]) -> dict[str, Any]:
    """The state-machine op for a request: only the fields that op takes."""
    item: dict[str, Any] = {"op": op}
    for name in _OP_FIELDS[op]:
        if name in req:
            item[name] = req[name]
    if op in ("lease_grant", "lease_revoke"):
        # "id" names the request on the wire, so leases travel as "lease_id".
        lease_id = req.get("lease_id", 0)
        if not isinstance(lease_id, int) or lease_id < 0 or (op == "lease_revoke" and lease_id == 0):
            raise BadRequest(f"{op}: 'lease_id' must be a positive integer")
        item["id"] = lease_id
    if op in ("put", "delete_range") and not isinstance(item.get("key"), bytes):
        raise BadRequest(f"{op}: 'key' must be bytes")
    if op == "put" and not isinstance(item.get("value", b""), bytes):
        raise BadRequest("put: 'value' must be bytes")
    if op == "lease_grant":
        ttl = item.get("ttl")
        if not isinstance(ttl, int) or ttl <= 0:
            raise BadRequest("lease_grant: 'ttl' must be a positive integer (seconds)")
    return item


def check_range_args(req: dict[str, Any]) -> None:
    if not isinstance(req.get("key", b""), bytes) or not isinstance(req.get("range_end", b""), bytes):
        raise BadRequest(f"{req.get('op')}: 'key' and 'range_end' must be bytes")
