"""raftstore: an etcd-v3-style, Raft-replicated key-value store on pysyncobj.

The package is self-contained (it never imports ``cluster``). Its parts:

* ``mvcc``       the deterministic MVCC state machine (revisions, history, watch events, leases, sessions)
* ``journal``    a durable Raft log for pysyncobj: fsync'd group commit, torn-tail recovery
* ``transport``  pysyncobj's TCP transport with send-after-fsync and fault-injection gates
* ``member``     one member process: the Raft thread plus the asyncio client endpoint
* ``endpoint``   the client endpoint: connections, dispatch, batching requests into Raft entries,
                 with ``request`` (request shape checks), ``conn`` (a connection), ``watch``
                 (watch delivery) and ``lessor`` (the leader's lease expiry decisions)
* ``protocol``   length-prefixed msgpack frames shared by member and client
* ``client``     the async client: leader discovery, retries, exactly-once writes, resumable watches
* ``cli``        the ``raftstore`` command

Concurrency: a member runs a Raft thread and an asyncio thread; each module's
docstring says which of them may touch what it holds.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
