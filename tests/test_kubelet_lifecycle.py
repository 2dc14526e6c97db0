"""Kubelet + process runtime, end to end (continued from ``test_kubelet_pods.py``, same set-up):
graceful termination, memory limits, image and start errors, init containers, late binding,
admission and pod start latency.
"""

from __future__ import annotations

import statistics
import threading
import time

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


# ------------------------------------------------------------ termination
def test_graceful_termination_sigterm_grace_sigkill(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    n1, _ = nodes
    script = "trap 'echo got SIGTERM' TERM; echo started; sleep 1000 & while :; do sleep 0.1; done"
    kube.create_pod(
        pod(
            "stubborn",
            "n1",
            [{"name": "sh", "image": "raykube/host", "command": ["sh", "-c", script]}],
            terminationGracePeriodSeconds=30,
        )
    )
    kube.wait_pod("stubborn", running_ready)
    c = n1.container("default", "stubborn", "sh")
    pid, pgid, logf = c["pid"], c["pgid"], c["log"]
    deadline = time.monotonic() + 5
    while len(pids_in_group(pgid)) < 2:  # sh and its background sleep
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    assert kube.delete_pod("stubborn", grace=3) == 200
    p = kube.get_pod("stubborn")
    assert p is not None and p["metadata"]["deletionTimestamp"]
    t_term = t_dead = None
    checked = False
    while t_dead is None:
        now = time.monotonic() - t0
        if t_term is None and "got SIGTERM" in open(logf).read():
            t_term = now
        if not checked and now > 2.0:  # mid-grace: the process lives on, so does the (terminating) pod object
            assert alive(pid) and kube.get_pod("stubborn") is not None
            checked = True
        if not alive(pid):
            t_dead = now
        assert now < 15, "the process outlived the grace period by far"
        time.sleep(0.02)
    kube.wait_gone("stubborn", timeout=15)
    print(
        f"\ngraceful termination (grace 3 s): SIGTERM seen after {t_term:.2f} s, SIGKILL'd after {t_dead:.2f} s, "
        f"pod object gone after {time.monotonic() - t0:.2f} s"
    )
    assert t_term is not None and t_term < 2.5, "SIGTERM must come first, well within the grace period"
    assert t_dead >= 2.9, f"killed after {t_dead:.2f} s, before the 3 s grace period ended"
    assert pids_in_group(pgid) == []


def test_memory_limit_oomkilled(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    n1, _ = nodes
    mech1 = n1.runtime()["limits"]["memory"]
    hog = {
        "name": "hog",
        "image": "raykube/busy",
        "env": [{"name": "MEMORY", "value": "256Mi"}, {"name": "DUTY", "value": "0.05"}],
        "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}},
    }
    kube.create_pod(pod("hog1", "n1", [hog]))
    kube.create_pod(pod("hog2", "n2", [hog]))
    for name, mech in (("hog1", mech1), ("hog2", "rss-poll")):
        p = kube.wait_pod(
            name,
            lambda p: ((cstatus(p).get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled",
            timeout=30,
            what="OOMKilled in lastState",
        )
        t = cstatus(p)["lastState"]["terminated"]
        assert t["exitCode"] == 137 and "64Mi" in t["message"]
        assert ("RSS poller" in t["message"]) if mech == "rss-poll" else ("kernel OOM killer" in t["message"])
        assert mech in t["message"] or mech == "rss-poll"
    for name in ("hog1", "hog2"):
        kube.delete_pod(name, grace=0)


def test_unknown_image_err_image_pull(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(pod("noimg", "n2", [{"name": "c", "image": "nginx:1.27"}]))
    p = kube.wait_pod(
        "noimg",
        lambda p: (
            ((cstatus(p).get("state") or {}).get("waiting") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
        ),
    )
    w = cstatus(p)["state"]["waiting"]
    assert p["status"]["phase"] == "Pending"
    p = kube.wait_pod(
        "noimg",
        lambda p: ((cstatus(p).get("state") or {}).get("waiting") or {}).get("reason") == "ImagePullBackOff",
        timeout=10,
    )
    msg = w["message"] if w["reason"] == "ErrImagePull" else cstatus(p)["state"]["waiting"]["message"]
    assert "nginx" in msg
    ev = kube.env.kubectl("get", "events", "--field-selector", "involvedObject.name=noimg").stdout
    assert "raykube/web" in ev  # the message names the built-in images
    kube.delete_pod("noimg", grace=0)
    kube.wait_gone("noimg")


def test_missing_executable_is_a_start_error(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(pod("noexec", "n2", [{"name": "c", "image": "raykube/host", "command": ["no-such-binary-rk"]}]))
    p = kube.wait_pod(
        "noexec",
        lambda p: (
            ((cstatus(p).get("lastState") or {}).get("terminated") or {}).get("reason") == "StartError"
            or ((cstatus(p).get("state") or {}).get("terminated") or {}).get("reason") == "StartError"
        ),
    )
    cs = cstatus(p)
    t = (cs.get("lastState") or {}).get("terminated") or cs["state"]["terminated"]
    assert t["exitCode"] == 128 and "no-such-binary-rk" in t["message"] and "not found" in t["message"]
    kube.delete_pod("noexec", grace=0)


def test_init_containers_run_first_in_order(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(
        pod(
            "inits",
            "n2",
            [
                {
                    "name": "main",
                    "image": "raykube/host",
                    "command": ["sh", "-c", "echo main sees $(MARK); exec sleep 600"],
                    "env": [{"name": "MARK", "value": "m1"}],
                }
            ],
            initContainers=[
                {"name": "one", "image": "raykube/host", "command": ["sh", "-c", "sleep 0.5"]},
                {"name": "two", "image": "raykube/host", "command": ["true"]},
            ],
            terminationGracePeriodSeconds=1,
        )
    )
    time.sleep(0.2)
    p = kube.get_pod("inits")
    assert p["status"]["phase"] == "Pending" and condition(p, "Initialized") == "False"
    p = kube.wait_pod("inits", running_ready)
    ics = p["status"]["initContainerStatuses"]
    assert [c["state"]["terminated"]["reason"] for c in ics] == ["Completed", "Completed"]
    assert ics[0]["state"]["terminated"]["finishedAt"] <= ics[1]["state"]["terminated"]["startedAt"]
    assert condition(p, "Initialized") == "True"
    deadline = time.monotonic() + 5
    while "main sees m1" not in kube.env.kubectl("logs", "inits", "-c", "main").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kube.delete_pod("inits", grace=1)


def test_pod_bound_later_through_binding_is_picked_up(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    manifest = pod("bindme", "", [{"name": "web", "image": "raykube/web"}])
    del manifest["spec"]["nodeName"]
    kube.create_pod(manifest)
    time.sleep(0.3)
    assert kube.get_pod("bindme")["status"]["phase"] == "Pending"
    r = kube.env.request(
        "POST",
        "/api/v1/namespaces/default/pods/bindme/binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "bindme"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "n2"},
        },
        user="scheduler",
    )
    assert r.status == 201, r.body
    p = kube.wait_pod("bindme", running_ready, timeout=10)
    assert p["status"]["hostIP"] == kube.kubelets["n2"].node_ip
    kube.delete_pod("bindme", grace=0)


def test_admission_rejects_what_the_node_cannot_fit(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    kube.create_pod(
        pod("toobig", "n2", [{"name": "c", "image": "raykube/web", "resources": {"requests": {"cpu": "4"}}}])
    )
    p = kube.wait_pod("toobig", lambda p: p["status"]["phase"] == "Failed")
    assert p["status"]["reason"] == "OutOfcpu" and "cpu" in p["status"]["message"]
    kube.delete_pod("toobig")
    kube.wait_gone("toobig")


# ----------------------------------------------------------------- latency
def test_pod_start_latency_watch(kube: KubeEnv, nodes: tuple[KubeletProc, KubeletProc]) -> None:
    """create -> Running as seen by a watch (official Python client), a few pods over two nodes."""
    from kubernetes import client, watch

    api = client.CoreV1Api(kube.env.client())
    n = 6
    names = [f"lat-{i}" for i in range(n)]
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    rv = api.list_namespaced_pod("default").metadata.resource_version
    w = watch.Watch()
    done = threading.Event()

    def watcher() -> None:
        for ev in w.stream(api.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=30):
            o = ev["object"]
            if o.metadata.name in created and o.status.phase == "Running" and o.metadata.name not in running:
                running[o.metadata.name] = time.monotonic()
                if len(running) == n:
                    done.set()
                    w.stop()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(0.3)
    for i, name in enumerate(names):
        created[name] = time.monotonic()
        kube.create_pod(
            pod(
                name,
                "n1" if i % 2 == 0 else "n2",
                [{"name": "web", "image": "raykube/web", "ports": [{"containerPort": 8090}]}],
            )
        )
    assert done.wait(20), f"only {sorted(running)} Running"
    lat = sorted(running[k] - created[k] for k in names)
    print(
        f"\npod start latency (create -> Running seen by a watch), {n} pods on 2 nodes: "
        f"min {lat[0] * 1000:.0f} ms, median {statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
    )
    assert lat[-1] < 5.0  # the Kubernetes SLO; typically ~0.1-0.4 s here
    for name in names:
        kube.delete_pod(name, grace=1)
    for name in names:
        kube.wait_gone(name)
