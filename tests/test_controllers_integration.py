"""Scheduler + controller manager as real processes against a real API server, with
the fake kubelet of ``control_fixtures`` standing in for nodes. Driven with kubectl
where people would use it (apply, scale, set image, rollout status/undo/history,
delete with --cascade, delete namespace).

No test depends on another: before each one a fixture brings the three nodes back (live, Ready,
untainted) and one scheduler and one controller manager holding their Leases, and a test that
works on a Deployment gets a fresh, uniquely named one from a fixture (``web``, ``web6``,
``web6_at_revision_2``), deleted after it. Each test runs alone, or in any order.
"""

from __future__ import annotations

import time
from typing import Any

from control_fixtures import ControlEnv, control, wait_for  # noqa: F401
from deployment_fixtures import (  # noqa: F401
    NODES3,
    Deployments,
    PodWatcher,
    _ids,
    deployment,
    deployments,
    is_ready,
    live,
    pods_of,
    ready_live,
    three_nodes_and_control_plane,
    wait_ready,
    wait_rolled_out,
    web,
    web6,
    web6_at_revision_2,
)

from cluster.client import DEPLOYMENTS, LEASES, NAMESPACES, NODES, PODS, REPLICASETS, ApiError


# ---------------------------------------------------------------------- tests
def test_deployment_of_three_spreads_and_becomes_ready(control: ControlEnv, deployments: Deployments) -> None:
    web = deployments.name()
    t0 = time.monotonic()
    control.api.kubectl("apply", "-f", "-", input=deployment(web, 3))
    pods = wait_ready(control, web, 3, timeout=30)
    elapsed = time.monotonic() - t0
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(NODES3), "one replica per node"
    out = control.api.kubectl("rollout", "status", f"deployment/{web}", "--timeout=30s").stdout
    assert "successfully rolled out" in out
    d = control.run(lambda c: c.get(DEPLOYMENTS, web))
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st["observedGeneration"] == d["metadata"]["generation"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    rs = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector=f"app={web}"))[0]
    assert len(rs) == 1 and rs[0]["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    h = rs[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs[0]["metadata"]["name"] == f"{web}-{h}"
    assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["controller"] for p in pods)
    print(f"\n3 replicas bound, spread and Ready {elapsed:.2f} s after kubectl apply")


def test_scale_3_to_10_to_2(control: ControlEnv, web: str) -> None:
    control.api.kubectl("scale", f"deployment/{web}", "--replicas=10")
    pods = wait_ready(control, web, 10)
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
    assert max(per_node.values()) - min(per_node.values()) <= 1, per_node
    control.api.kubectl("scale", f"deployment/{web}", "--replicas=2")
    wait_ready(control, web, 2)
    wait_for(lambda: len(pods_of(control, web)) == 2, 20, what="scaled-down pods gone")
    rs = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector=f"app={web}"))[0]
    assert [r["status"].get("replicas") for r in rs] == [2]


def test_rolling_update_respects_surge_and_unavailable(control: ControlEnv, web: str) -> None:
    control.api.kubectl("scale", f"deployment/{web}", "--replicas=6")
    wait_ready(control, web, 6)
    wait_for(lambda: len(pods_of(control, web)) == 6, 20, what="6 pods exactly")
    # maxSurge 1, maxUnavailable 1 (from the manifest): between 5 ready and 7 pods at any time.
    w = PodWatcher(control, f"app={web}")
    control.api.kubectl("set", "image", f"deployment/{web}", "web=raykube/web:2")
    out = control.api.kubectl("rollout", "status", f"deployment/{web}", "--timeout=60s", timeout=90).stdout
    assert "successfully rolled out" in out
    wait_for(lambda: len(pods_of(control, web)) == 6, 20, what="old pods gone")
    samples = w.stop()
    assert len(samples) > 10
    assert max(s[1] for s in samples) <= 7, "more than replicas + maxSurge pods"
    assert min(s[2] for s in samples) >= 5, "fewer than replicas - maxUnavailable ready pods"
    pods = wait_ready(control, web, 6)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"raykube/web:2"}
    d = control.run(lambda c: c.get(DEPLOYMENTS, web))
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    print(
        f"\nrolling update: {len(samples)} pod events watched; pods max {max(s[1] for s in samples)}, "
        f"ready min {min(s[2] for s in samples)}"
    )


