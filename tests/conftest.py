"""Shared fixtures: real raftstore clusters of real member processes.

Every cluster a test starts is torn down by PID in a finalizer, whether the
test passed or not.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Callable, Iterator

import pytest

from raftstore.client import RaftstoreClient
from raftstore.config import RaftTuning
from raftstore.localcluster import LocalCluster

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def make_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalCluster]]:
    """Factory: ``make_cluster(tuning=..., env=...)`` -> a started 3-member cluster."""
    started: list[LocalCluster] = []
    saved_env: dict[str, str | None] = {}

    def make(
        *,
        tuning: RaftTuning | None = None,
        env: dict[str, str] | None = None,
        extra_args: dict[str, list[str]] | None = None,
    ) -> LocalCluster:
        for k, v in (env or {}).items():
            saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v
        cluster = LocalCluster.create(str(tmp_path_factory.mktemp("rs")), tuning=tuning)
        started.append(cluster)
        cluster.start(extra_args=extra_args)
        cluster.wait_serving(timeout=30)
        return cluster

    yield make
    for cluster in started:
        cluster.kill_all()
    for k, v in saved_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., RaftstoreClient]]:
    clients: list[RaftstoreClient] = []

    def make(cluster: LocalCluster, **kw: Any) -> RaftstoreClient:
        c = RaftstoreClient(cluster.endpoints, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


async def leader_of(
    client: RaftstoreClient, cluster: LocalCluster, timeout: float = 20.0, exclude: str | None = None
) -> str:
    """Name of the member every live member agrees is leader."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        rows = await client.cluster_status()
        leaders = {r["name"] for r in rows if r.get("role") == "leader"}
        if len(leaders) == 1:
            name = leaders.pop()
            if name != exclude:
                return name
        await asyncio.sleep(0.05)
    raise TimeoutError("no single leader")


async def wait_converged(client: RaftstoreClient, cluster: LocalCluster, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Wait until every member reports the same revision and state digest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    digests: list[dict[str, Any]] = []
    while loop.time() < deadline:
        try:
            digests = [await client.digest(ep) for ep in cluster.endpoints]
        except Exception:
            await asyncio.sleep(0.1)
            continue
        if len({(d["digest"], d["revision"]) for d in digests}) == 1:
            return digests
        await asyncio.sleep(0.1)
    raise AssertionError(f"members did not converge: {digests}")
