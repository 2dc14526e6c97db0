"""Unit tests for raftstore.mvcc: determinism, digests and pickled snapshots.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from mvcc_helpers import cmp, p

from raftstore.mvcc import CompactedError, MVCCError, MVCCStore

ROOT = Path(__file__).resolve().parent.parent


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
            out.append(s.apply_client(f"cl{i % 3}", i, max(0, i - 5), op))
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
