"""The scheduler as a real process against a real API server (``control`` fixture):
an unschedulable pod gets kube-scheduler's FailedScheduling event; a killed
scheduler restarted mid-work binds the rest; two replicas fail over through
the Lease; throughput of binding 300 pods onto 50 fake nodes.

No test depends on another: fixtures lay out the Nodes a test expects (``lay_out``: exactly
s0..s2, or s0..s2 and big; pods of NS cleared where a test needs room) and start the
scheduler it expects (sched-0, holding the Lease). Each test runs alone, or in any order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from apiserver_fixtures import kill_pid
from control_fixtures import ControlEnv, control, wait_for  # noqa: F401

from cluster.client import EVENTS, LEASES, NAMESPACES, NODES, PODS, Client

NS = "sched"


def pod(name: str, cpu: str = "100m", ns: str = NS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "containers": [
                {"name": "c", "image": "raykube/pause", "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}}}
            ],
            "terminationGracePeriodSeconds": 0,
            **spec,
        },
    }


async def create_pods(c: Client, names: list[str], cpu: str = "100m", conc: int = 32, **spec: Any) -> None:
    sem = asyncio.Semaphore(conc)

    async def one(n: str) -> None:
        async with sem:
            await c.create(PODS, pod(n, cpu, **spec), NS)

    await asyncio.gather(*(one(n) for n in names))


def bound(control: ControlEnv, prefix: str) -> dict[str, str]:
    async def f(c: Client) -> dict[str, str]:
        items, _ = await c.list_all(PODS, NS)
        return {
            p["metadata"]["name"]: p["spec"].get("nodeName")
            for p in items
            if p["metadata"]["name"].startswith(prefix) and p["spec"].get("nodeName")
        }

    return control.run(f)


SIZES = {"s0": ("2", "4Gi"), "s1": ("2", "4Gi"), "s2": ("2", "4Gi"), "big": ("128", "64Gi")}
THREE = ("s0", "s1", "s2")


@pytest.fixture(scope="module", autouse=True)
def namespace(control: ControlEnv) -> None:
    """Every test here uses namespace NS."""
    control.run(lambda c: c.create(NAMESPACES, {"metadata": {"name": NS}}))


def lay_out(control: ControlEnv, nodes: tuple[str, ...], clear_pods: bool) -> None:
    """Brings the cluster, whatever earlier tests left, to exactly the Nodes ``nodes`` (sizes from
    SIZES), live and Ready, and with ``clear_pods`` no pod in NS. If a pod or a Node was deleted,
    every scheduler process is stopped (SIGTERM): its cache could still hold them, so a fixture
    that wants a scheduler starts a fresh one after this."""

    async def run(c: Client) -> bool:
        deleted = False
        if clear_pods and (await c.list(PODS, NS, limit=1))["items"]:
            await c.request("DELETE", PODS.path(NS), params={"gracePeriodSeconds": 0}, timeout=120)
            deleted = True
        existing = {n["metadata"]["name"] for n in (await c.list_all(NODES))[0]}
        extra = sorted(existing - set(nodes))
        await asyncio.gather(*(control.kubelet.remove_node(n) for n in extra))
        for n in nodes:
            if n not in existing or n not in control.kubelet.live:
                cpu, memory = SIZES[n]
                await control.kubelet.add_node(n, cpu=cpu, memory=memory)
        return deleted or bool(extra)

    if control.run(run, timeout=150):
        for p in control.replicas("cluster.scheduler"):
            kill_pid(p.pid)
    if clear_pods:
        wait_for(lambda: not control.run(lambda c: c.list(PODS, NS, limit=1))["items"], 30, what=f"no pods in {NS}")


@pytest.fixture
def three_nodes(control: ControlEnv) -> None:
    """Nodes exactly s0, s1, s2 (2 cpu each), no pods in NS."""
    lay_out(control, THREE, clear_pods=True)


@pytest.fixture
def scheduler_on_three_nodes(control: ControlEnv, three_nodes: None) -> subprocess.Popen[bytes]:
    """``three_nodes``, then one scheduler, sched-0, holding the Lease; its process."""
    return control.ensure_scheduler("sched-0")


@pytest.fixture
def scheduler_on_three_nodes_and_big(control: ControlEnv) -> subprocess.Popen[bytes]:
    """Nodes exactly s0, s1, s2 and big (128 cpu), then one scheduler, sched-0, holding the Lease; its process."""
    lay_out(control, (*THREE, "big"), clear_pods=False)
    return control.ensure_scheduler("sched-0")


def test_unschedulable_pod_gets_failed_scheduling_event(
    control: ControlEnv, scheduler_on_three_nodes: subprocess.Popen[bytes]
) -> None:
    control.run(lambda c: c.create(PODS, pod("huge", cpu="64"), NS))
    control.run(lambda c: c.create(PODS, pod("small"), NS))
    wait_for(lambda: bound(control, "small"), 20, what="small pod bound")

    def failed_event() -> Any:
        evs = control.run(lambda c: c.list(EVENTS, NS, field_selector="involvedObject.name=huge"))["items"]
        return [e for e in evs if e["reason"] == "FailedScheduling"]

    evs = wait_for(failed_event, 20, what="FailedScheduling event")
    assert evs[0]["type"] == "Warning"
    assert evs[0]["message"] == "0/3 nodes are available: 3 Insufficient cpu.", evs[0]["message"]
    p = control.run(lambda c: c.get(PODS, "huge", NS))
    assert not p["spec"].get("nodeName")
    cond = [x for x in p["status"].get("conditions", []) if x["type"] == "PodScheduled"]
    assert cond and cond[0]["status"] == "False" and cond[0]["reason"] == "Unschedulable"
    assert p["status"]["phase"] == "Pending"
    # kubectl describe shows it the way people know it
    out = control.api.kubectl("describe", "pod", "huge", "-n", NS).stdout
    assert "FailedScheduling" in out and "Insufficient cpu" in out
    # A big enough node arrives -> the parked pod is retried and bound there.
    control.run(lambda c: control.kubelet.add_node("big", cpu="128", memory="64Gi"))
    wait_for(lambda: bound(control, "huge"), 30, what="huge pod bound after a big node joined")
    assert bound(control, "huge")["huge"] == "big"


def test_scheduler_killed_mid_work_is_restarted_and_carries_on(
    control: ControlEnv, scheduler_on_three_nodes_and_big: subprocess.Popen[bytes]
) -> None:
    # sched-0 runs and leads (fixture); add a standby replica, then create work.
    standby = control.start_scheduler(identity="sched-1")
    names = [f"k{i:03d}" for i in range(150)]
    creating = control.spawn(create_pods(control.client, names, conc=2))  # a steady stream of new pods
    leader_name = control.run(lambda c: c.get(LEASES, "kube-scheduler", "kube-system"))["spec"]["holderIdentity"]
    assert leader_name == "sched-0"
    wait_for(lambda: len(bound(control, "k")) >= 10, 30, interval=0.02, what="some pods bound")
    control.kill(scheduler_on_three_nodes_and_big)  # SIGKILL the leader mid-work
    n_at_kill = len(bound(control, "k"))
    creating.result(60)
    # The standby takes over after the Lease expires; a restarted sched-0 would resume at once.
    got = wait_for(
        lambda: len(bound(control, "k")) == len(names) and bound(control, "k"),
        60,
        what="all pods bound after the leader was killed",
    )
    holder = control.run(lambda c: c.get(LEASES, "kube-scheduler", "kube-system"))["spec"]["holderIdentity"]
    assert holder == "sched-1"
    assert n_at_kill < len(names), "kill happened mid-work"
    assert set(got.values()) <= {"s0", "s1", "s2", "big"}
    # Restart the killed replica: it stands by (no double binding is possible anyway: 409).
    control.start_scheduler(identity="sched-0")
    control.run(lambda c: c.create(PODS, pod("after-restart"), NS))
    wait_for(lambda: bound(control, "after-restart"), 30, what="pod bound after restart")
    control.kill(standby)


def test_throughput_300_pods_on_50_nodes(control: ControlEnv, three_nodes: None) -> None:
    for p in list(control.procs):
        if p.poll() is None:
            control.kill(p)

    async def setup(c: Client) -> None:
        await asyncio.gather(
            *(
                control.kubelet.add_node(
                    f"t{i:02d}", cpu="8", memory="32Gi", lease=False, run_pods=False, labels={"pool": "tp"}
                )
                for i in range(50)
            )
        )
        await create_pods(c, [f"tp{i:03d}" for i in range(300)], cpu="50m", nodeSelector={"pool": "tp"})

    control.run(setup, timeout=120)
    t0 = time.monotonic()
    control.start_scheduler(identity="sched-tp")
    wait_for(lambda: len(bound(control, "tp")) == 300, 90, interval=0.05, what="300 pods bound")
    elapsed = time.monotonic() - t0
    placed = bound(control, "tp")
    per_node: dict[str, int] = {}
    for n in placed.values():
        per_node[n] = per_node.get(n, 0) + 1
    line = wait_for(
        lambda: [x for x in control.log("scheduler.log").splitlines() if "throughput: bound 300" in x],
        10,
        what="the scheduler's throughput log line",
    )[-1]
    print(
        f"\n300 pods on 50 nodes: {elapsed:.2f} s from process start (incl. start-up and Lease takeover); "
        f"scheduler: {line.split('throughput: ')[1]}; per-node max {max(per_node.values())} "
        f"min {min(per_node.values())}"
    )
    assert max(per_node.values()) - min(per_node.values()) <= 4, per_node


def test_scheduler_ray_actor_killed_by_pid_is_restarted_and_carries_on(control: ControlEnv, three_nodes: None) -> None:
    ray = pytest.importorskip("ray")
    from cluster.actors.scheduler import SchedulerActor

    for p in list(control.procs):
        if p.poll() is None:
            kill_pid(p.pid)  # SIGTERM: the process releases the Lease
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        namespace="raykube-sched-test",
        log_to_driver=False,
        configure_logging=False,
    )
    handle = None
    try:
        cls = ray.remote(SchedulerActor).options(
            name="scheduler-0", max_restarts=-1, max_task_retries=0, max_concurrency=4, num_cpus=0
        )
        handle = cls.remote(
            control.api.url,
            control.api.tokens["scheduler"],
            Path(control.api.ca).read_text(),
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.5,
        )
        info = ray.get(handle.ready.remote(), timeout=60)
        wait_for(lambda: ray.get(handle.info.remote())["leader"], 20, what="actor leads")
        control.run(lambda c: create_pods(c, [f"ra{i:02d}" for i in range(10)]))
        wait_for(lambda: len(bound(control, "ra")) == 10, 30, what="pods bound by the actor")
        os.kill(info["actor_pid"], signal.SIGKILL)  # the actor process dies mid-life
        control.run(lambda c: create_pods(c, [f"rb{i:02d}" for i in range(20)]))
        wait_for(lambda: len(bound(control, "rb")) == 20, 60, what="pods bound after Ray restarted the actor")

        def restarted() -> Any:
            try:
                i2 = ray.get(handle.info.remote(), timeout=5)
            except Exception:  # noqa: BLE001 - still restarting
                return None
            return i2 if i2["actor_pid"] != info["actor_pid"] and i2["leader"] else None

        i2 = wait_for(restarted, 30, what="restarted actor")
        assert i2["identity"] == info["identity"]
        assert i2["stats"]["scheduled"] >= 1
    finally:
        if handle is not None:
            try:
                ray.get(handle.shutdown.remote(), timeout=10)
            except Exception:  # noqa: BLE001
                pass
            ray.kill(handle, no_restart=True)
        ray.shutdown()
