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

import asyncio
import itertools
import json
import time
from typing import Any, Iterator

import pytest
from control_fixtures import ControlEnv, control, wait_for  # noqa: F401

from cluster.client import DEPLOYMENTS, LEASES, NAMESPACES, NODES, PODS, REPLICASETS, ApiError

NODES3 = ("na", "nb", "nc")


def deployment(
    name: str,
    replicas: int = 3,
    image: str = "raykube/web:1",
    ns: str = "default",
    strategy: dict[str, Any] | None = None,
) -> str:
    d = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "web", "image": image, "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}
                    ],
                },
            },
        },
    }
    return json.dumps(d)


def pods_of(control: ControlEnv, app: str, ns: str = "default") -> list[dict[str, Any]]:
    return control.run(lambda c: c.list_all(PODS, ns, label_selector=f"app={app}"))[0]


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def is_ready(p: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (p.get("status") or {}).get("conditions") or []
    )


def ready_live(control: ControlEnv, app: str, ns: str = "default") -> list[dict[str, Any]]:
    return [p for p in live(pods_of(control, app, ns)) if is_ready(p)]


def wait_ready(
    control: ControlEnv, app: str, n: int, ns: str = "default", timeout: float = 30.0
) -> list[dict[str, Any]]:
    def ok() -> Any:
        pods = live(pods_of(control, app, ns))
        return pods if len(pods) == n and all(is_ready(p) for p in pods) else None

    return wait_for(ok, timeout, interval=0.1, what=f"{n} ready pods of {app}")


class PodWatcher:
    """Watches pods with a label on the background loop; after every event records how many
    non-terminating pods exist and how many of them are Ready."""

    def __init__(self, control: ControlEnv, selector: str, ns: str = "default") -> None:
        self.control = control
        self.selector = selector
        self.ns = ns
        self.pods: dict[str, dict[str, Any]] = {}
        self.samples: list[tuple[float, int, int, dict[str, int]]] = []
        self._stop = False
        self.started = control.spawn(self._prime())
        self.started.result(30)
        self.future = control.spawn(self._run())

    async def _prime(self) -> None:
        items, self.rv = await self.control.client.list_all(PODS, self.ns, label_selector=self.selector)
        for p in items:
            self.pods[p["metadata"]["name"]] = p
        self._sample()

    def _sample(self) -> None:
        alive = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
        by_hash: dict[str, int] = {}
        for p in alive:
            h = (p["metadata"].get("labels") or {}).get("pod-template-hash", "")
            by_hash[h] = by_hash.get(h, 0) + 1
        self.samples.append((time.monotonic(), len(alive), sum(1 for p in alive if is_ready(p)), by_hash))

    async def _run(self) -> None:
        while not self._stop:
            try:
                async for ev in self.control.client.watch(
                    PODS, self.ns, resource_version=self.rv, label_selector=self.selector, timeout_seconds=5
                ):
                    if ev.type == "BOOKMARK":
                        self.rv = ev.resource_version
                        continue
                    name = ev.object["metadata"]["name"]
                    if ev.type == "DELETED":
                        self.pods.pop(name, None)
                    else:
                        self.pods[name] = ev.object
                    self.rv = ev.resource_version
                    self._sample()
                    if self._stop:
                        return
            except Exception:  # noqa: BLE001 - e.g. the API server lost its raftstore leader: resume
                await asyncio.sleep(0.1)

    def stop(self) -> list[tuple[float, int, int, dict[str, int]]]:
        self._stop = True
        self.future.cancel()  # cancels the watching task on the background loop
        time.sleep(0.05)
        return self.samples


# ------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def three_nodes_and_control_plane(control: ControlEnv) -> None:
    """Before every test, whatever earlier ones did (killed a node, the controller manager...):
    three live kubelets na, nb, nc, Ready and untainted; one scheduler and one controller
    manager (cm-0) process, each holding its Lease."""
    for n in NODES3:
        if n not in control.kubelet.live:
            control.run(lambda c, n=n: control.kubelet.add_node(n, cpu="4", memory="8Gi"))
    control.ensure_control_plane()

    def healthy() -> bool:
        for n in NODES3:
            node = control.run(lambda c, n=n: c.get(NODES, n))
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
            if (
                not ready
                or ready[0]["status"] != "True"
                or [t for t in node["spec"].get("taints") or [] if t["key"].startswith("node.kubernetes.io/")]
            ):
                return False
        return True

    wait_for(healthy, 30, what="na, nb, nc Ready without node.kubernetes.io taints")


_ids = itertools.count(1)


class Deployments:
    """Fresh, uniquely named Deployments for one test (``web1``, ``web2``... ``rec3``...); every
    one it named is deleted (background cascade) after the test."""

    def __init__(self, control: ControlEnv) -> None:
        self.control = control
        self.names: list[str] = []

    def name(self, prefix: str = "web") -> str:
        name = f"{prefix}{next(_ids)}"
        self.names.append(name)
        return name

    def create(self, replicas: int, prefix: str = "web", **kw: Any) -> str:
        """Creates one and waits until it is rolled out: exactly ``replicas`` pods, all Ready, status up to date."""
        name = self.name(prefix)
        self.control.run(lambda c: c.create(DEPLOYMENTS, json.loads(deployment(name, replicas, **kw)), "default"))
        wait_rolled_out(self.control, name, replicas)
        return name

    def delete_all(self) -> None:
        for name in self.names:
            try:
                self.control.run(
                    lambda c, name=name: c.delete(DEPLOYMENTS, name, "default", propagation_policy="Background")
                )
            except ApiError as exc:
                if not exc.not_found:
                    raise


def wait_rolled_out(control: ControlEnv, name: str, n: int) -> list[dict[str, Any]]:
    """Waits until the Deployment's status says its latest generation is rolled out at ``n``
    replicas, then until exactly ``n`` pods are left (old ones gone), all Ready; those pods."""

    def status_done() -> bool:
        d = control.run(lambda c: c.get(DEPLOYMENTS, name))
        st = d.get("status") or {}
        return st.get("observedGeneration") == d["metadata"]["generation"] and (
            st.get("replicas"),
            st.get("updatedReplicas"),
            st.get("readyReplicas"),
            st.get("availableReplicas"),
        ) == (n, n, n, n)

    wait_for(status_done, 30, what=f"{name} status: {n} replicas updated, ready and available")
    wait_for(lambda: len(pods_of(control, name)) == n, 30, what=f"exactly {n} pods of {name}")
    return wait_ready(control, name, n)


@pytest.fixture
def deployments(control: ControlEnv) -> Iterator[Deployments]:
    made = Deployments(control)
    yield made
    made.delete_all()


@pytest.fixture
def web(deployments: Deployments) -> str:
    """A fresh Deployment at 3 ready replicas of raykube/web:1 (revision 1); its name."""
    return deployments.create(3)


@pytest.fixture
def web6(deployments: Deployments) -> str:
    """A fresh Deployment at 6 ready replicas of raykube/web:1 (revision 1); its name."""
    return deployments.create(6)


@pytest.fixture
def web6_at_revision_2(control: ControlEnv, web6: str) -> str:
    """A fresh Deployment with a rollout history: revision 1 (raykube/web:1) then revision 2
    (raykube/web:2), rolled out at 6 ready replicas; its name."""
    # what `kubectl set image deployment/... web=raykube/web:2` sends
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "raykube/web:2"}]}}}}
    control.run(lambda c: c.patch(DEPLOYMENTS, web6, patch, "default", patch_type="strategic"))
    pods = wait_rolled_out(control, web6, 6)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"raykube/web:2"}
    return web6


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
