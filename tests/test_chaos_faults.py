"""Fault injection against real member processes: partitions (one way and both),
kill / restart, leader kill, pause / resume, slow disk, heal-all."""

from __future__ import annotations

import asyncio
import time

import pytest

from raftstore.chaos.faults import Faults, FaultUnsupported
from raftstore.chaos.nemesis import NemesisRunner

pytestmark = pytest.mark.timeout(180)


async def part(faults: Faults, name: str) -> dict[str, list[str]]:
    st = await faults.client.status(faults.members[name])
    return st["partition"]


async def wait_leader_not(faults: Faults, old: str | None, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lead = await faults.leader(timeout=0.5)
        if lead is not None and lead != old:
            sts = await faults.statuses()
            if sum(1 for st in sts.values() if st.get("leader") == lead) >= 2:
                return lead
        await asyncio.sleep(0.05)
    raise AssertionError(f"no new leader (old {old})")


async def test_partitions_one_way_and_both_ways_and_heal(make_cluster) -> None:
    cluster = make_cluster()
    faults = Faults.for_cluster(cluster)
    try:
        assert await faults.leader(timeout=15.0) is not None
        # One way: m0 -> m1 dropped; m1 -> m0 flows.
        await faults.cut(["m0"], ["m1"], both_ways=False, tag="oneway")
        assert await part(faults, "m0") == {"drop_to": ["m1"], "drop_from": []}
        assert await part(faults, "m1") == {"drop_to": [], "drop_from": ["m0"]}
        assert await part(faults, "m2") == {"drop_to": [], "drop_from": []}
        # A second partition under another tag adds to the first.
        await faults.isolate("m2", tag="iso")
        assert await part(faults, "m2") == {"drop_to": ["m0", "m1"], "drop_from": ["m0", "m1"]}
        assert await part(faults, "m0") == {"drop_to": ["m1", "m2"], "drop_from": ["m2"]}
        await faults.heal(tag="oneway")
        assert await part(faults, "m0") == {"drop_to": ["m2"], "drop_from": ["m2"]}
        await faults.heal()
        for n in faults.names:
            assert await part(faults, n) == {"drop_to": [], "drop_from": []}
    finally:
        await faults.close()


async def test_isolating_the_leader_elects_another(make_cluster) -> None:
    cluster = make_cluster()
    faults = Faults.for_cluster(cluster)
    try:
        old = await faults.leader(timeout=15.0)
        assert old is not None
        await faults.isolate(old)
        new = await wait_leader_not(faults, old)
        assert new != old
        # The deposed leader steps down once it cannot hear a majority.
        deadline = time.monotonic() + 10
        while (await faults.client.status(faults.members[old]))["role"] == "leader":
            assert time.monotonic() < deadline, "isolated leader never stepped down"
            await asyncio.sleep(0.1)
        await faults.heal()
    finally:
        await faults.close()


async def test_kill_restart_pause_slow_disk_and_heal_all(make_cluster) -> None:
    cluster = make_cluster()
    faults = Faults.for_cluster(cluster)
    try:
        leader = await faults.leader(timeout=15.0)
        killed = await faults.kill_leader()
        assert killed == leader and cluster.pid(leader) is None
        assert not faults.is_up(leader)
        await wait_leader_not(faults, leader)
        # A partition set while a member is down reaches it when it restarts.
        other = next(n for n in faults.names if n != leader)
        await faults.cut([leader], [other], both_ways=True)
        await faults.start(leader)
        assert cluster.pid(leader) is not None
        assert await part(faults, leader) == {"drop_to": [other], "drop_from": [other]}
        await faults.heal()

        victim = next(n for n in faults.names if n != leader)
        await faults.pause(victim)
        with pytest.raises(Exception):
            await faults.client.status(faults.members[victim])
        await faults.slow_disk(leader, 0.02)
        st = await faults.client.status(faults.members[leader])
        assert st["fsync_delay"] == pytest.approx(0.02)
        await faults.kill(other if other != victim else leader)
        await faults.partition({victim: {leader}}, tag="p")

        problems = await faults.heal_all()
        assert problems == []
        assert not faults.killed and not faults.paused
        for n in faults.names:
            assert cluster.pid(n) is not None
            st = await faults.client.status(faults.members[n])
            assert st["partition"] == {"drop_to": [], "drop_from": []}
            assert st["fsync_delay"] == 0
        assert await faults.leader(timeout=15.0) is not None
    finally:
        await faults.close()


async def test_nemesis_runner_records_windows_and_heals(make_cluster) -> None:
    cluster = make_cluster()
    faults = Faults.for_cluster(cluster)
    try:
        assert await faults.leader(timeout=15.0) is not None
        events: list[str] = []
        runner = NemesisRunner(
            faults, ["pause", "majorities-ring"], duration=5.0, interval=2.0, hold=0.6, seed=4, on_event=events.append
        )
        await runner.run()
        windows = runner.windows
        assert {w.nemesis for w in windows} == {"pause", "majorities-ring"}
        for w in windows:
            assert w.error is None, w
            assert w.stop is not None and w.stop >= w.start
            assert w.description
        assert any(e.startswith("start pause") for e in events)
        assert not faults.paused and not faults.grudges
        assert await runner.heal_all() == []
    finally:
        await faults.close()


async def test_endpoints_mode_allows_admin_faults_only(make_cluster) -> None:
    cluster = make_cluster()
    faults = await Faults.for_endpoints(cluster.endpoints)
    try:
        assert sorted(faults.names) == ["m0", "m1", "m2"]
        assert not faults.can_signal
        with pytest.raises(FaultUnsupported, match="admin-endpoint"):
            await faults.kill("m0")
        with pytest.raises(FaultUnsupported):
            await faults.pause("m1")
        await faults.isolate("m1")
        assert await part(faults, "m1") == {"drop_to": ["m0", "m2"], "drop_from": ["m0", "m2"]}
        assert await faults.heal_all() == []
        assert await part(faults, "m1") == {"drop_to": [], "drop_from": []}
    finally:
        await faults.close()
