"""Unit tests for the shape of the raftstore.mvcc package.

The client imports only its light ``types`` module, and snapshots pickled by
the single-module ``raftstore/mvcc.py`` of before the package split still load.
"""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import raftstore.mvcc
from raftstore.mvcc import CompactedError, LeaseNotFoundError, MVCCStore

ROOT = Path(__file__).resolve().parent.parent

# pickle.dumps(store) by the pre-split module, of a store built with
#   s = MVCCStore(max_sessions=4)
#   s.apply_client("c1", 0, 0, {"op": "lease_grant", "id": 7, "ttl": 30})
#   s.apply_client("c1", 1, 0, {"op": "put", "key": b"a", "value": b"1", "lease": 7})
#   s.apply_client("c2", 0, 0, {"op": "put", "key": b"b", "value": b"2"})
#   s.apply_client("c2", 1, 0, {"op": "delete_range", "key": b"b"})
#   s.apply_client("c2", 2, 1, {"op": "put", "key": b"c", "lease": 99})  # lease_not_found
#   s.apply({"op": "put", "key": b"b", "value": b"3"})
#   s.apply({"op": "compact", "revision": 3})
# It names raftstore.mvcc.MVCCStore, KeyValue, Event, Lease and _Session.
OLD_STORE_PICKLE = (
    "gAWVLQMAAAAAAACMDnJhZnRzdG9yZS5tdmNjlIwJTVZDQ1N0b3JllJOUKYGUfZQojAhyZXZpc2lvbpRLBYwQY29tcGFj"
    "dF9yZXZpc2lvbpRLA4wMbWF4X3Nlc3Npb25zlEsEjAZfaW5kZXiUjBtzb3J0ZWRjb250YWluZXJzLnNvcnRlZGRpY3SU"
    "jApTb3J0ZWREaWN0lJOUTn2UKEMBYZRdlGgAjAhLZXlWYWx1ZZSTlChoDUMBMZRLAksCSwFLB3SUUpRhQwFilF2UKGgQ"
    "KGgUQwEylEsDSwNLAUsAdJRSlGgQKGgUQwCUSwBLBEsASwB0lFKUaBAoaBRDATOUSwVLBUsBSwB0lFKUZXWGlFKUjAdf"
    "ZXZlbnRzlF2UKGgAjAVFdmVudJSTlIwDUFVUlGgYToeUUpRoJIwGREVMRVRFlGgbaBiHlFKUaCRoJWgeToeUUpRljAdf"
    "bGVhc2VzlH2USwdoAIwFTGVhc2WUk5QpgZROfZQojAJpZJRLB4wDdHRslEsejARrZXlzlI+UKGgNkHWGlGJzjAlfc2Vz"
    "c2lvbnOUjAtjb2xsZWN0aW9uc5SMC09yZGVyZWREaWN0lJOUKVKUKIwCYzGUaACMCF9TZXNzaW9ulJOUKYGUTn2UKIwQ"
    "Zmlyc3RfaW5jb21wbGV0ZZRLAIwHcmVzdWx0c5R9lChLAH2UKIwCb3CUjAtsZWFzZV9ncmFudJRoBUsBaDNLB2g0Sx51"
    "SwF9lChoRowDcHV0lGgFSwKMB3ByZXZfa3aUTnV1jAlsYXN0X3VzZWSUSwKMBW9yZGVylF2UKEsASwFldYaUYowCYzKU"
    "aD8pgZROfZQoaEJLAWhDfZQoSwF9lChoRowMZGVsZXRlX3JhbmdllGgFSwSMB2RlbGV0ZWSUSwF1SwJ9lIwFZXJyb3KU"
    "fZQojARjb2RllIwPbGVhc2Vfbm90X2ZvdW5klIwHbWVzc2FnZZSMEmxlYXNlIDk5IG5vdCBmb3VuZJRoM0tjdXN1aEtL"
    "BWhMXZQoSwFLAmV1hpRidYwNX3Nlc3Npb25fdGlja5RLBYwKX2xpdmVfa2V5c5RLAowIX3JlY29yZHOUSwR1Yi4="
)
# Its digest() and stats() as the pre-split module computed them.
OLD_STORE_DIGEST = "5dee0e32578c77352400c0a1976c5bed64cd29dafea7ba66ad5278844a2384e7"
OLD_STORE_STATS = {
    "revision": 5,
    "compact_revision": 3,
    "keys": 2,
    "history": 4,
    "events": 3,
    "leases": 1,
    "sessions": 2,
}
# pickle.dumps(CompactedError("gone", compact_revision=4)) by the pre-split module.
OLD_ERROR_PICKLE = (
    "gAWVaAAAAAAAAACMDnJhZnRzdG9yZS5tdmNjlIwQX2Vycm9yX2Zyb21fZGljdJSTlH2UKIwEY29kZZSMCWNvbXBhY3Rl"
    "ZJSMB21lc3NhZ2WUjARnb25llIwQY29tcGFjdF9yZXZpc2lvbpRLBHWFlFKULg=="
)


def test_snapshot_pickled_before_the_package_split_loads_unchanged() -> None:
    s = pickle.loads(base64.b64decode(OLD_STORE_PICKLE))
    assert isinstance(s, MVCCStore)
    assert s.digest() == OLD_STORE_DIGEST and s.stats() == OLD_STORE_STATS
    # The exactly-once state came along: retries are answered from it.
    assert s.apply_client("c1", 1, 0, {"op": "noop"})["duplicate"] is True
    with pytest.raises(LeaseNotFoundError) as ei:
        s.apply_client("c2", 2, 1, {"op": "noop"})
    assert ei.value.details == {"id": 99, "duplicate": True}
    # And a round trip through today's pickling keeps the state.
    assert pickle.loads(pickle.dumps(s)).digest() == s.digest()


def test_error_pickled_before_the_package_split_loads() -> None:
    e = pickle.loads(base64.b64decode(OLD_ERROR_PICKLE))
    assert isinstance(e, CompactedError) and e.details == {"compact_revision": 4}


def test_unknown_package_attribute_raises_attribute_error() -> None:
    assert not hasattr(raftstore.mvcc, "NoSuchName")


def test_client_imports_the_types_module_only() -> None:
    # A fresh interpreter: this one has the whole package loaded already.
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import raftstore.client
        heavy = sorted(m for m in sys.modules
                       if m.startswith("sortedcontainers") or m.startswith("raftstore.mvcc."))
        print(heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['raftstore.mvcc.types']"
