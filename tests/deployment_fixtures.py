"""Set-up for the controller integration tests: Deployment manifests, pod queries and waits, a
watcher of pod counts, and fixtures that give each test three Ready nodes with one scheduler and one
controller manager, and fresh, uniquely named Deployments (deleted after the test).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any, Iterator

import pytest
from control_fixtures import ControlEnv, control, wait_for  # noqa: F401

from cluster.client import DEPLOYMENTS, NODES, PODS, ApiError

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
