"""Metrics, status, the role-change event log and the HTTP admin endpoint."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
from conftest import leader_of

from raftstore.statusview import render


async def test_metrics_status_events_and_http_admin(make_cluster, client_for) -> None:
    cluster = make_cluster()
    client = client_for(cluster)
    leader = await leader_of(client, cluster)
    for i in range(20):
        await client.put(f"m/{i}".encode(), b"v")
    await client.get(b"m/", prefix=True)
    spec = cluster.config.member(leader)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{spec.metrics}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        for name in (
            "raftstore_role",
            "raftstore_term",
            "raftstore_commit_index",
            "raftstore_applied_index",
            "raftstore_elections_seen",
            "raftstore_proposals_total",
            "raftstore_applied_ops_total",
            "raftstore_fsync_seconds_bucket",
            "raftstore_client_ops_total",
        ):
            assert name in text, name
        assert f'raftstore_role{{member="{leader}",role="leader"}} 1.0' in text
        assert 'op="put",outcome="ok"' in text
        async with http.get(f"http://{spec.metrics}/status") as resp:
            st = await resp.json()
        assert st["role"] == "leader" and st["revision"] >= 21
        # Partition over HTTP: drop traffic to one follower, then heal.
        follower = next(m.name for m in cluster.config.members if m.name != leader)
        async with http.post(f"http://{spec.metrics}/admin/partition", json={"drop_to": [follower]}) as resp:
            assert resp.status == 200 and (await resp.json())["drop_to"] == [follower]
        async with http.post(f"http://{spec.metrics}/admin/partition", json={"drop_to": ["nobody"]}) as resp:
            assert resp.status == 400
        async with http.post(f"http://{spec.metrics}/admin/partition", data=b"{not json") as resp:
            assert resp.status == 400
        async with http.post(f"http://{spec.metrics}/admin/heal") as resp:
            assert (await resp.json()) == {"drop_to": [], "drop_from": []}
    rows = await client.cluster_status()
    for r in rows:
        for field in (
            "name",
            "endpoint",
            "pid",
            "role",
            "term",
            "leader",
            "commit_index",
            "applied_index",
            "revision",
            "log_size",
            "elections_seen",
        ):
            assert field in r
    render(rows, 0.0, 0)  # the live view renders real rows
    events_path = os.path.join(cluster.member_dir(leader), "raft-events.jsonl")
    events = [json.loads(line) for line in open(events_path)]
    assert any(e["role"] == "leader" and e["member"] == leader for e in events)


async def test_fsync_delay_injection_slows_writes_but_loses_nothing(make_cluster, client_for) -> None:
    cluster = make_cluster()
    client = client_for(cluster)
    leader = await leader_of(client, cluster)
    for m in cluster.config.members:
        await client.admin(m.client, "fsync_delay", seconds=0.05)
    loop = asyncio.get_running_loop()
    t = loop.time()
    for i in range(5):
        await client.put(f"slow/{i}".encode(), b"v")
    # Every commit waits for the leader's and a follower's delayed fsync.
    assert loop.time() - t >= 5 * 0.05
    st = await client.status(cluster.config.member(leader).client)
    assert st["fsync_delay"] == 0.05
    for m in cluster.config.members:
        await client.admin(m.client, "fsync_delay", seconds=0)
    assert (await client.get(b"slow/", prefix=True)).count == 5


async def test_memory_and_disk_stay_bounded_by_compaction(make_cluster, client_for) -> None:
    """MVCC history is compacted by the leader (revision retention) and the
    Raft log by snapshots, so neither grows with the number of writes."""
    from raftstore.client import Compacted
    from raftstore.config import RaftTuning

    cluster = make_cluster(
        tuning=RaftTuning(auto_compact_retention=100, log_compaction_entries=200, log_compaction_seconds=1)
    )
    client = client_for(cluster)
    first = (await client.put(b"bounded", b"0"))["revision"]
    for i in range(600):
        await client.put(b"bounded", str(i).encode())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        rows = await client.cluster_status()
        if all(r["compact_revision"] > first and r["log_size"] < 600 for r in rows):
            break
        assert loop.time() < deadline, f"no compaction: {[(r['compact_revision'], r['log_size']) for r in rows]}"
        await asyncio.sleep(0.2)
    for r in rows:
        assert r["store"]["history"] <= 250, r["store"]
    try:
        await client.get(b"bounded", revision=first)
        raise AssertionError("a compacted revision was still readable")
    except Compacted as exc:
        assert exc.compact_revision > first
    kv = await client.get_one(b"bounded")
    assert kv is not None and kv.value == b"599" and kv.version == 601
