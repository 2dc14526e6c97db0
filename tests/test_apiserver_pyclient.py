"""The official ``kubernetes`` Python client against the API server over TLS:
CRUD on namespaces, pods, deployments and configmaps, ``watch.Watch().stream``
receiving ADDED/MODIFIED/DELETED, and ``patch_namespaced_deployment_scale``."""

from __future__ import annotations

import threading
import time

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException


def _deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="nginx:1.25")]),
            ),
        ),
    )


def test_namespace_crud(api: Env) -> None:
    v1 = client.CoreV1Api(api.client())
    ns = v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-ns", labels={"a": "b"})))
    assert ns.status.phase == "Active" and ns.spec.finalizers == ["kubernetes"]
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "py-ns"
    got = v1.read_namespace("py-ns")
    assert got.metadata.uid == ns.metadata.uid
    names = [n.metadata.name for n in v1.list_namespace(label_selector="a=b").items]
    assert names == ["py-ns"]
    patched = v1.patch_namespace("py-ns", {"metadata": {"labels": {"c": "d"}}})
    assert patched.metadata.labels["c"] == "d" and patched.metadata.labels["a"] == "b"
    v1.delete_namespace("py-ns")
    # The namespace finalizer keeps it Terminating until the namespace controller empties it.
    terminating = v1.read_namespace("py-ns")
    assert terminating.status.phase == "Terminating" and terminating.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_config_map("py-ns", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    assert exc.value.status == 403 and "being terminated" in exc.value.body
    # Finalizing (what the namespace controller does) removes it.
    terminating.spec.finalizers = []
    v1.replace_namespace_finalize("py-ns", terminating)
    with pytest.raises(ApiException) as exc:
        v1.read_namespace("py-ns")
    assert exc.value.status == 404


def test_configmap_crud(api: Env) -> None:
    v1 = client.CoreV1Api(api.client())
    cm = v1.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm"), data={"a": "1"})
    )
    cm.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("py-cm", "default", cm)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    patched = v1.patch_namespaced_config_map("py-cm", "default", {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    assert [
        c.metadata.name for c in v1.list_namespaced_config_map("default", field_selector="metadata.name=py-cm").items
    ] == ["py-cm"]
    v1.delete_namespaced_config_map("py-cm", "default")
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_config_map("py-cm", "default")
    assert exc.value.status == 404


def test_pod_crud(api: Env) -> None:
    v1 = client.CoreV1Api(api.client())
    pod = v1.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="py-pod", labels={"tier": "web"}),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(
                        name="c",
                        image="busybox",
                        resources=client.V1ResourceRequirements(limits={"cpu": "1", "memory": "1Gi"}),
                    )
                ]
            ),
        ),
    )
    assert pod.status.phase == "Pending" and pod.status.qos_class == "Guaranteed"
    assert pod.spec.restart_policy == "Always" and pod.spec.termination_grace_period_seconds == 30
    assert pod.spec.containers[0].image_pull_policy == "Always"
    assert pod.spec.containers[0].resources.requests == {"cpu": "1", "memory": "1Gi"}
    assert pod.metadata.generation == 1
    pods = v1.list_namespaced_pod("default", label_selector="tier in (web)").items
    assert [p.metadata.name for p in pods] == ["py-pod"]
    pod.metadata.labels["extra"] = "yes"
    updated = v1.replace_namespaced_pod("py-pod", "default", pod)
    assert updated.metadata.labels["extra"] == "yes"
    st = v1.patch_namespaced_pod_status("py-pod", "default", {"status": {"phase": "Running"}})
    assert st.status.phase == "Running"
    deleted = v1.delete_namespaced_pod("py-pod", "default")
    assert deleted.metadata.name == "py-pod"
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_pod("py-pod", "default")
    assert exc.value.status == 404


def test_deployment_crud_and_scale(api: Env) -> None:
    apps = client.AppsV1Api(api.client())
    dep = apps.create_namespaced_deployment("default", _deployment("py-dep", 2))
    assert dep.spec.replicas == 2 and dep.metadata.generation == 1
    assert dep.spec.strategy.type == "RollingUpdate" and dep.spec.revision_history_limit == 10
    scale = apps.patch_namespaced_deployment_scale("py-dep", "default", {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5 and scale.status.selector == "app=py-dep"
    assert apps.read_namespaced_deployment_scale("py-dep", "default").spec.replicas == 5
    got = apps.read_namespaced_deployment("py-dep", "default")
    assert got.spec.replicas == 5 and got.metadata.generation == 2
    got.spec.template.spec.containers[0].image = "nginx:1.27"
    rep = apps.replace_namespaced_deployment("py-dep", "default", got)
    assert rep.metadata.generation == 3
    st = apps.patch_namespaced_deployment_status("py-dep", "default", {"status": {"replicas": 5, "readyReplicas": 1}})
    assert st.status.ready_replicas == 1 and st.metadata.generation == 3  # status writes do not bump generation
    assert [d.metadata.name for d in apps.list_namespaced_deployment("default").items] == ["py-dep"]
    apps.delete_namespaced_deployment("py-dep", "default")
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("py-dep", "default")
    assert exc.value.status == 404


def test_watch_stream_added_modified_deleted(api: Env) -> None:
    v1 = client.CoreV1Api(api.client())
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-watch")))
    seen: list[tuple[str, str, str]] = []
    ready = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(v1.list_namespaced_config_map, "py-watch", timeout_seconds=20):
            seen.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("k", "")))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    # One object exists before the watch starts: a watch without resourceVersion begins with it (ADDED).
    v1.create_namespaced_config_map(
        "py-watch", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pre"), data={"k": "0"})
    )
    t.start()
    time.sleep(0.5)
    ready.set()
    v1.create_namespaced_config_map(
        "py-watch", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={"k": "1"})
    )
    v1.patch_namespaced_config_map("w", "py-watch", {"data": {"k": "2"}})
    v1.delete_namespaced_config_map("w", "py-watch")
    t.join(20)
    assert seen == [("ADDED", "pre", "0"), ("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]


def test_watch_with_label_selector_sees_objects_enter_and_leave(api: Env) -> None:
    v1 = client.CoreV1Api(api.client())
    start_rv = v1.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(
            v1.list_namespaced_config_map,
            "default",
            label_selector="sel=yes",
            resource_version=start_rv,
            timeout_seconds=20,
        ):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="sel-a")))
    v1.patch_namespaced_config_map("sel-a", "default", {"metadata": {"labels": {"sel": "yes"}}})  # enters
    v1.patch_namespaced_config_map("sel-a", "default", {"data": {"x": "1"}})  # stays
    v1.patch_namespaced_config_map("sel-a", "default", {"metadata": {"labels": {"sel": "no"}}})  # leaves
    t.join(20)
    assert seen == [("ADDED", "sel-a"), ("MODIFIED", "sel-a"), ("DELETED", "sel-a")]