def test_rollout_undo_and_history(control: ControlEnv, web6_at_revision_2: str) -> None:
    web = web6_at_revision_2
    hist = control.api.kubectl("rollout", "history", f"deployment/{web}").stdout
    assert "1" in hist and "2" in hist
    out = control.api.kubectl("rollout", "undo", f"deployment/{web}").stdout
    assert "rolled back" in out
    out = control.api.kubectl("rollout", "status", f"deployment/{web}", "--timeout=60s", timeout=90).stdout
    assert "successfully rolled out" in out
    wait_for(lambda: len(pods_of(control, web)) == 6, 20, what="old pods gone")
    pods = wait_ready(control, web, 6)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"raykube/web:1"}
    d = control.run(lambda c: c.get(DEPLOYMENTS, web))
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rss = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector=f"app={web}"))[0]
    assert len(rss) == 2, "the rollback reused the first ReplicaSet"
    first = [r for r in rss if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"][0]
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    hist = control.api.kubectl("rollout", "history", f"deployment/{web}").stdout
    assert "2" in hist and "3" in hist


def test_pause_and_resume(control: ControlEnv, web6: str) -> None:
    web = web6
    control.api.kubectl("rollout", "pause", f"deployment/{web}")
    control.api.kubectl("set", "image", f"deployment/{web}", "web=raykube/web:3")

    def paused() -> Any:
        d = control.run(lambda c: c.get(DEPLOYMENTS, web))
        cond = [c for c in d["status"].get("conditions", []) if c["type"] == "Progressing"]
        return cond and cond[0]["reason"] == "DeploymentPaused"

    wait_for(paused, 10, what="Progressing=Unknown/DeploymentPaused")
    time.sleep(0.5)
    rss = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector=f"app={web}"))[0]
    assert not [r for r in rss if r["spec"]["template"]["spec"]["containers"][0]["image"] == "raykube/web:3"]
    control.api.kubectl("rollout", "resume", f"deployment/{web}")
    out = control.api.kubectl("rollout", "status", f"deployment/{web}", "--timeout=60s", timeout=90).stdout
    assert "successfully rolled out" in out
    wait_for(
        lambda: {p["spec"]["containers"][0]["image"] for p in live(pods_of(control, web))} == {"raykube/web:3"},
        20,
        what="new image everywhere",
    )


def test_rollout_survives_raftstore_leader_kill(control: ControlEnv, web6: str) -> None:
    web = web6
    w = PodWatcher(control, f"app={web}")
    control.api.kubectl("set", "image", f"deployment/{web}", "web=raykube/web:4")
    wait_for(lambda: len(w.samples) > 3, 10, interval=0.02, what="rollout started")
    leader = control.api.leader()
    control.api.cluster.kill(leader)  # SIGKILL the raftstore leader mid-rollout
    try:
        out = control.api.kubectl("rollout", "status", f"deployment/{web}", "--timeout=90s", timeout=120).stdout
        assert "successfully rolled out" in out
        pods = wait_ready(control, web, 6, timeout=30)
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"raykube/web:4"}
        samples = w.stop()
        assert max(s[1] for s in samples) <= 7, "a pod duplicated beyond maxSurge"
        assert min(s[2] for s in samples) >= 5, "fewer than replicas - maxUnavailable ready pods"
    finally:
        w.stop()
        control.api.cluster.restart(leader)


def test_recreate_never_overlaps(control: ControlEnv, deployments: Deployments) -> None:
    rec = deployments.name("rec")  # deleted after the test by the fixture
    control.api.kubectl("apply", "-f", "-", input=deployment(rec, 3, strategy={"type": "Recreate"}))
    wait_ready(control, rec, 3)
    w = PodWatcher(control, f"app={rec}")
    control.api.kubectl("set", "image", f"deployment/{rec}", "web=raykube/web:2")
    control.api.kubectl("rollout", "status", f"deployment/{rec}", "--timeout=60s", timeout=90)
    pods = wait_ready(control, rec, 3)
    samples = w.stop()
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"raykube/web:2"}
    assert all(len([h for h, n in s[3].items() if n]) <= 1 for s in samples), "old and new pods overlapped"


