"""Kubelet + process runtime, end to end: a real API server, real kubelet processes, real container processes.

Two kubelets share the module's API server: ``n1`` limits containers with
whatever the host allows (cgroups here when writable), ``n2`` runs with
``--cgroups off`` (memory enforced by RSS polling). Pods are bound directly
with ``spec.nodeName`` (no scheduler in these tests). This file: the node,
a web pod, restarts and probes; ``test_kubelet_lifecycle.py``: termination,
limits, image and start errors, init containers, binding, admission, latency.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import threading
import time
from typing import Any

import pytest
from kubelet_fixtures import (  # noqa: F401
    KubeEnv,
    KubeletProc,
    alive,
    condition,
    cstatus,
    http_get,
    kube,
    nodes,
    pids_in_group,
    pod,
    running_ready,
)

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------------ node
def test_node_registered_with_capacity_and_lease_renewed(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    n1, n2 = nodes
    node = kube.env.request("GET", "/api/v1/nodes/n2").json
    st = node["status"]
    assert st["capacity"] == {"cpu": "3", "memory": "6Gi", "pods": "110"}
    assert st["allocatable"]["pods"] == "110"
    assert {"type": "InternalIP", "address": n2.node_ip} in st["addresses"]
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == n2.port
    assert node["spec"]["podCIDR"] == n2.info["podCIDR"]
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert node["metadata"]["annotations"]["raykube.io/memory-enforcement"] == "rss-poll"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n2"
    n1node = kube.env.request("GET", "/api/v1/nodes/n1").json
    assert n1node["metadata"]["annotations"]["raykube.io/memory-enforcement"] in ("cgroup-v1", "cgroup-v2", "rss-poll")
    out = kube.env.kubectl("get", "nodes", "-o", "wide").stdout
    assert "n1" in out and "n2" in out and "Ready" in out

    def lease() -> dict[str, Any]:
        return kube.env.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1").json

    l1 = lease()
    assert l1["spec"]["holderIdentity"] == "n1"
    assert l1["metadata"]["ownerReferences"][0]["kind"] == "Node"
    time.sleep(2.2)
    l2 = lease()
    assert l2["spec"]["renewTime"] > l1["spec"]["renewTime"]
    assert int(l2["metadata"]["resourceVersion"]) > int(l1["metadata"]["resourceVersion"])


# ------------------------------------------------------------------- web
def test_web_pod_runs_ready_serves_and_logs(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    n1, _ = nodes
    kube.create_pod(
        pod(
            "web",
            "n1",
            [
                {
                    "name": "web",
                    "image": "raykube/web",
                    "ports": [{"containerPort": 8080}],
                    "env": [
                        {"name": "MESSAGE", "value": "on $(NODE_NAME)"},
                        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    ],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                }
            ],
        )
    )
    p = kube.wait_pod("web", running_ready, what="Running and Ready")
    st = p["status"]
    ip = st["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(n1.info["podCIDR"])
    assert st["podIPs"] == [{"ip": ip}] and st["hostIP"] == n1.node_ip and st["startTime"]
    types = {c["type"]: c["status"] for c in st["conditions"]}
    assert types == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    cs = cstatus(p)
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["imageID"].startswith("raykube-builtin://raykube/web@sha256:")
    code, body = http_get(f"http://{ip}:8080/")
    assert code == 200 and body == "web on n1\n"
    info = json.loads(http_get(f"http://{ip}:8080/info")[1])
    assert info["pod"] == "web" and info["node"] == "n1" and info["podIP"] == ip and info["namespace"] == "default"
    c = n1.container("default", "web", "web")
    assert c and c["pid"] == info["pid"]
    # the process's environment and working directory
    with open(f"/proc/{c['pid']}/environ", "rb") as f:
        envs = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if "=" in kv)
    assert envs["POD_NAME"] == "web" and envs["POD_NAMESPACE"] == "default" and envs["POD_IP"] == ip
    assert envs["NODE_NAME"] == "n1" and envs["MY_IP"] == ip and envs["APP"] == "web"
    assert os.readlink(f"/proc/{c['pid']}/cwd").startswith(str(n1.state_dir))
    # cgroup limits, where the host allows them
    limits = n1.runtime()["limits"]
    if limits["memory"] == "cgroup-v1":
        mem_dir, cpu_dir = c["cgroup"]
        assert open(os.path.join(mem_dir, "memory.limit_in_bytes")).read().strip() == str(128 * 2**20)
        assert open(os.path.join(cpu_dir, "cpu.cfs_quota_us")).read().strip() == "50000"
        assert str(c["pid"]) in open(os.path.join(mem_dir, "cgroup.procs")).read().split()
    elif limits["memory"] == "cgroup-v2":
        assert open(os.path.join(c["cgroup"][0], "memory.max")).read().strip() == str(128 * 2**20)
        assert open(os.path.join(c["cgroup"][0], "cpu.max")).read().split()[0] == "50000"
    logs = kube.env.kubectl("logs", "web").stdout
    assert f"serving on http://{ip}:8080" in logs and '"GET / HTTP/1.1" 200' in logs
    assert kube.env.kubectl("logs", "web", "--tail=1").stdout.count("\n") == 1
    # kubectl logs -f streams new lines
    f = kube.env.kubectl_popen("logs", "-f", "web")
    try:
        time.sleep(0.5)
        http_get(f"http://{ip}:8080/followed")
        lines: list[str] = []
        t = threading.Thread(target=lambda: lines.extend(iter(f.stdout.readline, "")), daemon=True)  # type: ignore
        t.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("/followed" in ln for ln in lines):
            time.sleep(0.1)
        assert any("/followed" in ln for ln in lines)
    finally:
        os.killpg(f.pid, signal.SIGKILL)
        f.wait()
    kube.delete_pod("web", grace=5)
    kube.wait_gone("web")
    assert not alive(c["pid"])


# ---------------------------------------------------------------- restarts
def test_killed_process_is_restarted_in_place(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    n1, _ = nodes
    kube.create_pod(pod("victim", "n1", [{"name": "web", "image": "raykube/web"}]))
    p = kube.wait_pod("victim", running_ready)
    ip = p["status"]["podIP"]
    pid = n1.container("default", "victim", "web")["pid"]
    deadline = time.monotonic() + 10
    while http_get(f"http://{ip}:8080/")[1] != "victim\n":  # serving (and logged that it is)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    p = kube.wait_pod(
        "victim",
        lambda p: cstatus(p).get("restartCount") == 1 and running_ready(p),
        what="restartCount 1 and Running again",
    )
    cs = cstatus(p)
    last = cs["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error" and last["signal"] == 9
    assert last["finishedAt"] and last["startedAt"]
    assert p["status"]["podIP"] == ip
    new_pid = n1.container("default", "victim", "web")["pid"]
    assert new_pid != pid and alive(new_pid)
    deadline = time.monotonic() + 10
    while http_get(f"http://{ip}:8080/")[1] != "victim\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # kubectl logs --previous reads the log of the killed instance
    assert "serving on" in kube.env.kubectl("logs", "victim", "--previous").stdout
    kube.delete_pod("victim", grace=0)


def test_crash_loop_backs_off(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(
        pod(
            "crasher",
            "n2",
            [
                {
                    "name": "c",
                    "image": "raykube/crash",
                    "env": [{"name": "CRASH_AFTER", "value": "0.1"}, {"name": "EXIT_CODE", "value": "3"}],
                }
            ],
        )
    )
    seen_backoff: set[str] = set()
    starts: dict[int, float] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = kube.get_pod("crasher")
        cs = cstatus(p) if p else {}
        rc = cs.get("restartCount", 0)
        if "running" in (cs.get("state") or {}) and rc not in starts:
            starts[rc] = time.monotonic()
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason") == "CrashLoopBackOff":
            seen_backoff.add(w["message"].split(" ")[1])
            assert cs["lastState"]["terminated"]["exitCode"] == 3
            assert p["status"]["phase"] == "Running"
        if rc >= 4:
            break
        time.sleep(0.05)
    assert rc >= 4, f"only {rc} restarts"
    # back-off (demo profile): 1st restart at once, then 1 s, 2 s, 4 s after the previous exit
    assert {"1s", "2s"} <= seen_backoff, seen_backoff
    gaps = [starts[i + 1] - starts[i] for i in range(3) if i in starts and i + 1 in starts]
    assert len(gaps) >= 2 and gaps[-1] > gaps[0] + 0.5, (starts, gaps)
    out = kube.env.kubectl("get", "pod", "crasher").stdout
    assert "crasher" in out
    kube.delete_pod("crasher", grace=0)


def test_restart_policies_never_and_onfailure(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(
        pod(
            "never",
            "n2",
            [{"name": "c", "image": "raykube/crash", "args": ["--after", "0", "--code", "2"]}],
            restartPolicy="Never",
        )
    )
    kube.create_pod(
        pod(
            "onfail",
            "n2",
            [{"name": "c", "image": "raykube/host", "command": ["sh", "-c", "echo done; exit 0"]}],
            restartPolicy="OnFailure",
        )
    )
    p = kube.wait_pod("never", lambda p: p["status"]["phase"] == "Failed")
    cs = cstatus(p)
    assert cs["state"]["terminated"]["exitCode"] == 2 and cs["restartCount"] == 0
    assert condition(p, "Ready") == "False"
    p = kube.wait_pod("onfail", lambda p: p["status"]["phase"] == "Succeeded")
    assert cstatus(p)["state"]["terminated"]["reason"] == "Completed"
    assert "done" in kube.env.kubectl("logs", "onfail").stdout
    for n in ("never", "onfail"):
        kube.delete_pod(n)
        kube.wait_gone(n)


# ------------------------------------------------------------------ probes
def test_probes_startup_gates_liveness_restarts_readiness_flips(
    kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]
) -> None:
    n1, _ = nodes
    http = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}
    kube.create_pod(
        pod(
            "probed",
            "n1",
            [
                {
                    "name": "web",
                    "image": "raykube/web",
                    "ports": [{"name": "http", "containerPort": 8081}],
                    "env": [{"name": "START_DELAY", "value": "2.5"}],
                    # without the startup probe this liveness probe would kill the slow starter before it listens
                    "startupProbe": {**http, "failureThreshold": 20},
                    "livenessProbe": {**http, "failureThreshold": 1},
                    "readinessProbe": {
                        "httpGet": {"path": "/readyz", "port": 8081},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                }
            ],
            terminationGracePeriodSeconds=2,
        )
    )
    time.sleep(1.5)
    p = kube.get_pod("probed")
    cs = cstatus(p)
    assert "running" in cs["state"] and cs["started"] is False and cs["ready"] is False
    assert condition(p, "Ready") == "False"
    p = kube.wait_pod("probed", running_ready, what="Ready after the startup probe passed")
    assert cstatus(p)["restartCount"] == 0 and cstatus(p)["started"] is True
    ip = p["status"]["podIP"]
    # readiness failure: Ready=False, no restart
    http_get(f"http://{ip}:8081/admin/readyz?ok=0")
    p = kube.wait_pod("probed", lambda p: condition(p, "Ready") == "False", what="Ready=False")
    assert condition(p, "ContainersReady") == "False" and cstatus(p)["restartCount"] == 0
    assert "running" in cstatus(p)["state"]
    http_get(f"http://{ip}:8081/admin/readyz?ok=1")
    kube.wait_pod("probed", running_ready, what="Ready again")
    # liveness failure: the container is killed and restarted in place
    pid = n1.container("default", "probed", "web")["pid"]
    http_get(f"http://{ip}:8081/admin/healthz?ok=0")
    p = kube.wait_pod("probed", lambda p: cstatus(p).get("restartCount") == 1, timeout=20, what="restart")
    assert "liveness probe failed" in cstatus(p)["lastState"]["terminated"].get("message", "")
    assert not alive(pid)
    kube.wait_pod("probed", running_ready, timeout=20, what="Ready after the restart")
    ev = kube.env.kubectl("get", "events", "--field-selector", "involvedObject.name=probed").stdout
    assert "Unhealthy" in ev and "Killing" in ev
    kube.delete_pod("probed", grace=0)


def test_exec_and_tcp_probes(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(
        pod(
            "execprobe",
            "n2",
            [
                {
                    "name": "c",
                    "image": "raykube/host",
                    "command": ["sh", "-c", "touch ok; exec sleep 600"],
                    "readinessProbe": {
                        "exec": {"command": ["test", "-e", "ok"]},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                },
                {
                    "name": "web",
                    "image": "raykube/web",
                    "ports": [{"containerPort": 8082}],
                    "livenessProbe": {"tcpSocket": {"port": 8082}, "periodSeconds": 1, "initialDelaySeconds": 1},
                },
            ],
            terminationGracePeriodSeconds=1,
        )
    )
    p = kube.wait_pod("execprobe", running_ready, what="Ready via exec probe")
    # remove the file in the container's working directory: the exec probe fails, Ready flips
    n2 = kube.kubelets["n2"]
    c = n2.container("default", "execprobe", "c")
    os.unlink(os.path.join(os.readlink(f"/proc/{c['pid']}/cwd"), "ok"))
    p = kube.wait_pod("execprobe", lambda p: condition(p, "Ready") == "False")
    assert all(cs["restartCount"] == 0 for cs in p["status"]["containerStatuses"])
    kube.delete_pod("execprobe", grace=0)
