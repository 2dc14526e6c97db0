"""Node-level kubelet behaviour: power-off (node kill), kubelet restart, and the Ray actor.

- ``SIGUSR2`` to a kubelet process is its power cut (what ``KubeletActor.kill_node`` does inside Ray):
  every container process group dies at once (including background children), the kubelet dies,
  the Lease stops being renewed.
- A kubelet killed with SIGKILL takes its containers with it (PR_SET_PDEATHSIG); restarted, it finds
  its pods, restarts their containers (restartCount + 1, lastState ContainerStatusUnknown) on the same IPs.
- The Ray actor (``cluster.launcher.kubelet_actors.add_node`` / ``kill_node``): one small test, skipped without Ray.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from kubelet_fixtures import KubeEnv, alive, condition, cstatus, kube, pids_in_group, pod  # noqa: F401

pytestmark = pytest.mark.timeout(120)

FAMILY = "sleep 1000 & sleep 1000 & echo family up; wait"


def lease(kube: KubeEnv, name: str) -> dict[str, Any]:
    return kube.env.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}").json


def group_members(pgids: list[int]) -> list[int]:
    return [p for g in pgids for p in pids_in_group(g)]


def test_power_off_kills_every_pod_process_and_stops_the_lease(kube: KubeEnv) -> None:
    kp = kube.start_kubelet("n3", args=["--heartbeat", "0.5"])
    kube.create_pod(
        pod(
            "fam",
            "n3",
            [
                {"name": "sh", "image": "raykube/host", "command": ["sh", "-c", FAMILY]},
                {"name": "web", "image": "raykube/web"},
            ],
        )
    )
    kube.wait_pod("fam", lambda p: p["status"]["phase"] == "Running" and condition(p, "Ready") == "True")
    procs = kp.runtime()["processes"]
    pgids = [p["pgid"] for p in procs]
    kube.pgids.update(pgids)
    deadline = time.monotonic() + 5
    while len(group_members(pgids)) < 4:  # sh + 2 sleeps + web
        assert time.monotonic() < deadline, group_members(pgids)
        time.sleep(0.05)
    l1 = lease(kube, "n3")
    os.kill(kp.pid, signal.SIGUSR2)
    t0 = time.monotonic()
    kp.proc.wait(5)
    while group_members(pgids):
        assert time.monotonic() - t0 < 2.0, f"left behind: {group_members(pgids)}"
        time.sleep(0.02)
    print(
        f"\nnode power-off: kubelet and {len(procs)} containers' process groups gone in "
        f"{(time.monotonic() - t0) * 1000:.0f} ms"
    )
    kube.kubelets.pop("n3")
    l_after = lease(kube, "n3")
    time.sleep(1.6)  # > 3 heartbeats of 0.5 s
    l_later = lease(kube, "n3")
    assert l_later["spec"]["renewTime"] == l_after["spec"]["renewTime"]
    assert l_after["spec"]["renewTime"] >= l1["spec"]["renewTime"]
    # A powered-off machine reports nothing: the pod still looks Running until the control plane reacts.
    p = kube.get_pod("fam")
    assert p is not None and p["status"]["phase"] == "Running"
    kube.delete_pod("fam", grace=0)


def test_restarted_kubelet_recovers_its_pods(kube: KubeEnv) -> None:
    kp = kube.start_kubelet("n4")
    kube.create_pod(pod("phoenix", "n4", [{"name": "web", "image": "raykube/web"}]))
    p = kube.wait_pod("phoenix", lambda p: p["status"]["phase"] == "Running")
    ip = p["status"]["podIP"]
    pid = kp.runtime()["processes"][0]["pid"]
    os.kill(kp.pid, signal.SIGKILL)  # not a power cut: containers die with their kubelet (PDEATHSIG) ...
    kp.proc.wait(5)
    deadline = time.monotonic() + 3
    while alive(pid):
        assert time.monotonic() < deadline, "container outlived its kubelet"
        time.sleep(0.02)
    kube.kubelets.pop("n4")
    kp2 = kube.start_kubelet("n4", index=kp.index)  # ... and come back with it
    p = kube.wait_pod("phoenix", lambda p: cstatus(p).get("restartCount") == 1 and "running" in cstatus(p)["state"])
    assert p["status"]["podIP"] == ip
    assert cstatus(p)["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert kp2.runtime()["processes"][0]["pid"] != pid
    kube.delete_pod("phoenix", grace=0)
    kube.wait_gone("phoenix")


def test_kubelet_ray_actor_add_and_kill_node(kube: KubeEnv, tmp_path: Any) -> None:
    ray = pytest.importorskip("ray")
    from cluster.launcher import kubelet_actors as nodes

    token = kube.node_token("rn1")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(num_cpus=1, include_dashboard=False, namespace="raykube", log_to_driver=False, configure_logging=False)
    pgids: list[int] = []
    try:
        t0 = time.monotonic()
        info = nodes.add_node(
            "rn1",
            api_url=kube.env.url,
            token=token,
            ca_file=kube.env.ca,
            index=19500,
            state_dir=str(tmp_path / "rn1"),
            profile="demo",
            heartbeat_seconds=0.5,
        )
        print(f"\nkubelet actor up and registered in {time.monotonic() - t0:.2f} s: {info}")
        assert info["node"] == "rn1" and info["pid"] != os.getpid()
        assert "rn1" in nodes.node_actor_names()
        node = kube.env.request("GET", "/api/v1/nodes/rn1").json
        assert node["metadata"]["labels"]["raykube.io/ray-node-id"]
        kube.create_pod(
            pod("raypod", "rn1", [{"name": "sh", "image": "raykube/host", "command": ["sh", "-c", FAMILY]}])
        )
        kube.wait_pod("raypod", lambda p: p["status"]["phase"] == "Running")
        handle = ray.get_actor("kubelet-rn1", namespace="raykube")
        rt = ray.get(handle.runtime.remote())
        pgids = [p["pgid"] for p in rt["processes"]]
        kube.pgids.update(pgids)
        deadline = time.monotonic() + 5
        while len(group_members(pgids)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # kubectl logs works through the actor-hosted kubelet too
        deadline = time.monotonic() + 5
        while "family up" not in kube.env.kubectl("logs", "raypod").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # exit codes survive the Ray worker's signal handling (the kubelet reaps its own children)
        kube.create_pod(
            pod(
                "raycrash",
                "rn1",
                [{"name": "c", "image": "raykube/crash", "args": ["--after", "0", "--code", "3"]}],
                restartPolicy="Never",
            )
        )
        p = kube.wait_pod("raycrash", lambda p: p["status"]["phase"] == "Failed")
        assert cstatus(p)["state"]["terminated"]["exitCode"] == 3
        out = nodes.kill_node("rn1")
        assert out["pids_left"] == []
        assert group_members(pgids) == []
        assert not alive(info["pid"])
        r1 = lease(kube, "rn1")["spec"]["renewTime"]
        time.sleep(1.5)
        assert lease(kube, "rn1")["spec"]["renewTime"] == r1, "a killed node must not renew its lease"
        assert "rn1" not in nodes.node_actor_names()  # not restarted by Ray
        kube.delete_pod("raypod", grace=0)
        kube.delete_pod("raycrash", grace=0)
    finally:
        for g in pgids:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
        ray.shutdown()


def test_hollow_fleet_runs_pods_without_processes(kube: KubeEnv, tmp_path: Any) -> None:
    import subprocess
    import sys

    from apiserver_fixtures import ROOT, kill_pid

    tok = tmp_path / "admin.token"
    tok.write_text(kube.env.tokens["admin"])
    ready = tmp_path / "ready.json"
    n = 20
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cluster.hollow",
            "--count",
            str(n),
            "--prefix",
            "hollow-",
            "--index-base",
            "15000",
            "--api",
            kube.env.url,
            "--token-file",
            str(tok),
            "--ca",
            kube.env.ca,
            "--state-dir",
            str(tmp_path / "h"),
            "--profile",
            "demo",
            "--ready-file",
            str(ready),
        ],
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "hollow.log", "wb"),
        start_new_session=True,
    )
    try:
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() - t0 < 30, (tmp_path / "hollow.log").read_text()
            time.sleep(0.05)
        print(f"\n{n} hollow nodes registered in {time.monotonic() - t0:.2f} s")
        nodes_ = kube.env.request("GET", "/api/v1/nodes?labelSelector=raykube.io/hollow%3Dtrue").json["items"]
        assert len(nodes_) == n
        for i in range(2 * n):
            kube.create_pod(
                pod(
                    f"hp-{i}",
                    f"hollow-{i % n}",
                    [{"name": "web", "image": "raykube/web", "readinessProbe": {"tcpSocket": {"port": 8080}}}],
                )
            )
        kube.create_pod(
            pod(
                "hcrash",
                "hollow-0",
                [{"name": "c", "image": "raykube/crash", "env": [{"name": "CRASH_AFTER", "value": "0.1"}]}],
            )
        )
        deadline = time.monotonic() + 20
        while True:
            items = kube.env.request("GET", "/api/v1/namespaces/default/pods").json["items"]
            ok = [
                p
                for p in items
                if p["metadata"]["name"].startswith("hp-")
                and p["status"].get("phase") == "Running"
                and condition(p, "Ready") == "True"
            ]
            if len(ok) == 2 * n:
                break
            assert time.monotonic() < deadline, f"{len(ok)} of {2 * n} hollow pods Running"
            time.sleep(0.2)
        kube.wait_pod("hcrash", lambda p: cstatus(p).get("restartCount", 0) >= 1)
        for i in range(2 * n):
            kube.delete_pod(f"hp-{i}", grace=30)
        kube.delete_pod("hcrash")
        for i in range(2 * n):
            kube.wait_gone(f"hp-{i}", timeout=20)
    finally:
        kill_pid(proc.pid, timeout=10)