def test_node_loss_evicts_and_replaces(control: ControlEnv, web6: str) -> None:
    web = web6
    pods = wait_ready(control, web, 6)
    victim = "nb"
    on_victim = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}
    assert on_victim
    t0 = time.monotonic()
    control.kubelet.kill(victim)

    def node_unknown() -> Any:
        n = control.run(lambda c: c.get(NODES, victim))
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0]
        taints = {(t["key"], t["effect"]) for t in n["spec"].get("taints") or []}
        return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints and n

    n = wait_for(node_unknown, 20, interval=0.1, what="node Unknown + unreachable taint")
    t_unknown = time.monotonic() - t0
    assert [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0][
        "message"
    ] == "Kubelet stopped posting node status."

    def replaced() -> Any:
        ps = live(pods_of(control, web))
        return (len(ps) == 6 and all(is_ready(p) and p["spec"]["nodeName"] != victim for p in ps)) and ps

    wait_for(replaced, 30, interval=0.1, what="replacements Ready on surviving nodes")
    t_replaced = time.monotonic() - t0
    evicted = [p for p in pods_of(control, web) if p["metadata"]["name"] in on_victim]
    assert all(p["metadata"].get("deletionTimestamp") for p in evicted), "pods on the lost node were evicted"
    print(
        f"\nnode loss (demo profile: heartbeat 2 s, grace 5 s): Ready=Unknown+taint after {t_unknown:.1f} s, "
        f"all replicas Ready on surviving nodes after {t_replaced:.1f} s"
    )
    # The node comes back: taints go away.
    control.run(lambda c: control.kubelet.add_node(victim, cpu="4", memory="8Gi"))

    def healthy() -> bool:
        n = control.run(lambda c: c.get(NODES, victim))
        return not [t for t in n["spec"].get("taints") or [] if t["key"].startswith("node.kubernetes.io/")]

    wait_for(healthy, 20, what="taints removed after the node came back")
    wait_for(
        lambda: not [p for p in pods_of(control, web) if p["metadata"]["name"] in on_victim],
        20,
        what="the evicted pods finished terminating once the kubelet was back",
    )


def test_pod_gc_deletes_pods_bound_to_missing_nodes(control: ControlEnv) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ghost-pod", "labels": {"app": "ghost"}},
        "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "raykube/pause"}]},
    }
    control.run(lambda c: c.create(PODS, ghost, "default"))
    wait_for(lambda: not pods_of(control, "ghost"), 20, what="orphaned pod garbage-collected")


def test_cascading_deletes(control: ControlEnv) -> None:
    for name in ("bg", "fg", "orph"):
        control.api.kubectl("apply", "-f", "-", input=deployment(name, 2))
    for name in ("bg", "fg", "orph"):
        wait_ready(control, name, 2)
    control.api.kubectl("delete", "deployment", "bg", "--cascade=background")
    control.api.kubectl("delete", "deployment", "fg", "--cascade=foreground", "--timeout=30s")
    # foreground: when kubectl returns (it waits for the object), dependents are already gone
    assert not pods_of(control, "fg") or all(p["metadata"].get("deletionTimestamp") for p in pods_of(control, "fg"))
    assert not control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector="app=fg"))[0]
    control.api.kubectl("delete", "deployment", "orph", "--cascade=orphan")
    wait_for(
        lambda: (
            not pods_of(control, "bg")
            and not control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector="app=bg"))[0]
        ),
        20,
        what="bg dependents gone",
    )
    wait_for(lambda: not pods_of(control, "fg"), 20, what="fg pods gone")
    time.sleep(1.5)
    rss = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector="app=orph"))[0]
    assert len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences"), "orphaned ReplicaSet kept, unowned"
    assert len(ready_live(control, "orph")) == 2, "orphaned pods kept"
    control.api.kubectl("delete", "replicaset", rss[0]["metadata"]["name"])
    wait_for(lambda: not pods_of(control, "orph"), 20, what="orph pods gone with their ReplicaSet")


