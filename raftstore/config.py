"""Cluster layout and Raft tuning, shared by ``raftstore up``, members and tests.

A cluster is a list of members, each with a name and three loopback
addresses: the client endpoint (msgpack frames), the Raft peer port
(pysyncobj) and the metrics/admin HTTP port. ``raftstore up`` writes the
layout to ``<data-dir>/cluster.json`` so every later command (and every
member) reads the same file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

DEFAULT_BASE_PORT = 32379
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class MemberSpec:
    name: str
    client: str  # host:port of the client endpoint
    raft: str  # host:port pysyncobj binds and peers dial
    metrics: str  # host:port of the Prometheus/admin HTTP endpoint


@dataclass(frozen=True)
class RaftTuning:
    """pysyncobj timing. etcd's defaults are a 100 ms heartbeat and a 1 s
    election timeout; these are tighter because every member is on one host
    and failover time is what the benchmarks measure."""

    election_min: float = 0.3
    election_max: float = 0.6
    heartbeat: float = 0.05
    # An isolated leader steps down after this long without hearing from a
    # majority; pysyncobj's default (30 s) would keep a deposed leader around.
    leader_fallback: float = 1.0
    tick: float = 0.02  # longest the Raft thread sleeps when nothing happens
    log_compaction_entries: int = 20000
    log_compaction_seconds: int = 300
    # Revisions of history kept before the leader proposes a compaction, like
    # etcd's --auto-compaction-mode=revision. 0 disables it.
    auto_compact_retention: int = 100_000


@dataclass
class ClusterConfig:
    members: list[MemberSpec]
    tuning: RaftTuning = field(default_factory=RaftTuning)

    @classmethod
    def local(cls, n: int = 3, base_port: int = DEFAULT_BASE_PORT, host: str = DEFAULT_HOST) -> "ClusterConfig":
        members = [
            MemberSpec(
                name=f"m{i}",
                client=f"{host}:{base_port + 10 * i}",
                raft=f"{host}:{base_port + 10 * i + 1}",
                metrics=f"{host}:{base_port + 10 * i + 2}",
            )
            for i in range(n)
        ]
        return cls(members=members)

    def member(self, name: str) -> MemberSpec:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"no member named {name!r} (members: {', '.join(m.name for m in self.members)})")

    def by_raft(self, raft_addr: str) -> MemberSpec | None:
        for m in self.members:
            if m.raft == raft_addr:
                return m
        return None

    @property
    def endpoints(self) -> list[str]:
        return [m.client for m in self.members]

    def to_json(self) -> str:
        return json.dumps({"members": [asdict(m) for m in self.members], "tuning": asdict(self.tuning)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ClusterConfig":
        raw = json.loads(text)
        return cls(
            members=[MemberSpec(**m) for m in raw["members"]],
            tuning=RaftTuning(**raw.get("tuning", {})),
        )

    def save(self, data_dir: str) -> str:
        os.makedirs(data_dir, exist_ok=True)
        path = os.path.join(data_dir, "cluster.json")
        with open(path, "w") as f:
            f.write(self.to_json())
        return path

    @classmethod
    def load(cls, data_dir: str) -> "ClusterConfig":
        path = os.path.join(data_dir, "cluster.json")
        try:
            with open(path) as f:
                return cls.from_json(f.read())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} not found: is there a raftstore cluster in {data_dir}?") from None
