"""The cluster's three raftstore members, from the launcher's side: their layout, processes and status.

Each member runs as a process supervised by a Ray actor (``cluster.actors.raftstore_member``); the
launcher only makes the layout (``raftstore/cluster.json`` with free ports, at first start), finds
live member processes by PID file and command line, and asks the members for their status.

Concurrency: plain blocking functions; ``raftstore_status`` runs its own short asyncio loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from raftstore.config import ClusterConfig
from raftstore.localcluster import find_free_base_port

from ..actors.raftstore_member import member_pid
from .statedir import Paths

MEMBERS = ("m0", "m1", "m2")


def has_raftstore(p: Paths) -> bool:
    return os.path.exists(os.path.join(p.raftstore, "cluster.json"))


def ensure_raftstore_layout(p: Paths) -> ClusterConfig:
    if has_raftstore(p):
        return ClusterConfig.load(p.raftstore)
    cfg = ClusterConfig.local(len(MEMBERS), find_free_base_port())
    cfg.save(p.raftstore)
    return cfg


def member_pids(p: Paths) -> dict[str, int]:
    """Live raftstore member processes of this state dir (PID file + command line must match)."""
    out = {}
    for m in MEMBERS:
        pid = member_pid(os.path.join(p.raftstore, m), p.raftstore, m)
        if pid:
            out[m] = pid
    return out


def raftstore_status(p: Paths) -> list[dict[str, Any]]:
    """One row per member: role, term, leader, indexes, revision (or the error that came instead)."""
    # Lazy: raftstore's client (~35 ms) is needed by `status` only, and `up` starts the Ray head first.
    from raftstore.client import RaftstoreClient

    cfg = ClusterConfig.load(p.raftstore)

    async def run() -> list[dict[str, Any]]:
        c = RaftstoreClient(cfg.endpoints, timeout=2.0, request_timeout=1.0)
        try:
            return await c.cluster_status()
        finally:
            await c.close()

    try:
        rows = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        rows = [{"endpoint": ep, "error": str(exc)} for ep in cfg.endpoints]
    names = {m.client: m.name for m in cfg.members}
    keep = (
        "name",
        "endpoint",
        "pid",
        "role",
        "term",
        "leader",
        "commit_index",
        "applied_index",
        "revision",
        "elections_seen",
        "error",
    )
    return [
        {k: r.get(k) for k in keep if k in r} | {"name": r.get("name") or names.get(r.get("endpoint", ""))}
        for r in rows
    ]