def test_namespace_deletion_removes_everything(control: ControlEnv) -> None:
    control.api.kubectl("create", "namespace", "doomed")
    control.api.kubectl("apply", "-f", "-", input=deployment("dd", 2, ns="doomed"))
    control.api.kubectl("create", "configmap", "cfg", "-n", "doomed", "--from-literal=a=b")
    control.api.kubectl("create", "secret", "generic", "sec", "-n", "doomed", "--from-literal=a=b")
    control.api.kubectl("create", "service", "clusterip", "svc", "-n", "doomed", "--tcp=80:8080")
    wait_ready(control, "dd", 2, ns="doomed")
    control.api.kubectl("delete", "namespace", "doomed", "--timeout=60s", timeout=90)

    def gone() -> bool:
        try:
            control.run(lambda c: c.get(NAMESPACES, "doomed"))
            return False
        except ApiError as exc:
            return exc.not_found

    wait_for(gone, 30, what="namespace deleted")
    for res in (PODS, REPLICASETS, DEPLOYMENTS):
        assert not control.run(lambda c, r=res: c.list_all(r, "doomed"))[0]


def test_controller_manager_killed_mid_work(control: ControlEnv, web6: str) -> None:
    web = web6
    cm = [p for p in control.procs if "cluster.controllers" in " ".join(p.args) and p.poll() is None][0]
    control.api.kubectl("scale", f"deployment/{web}", "--replicas=60")
    wait_for(lambda: len(pods_of(control, web)) >= 10, 20, interval=0.01, what="scale-up under way")
    control.kill(cm)  # SIGKILL mid-work (pods are created in batches 1, 2, 4, 8, ...)
    n_at_kill = len(live(pods_of(control, web)))
    control.start_controller_manager()  # same identity: takes the Lease over at once
    pods = wait_ready(control, web, 60, timeout=60)
    assert n_at_kill < 60
    time.sleep(1.0)
    assert len(live(pods_of(control, web))) == 60, "no pod duplicated by the restarted controller"
    rs = control.run(lambda c: c.list_all(REPLICASETS, "default", label_selector=f"app={web}"))[0]
    assert sum(r["status"].get("replicas", 0) for r in rs) == 60
    assert len({p["spec"]["nodeName"] for p in pods}) == 3
    holder = control.run(lambda c: c.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]["holderIdentity"]
    assert holder == "cm-0"


def test_controller_manager_actor_class_runs_and_hands_over(control: ControlEnv, web6: str) -> None:
    """The class the launcher wraps in a Ray actor, run in-process: it takes the Lease over from
    the process replica (released on SIGTERM), does the work, reports stats, releases on shutdown."""
    web = web6
    from apiserver_fixtures import kill_pid

    from cluster.actors.controller_manager import ControllerManagerActor

    for p in control.procs:
        if "cluster.controllers" in " ".join(p.args) and p.poll() is None:
            kill_pid(p.pid)
    actor = ControllerManagerActor(
        control.api.url,
        control.cm_token,
        ca_file=control.api.ca,
        profile="demo",
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.5,
    )
    try:
        assert actor.ready(30)["component"] == "controller-manager"
        wait_for(lambda: actor.info()["leader"], 20, what="actor leads")
        control.api.kubectl("scale", f"deployment/{web}", "--replicas=4")
        wait_ready(control, web, 4, timeout=60)
        info = actor.info()
        assert info["profile"] == "demo" and info["stats"]["replicaset"]["syncs"] > 0
        holder = control.run(lambda c: c.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]
        assert holder["holderIdentity"] == info["identity"]
    finally:
        assert actor.shutdown(15)
    holder = control.run(lambda c: c.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]
    assert holder["holderIdentity"] == "", "released on shutdown"
