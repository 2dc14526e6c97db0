"""Unit tests for raftstore.mvcc: randomized comparison with a reference model.

Pure state machine, no servers; shared helpers are in mvcc_helpers.py.
"""

from __future__ import annotations

import random

import pytest
from mvcc_helpers import cmp, delete, p, put

from raftstore.mvcc import KeyValue, LeaseNotFoundError, MVCCStore, prefix_range_end

# ------------------------------------------------------ randomized model


class Model:
    """Straightforward reference: a dict per revision, no MVCC cleverness."""

    def __init__(self) -> None:
        self.rev = 1
        self.kv: dict[bytes, tuple] = {}  # key -> (value, create, mod, version, lease)
        self.leases: dict[int, set[bytes]] = {}
        self.snapshots: dict[int, dict[bytes, tuple]] = {1: {}}

    def _commit(self, new: dict[bytes, tuple]) -> None:
        if new != self.kv:
            self.rev += 1
            self.kv = new
            self.snapshots[self.rev] = dict(new)

    def _put(self, new: dict, key: bytes, value: bytes, lease: int, rev: int) -> None:
        old = new.get(key)
        if old:
            new[key] = (value, old[1], rev, old[3] + 1, lease)
        else:
            new[key] = (value, rev, rev, 1, lease)

    def put(self, key: bytes, value: bytes, lease: int) -> bool:
        if lease and lease not in self.leases:
            return False
        new = dict(self.kv)
        self._put(new, key, value, lease, self.rev + 1)
        self._commit(new)
        return True

    def delete(self, lo: bytes, hi: bytes | None) -> None:
        new = {k: v for k, v in self.kv.items() if not (k >= lo and (hi is None or k < hi))}
        self._commit(new)

    def txn(self, ck: bytes, ver: int, puts: list, dels: list) -> bool:
        ok = self.kv.get(ck, (None, 0, 0, 0, 0))[3] == ver
        if ok:
            if any(l and l not in self.leases for _, _, l in puts):
                return False
            new = dict(self.kv)
            for k, v, l in puts:
                self._put(new, k, v, l, self.rev + 1)
            for k in dels:
                new.pop(k, None)
            self._commit(new)
        return True

    def revoke(self, lid: int) -> None:
        self.leases.pop(lid)
        self._commit({k: v for k, v in self.kv.items() if v[4] != lid})


def _as_model(kvs: list[KeyValue]) -> dict[bytes, tuple]:
    return {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in kvs}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_against_model(seed: int) -> None:
    rng = random.Random(seed)
    s, m = MVCCStore(), Model()
    keyspace = [b"k%02d" % i for i in range(24)]
    next_lease = 1
    for step in range(1500):
        roll = rng.random()
        before = s.digest()
        if roll < 0.45:
            k = rng.choice(keyspace)
            lease = rng.choice([0, 0, 0, *m.leases, 999])
            ok = m.put(k, b"v%d" % step, lease)
            try:
                put(s, k, b"v%d" % step, lease=lease)
                assert ok
            except LeaseNotFoundError:
                assert not ok and s.digest() == before
        elif roll < 0.55:
            k = rng.choice(keyspace)
            delete(s, k)
            m.delete(k, k + b"\0")
        elif roll < 0.62:
            a, b = sorted(rng.sample(keyspace, 2))
            if rng.random() < 0.3:
                delete(s, a, b"\0")
                m.delete(a, None)
            else:
                delete(s, a, b)
                m.delete(a, b)
        elif roll < 0.8:
            chosen = rng.sample(keyspace, rng.randint(1, 5))
            ck = rng.choice(keyspace)
            ver = rng.choice([0, 1, 2, m.kv.get(ck, (0, 0, 0, 0, 0))[3]])
            puts = [(k, b"t%d" % step, rng.choice([0, 0, *m.leases, 777])) for k in chosen[:-1]]
            dels = [chosen[-1]] if rng.random() < 0.5 else []
            if not dels:
                puts.append((chosen[-1], b"t%d" % step, 0))
            ok = m.txn(ck, ver, puts, dels)
            op = {
                "op": "txn",
                "compare": [cmp(ck, "version", "==", ver)],
                "success": [p(k, v, lease=l) for k, v, l in puts] + [{"op": "delete_range", "key": d} for d in dels],
                "failure": [{"op": "range", "key": ck}],
            }
            try:
                r = s.apply(op)
                assert ok and r["revision"] == m.rev
            except LeaseNotFoundError:
                assert not ok and s.digest() == before
        elif roll < 0.86:
            s.apply({"op": "lease_grant", "id": next_lease, "ttl": 5})
            m.leases[next_lease] = set()
            next_lease += 1
        elif roll < 0.9 and m.leases:
            lid = rng.choice(sorted(m.leases))
            s.apply({"op": "lease_revoke", "id": lid})
            m.revoke(lid)
        elif roll < 0.92 and m.rev > s.compact_revision + 1:
            target = rng.randint(s.compact_revision + 1, m.rev)
            s.apply({"op": "compact", "revision": target})
            assert all(e.kv.mod_revision >= target for e in s.events_since(target, b"", b"\0"))
        assert s.revision == m.rev
        # current state
        assert _as_model(s.range(b"", b"\0").kvs) == m.kv
        # history: any readable revision matches the snapshot taken then
        if step % 10 == 0:
            for _ in range(3):
                r = rng.randint(max(1, s.compact_revision), m.rev)
                snap = m.snapshots[max(x for x in m.snapshots if x <= r)]
                assert _as_model(s.range(b"", b"\0", revision=r).kvs) == snap
                lo = rng.choice(keyspace)
                got = s.range(lo, prefix_range_end(lo[:2]), revision=r, limit=3)
                want = sorted(k for k in snap if lo <= k < prefix_range_end(lo[:2]))
                assert [kv.key for kv in got.kvs] == want[:3]
                assert got.count == len(want) and got.more == (len(want) > 3)
    # replaying the retained event log on the snapshot before it rebuilds the state
    start = max(1, s.compact_revision)
    base = dict(m.snapshots[max(x for x in m.snapshots if x <= start - 1)]) if start > 1 else {}
    for ev in s.events_since(start, b"", b"\0"):
        if ev.type == "PUT":
            base[ev.kv.key] = (ev.kv.value, ev.kv.create_revision, ev.kv.mod_revision, ev.kv.version, ev.kv.lease)
        else:
            del base[ev.kv.key]
    assert base == m.kv
    # lease bookkeeping matches the keys
    for info in s.leases():
        attached = s.lease_ttl(info["id"])["keys"]
        assert attached == sorted(k for k, v in m.kv.items() if v[4] == info["id"])
