"""REST semantics over raw HTTPS: watch from a resourceVersion, bookmarks,
sendInitialEvents, 410 after compaction; list pagination; finalizers,
propagation policies and graceful deletion; binding; eviction; service IP
allocation; patches; no lost updates under concurrent writers; discovery and
OpenAPI documents; Table output."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)

from raftstore.client import RaftstoreClient

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
SVCS = "/api/v1/namespaces/default/services"


def cm(name: str, labels: dict | None = None, **data: str) -> dict:
    md: dict[str, Any] = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


def watch_lines(api: Env, path: str, want: int, timeout: float = 15.0, *, stop_on=None) -> list[dict]:
    """Open a watch and collect ``want`` events (or until timeout)."""
    conn = api.connection(timeout)
    conn.request("GET", path, headers={"Authorization": f"Bearer {api.tokens['admin']}"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            line = r.readline()
            if not line:
                break
            if line.strip():
                ev = json.loads(line)
                out.append(ev)
                if stop_on and stop_on(ev):
                    break
    finally:
        conn.close()
    return out


class Watcher:
    """A watch read in a background thread."""

    def __init__(self, api: Env, path: str) -> None:
        self.events: list[dict] = []
        self.conn = api.connection(60)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {api.tokens['admin']}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                if line.strip():
                    self.events.append(json.loads(line))
        except Exception:  # the test closed the connection
            return

    def wait_for(self, pred, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events):
                return self.events
            time.sleep(0.02)
        raise AssertionError(f"condition not met; events: {self.events}")

    def close(self) -> None:
        try:
            self.conn.sock.shutdown(2)  # type: ignore[union-attr]
        except OSError:
            pass
        self.conn.close()


# ------------------------------------------------------------------ watch


def test_watch_from_resource_version_delivers_each_change_once_in_order(api: Env) -> None:
    rv = api.request("GET", CM).json["metadata"]["resourceVersion"]
    revs = []
    for i in range(5):
        r = api.request("POST", CM, cm(f"wv-{i}", v=str(i)))
        revs.append(r.json["metadata"]["resourceVersion"])
    r = api.request("PATCH", f"{CM}/wv-0", {"data": {"v": "x"}}, content_type="application/merge-patch+json")
    revs.append(r.json["metadata"]["resourceVersion"])
    r = api.request("DELETE", f"{CM}/wv-1")
    assert r.status == 200
    evs = watch_lines(api, f"{CM}?watch=1&resourceVersion={rv}", 7)
    assert [e["type"] for e in evs] == ["ADDED"] * 5 + ["MODIFIED", "DELETED"]
    assert [e["object"]["metadata"]["resourceVersion"] for e in evs[:6]] == revs
    assert evs[6]["object"]["metadata"]["name"] == "wv-1"
    assert int(evs[6]["object"]["metadata"]["resourceVersion"]) > int(revs[-1])
    # From the middle: only the later changes.
    evs = watch_lines(api, f"{CM}?watch=true&resourceVersion={revs[3]}&timeoutSeconds=1", 10)
    assert [e["object"]["metadata"]["name"] for e in evs] == ["wv-4", "wv-0", "wv-1"]


def test_watch_bookmarks_and_send_initial_events(api: Env) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wl"}}
    assert api.request("POST", "/api/v1/namespaces", ns).status == 201
    base = "/api/v1/namespaces/wl/configmaps"
    for i in range(3):
        api.request("POST", base, cm(f"init-{i}"))
    path = (
        f"{base}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        "&timeoutSeconds=5"
    )
    evs = watch_lines(api, path, 4)
    assert [e["type"] for e in evs] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
    bm = evs[3]["object"]
    assert bm["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bm["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in evs[:3]
    )
    # sendInitialEvents without resourceVersionMatch=NotOlderThan is invalid.
    r = api.request("GET", f"{base}?watch=1&sendInitialEvents=true")
    assert r.status == 422


def test_watch_of_compacted_revision_gets_410_expired(api: Env) -> None:
    old = api.request("POST", CM, cm("before-compact")).json["metadata"]["resourceVersion"]
    for i in range(3):
        api.request("POST", CM, cm(f"after-compact-{i}"))
    rv = int(api.request("GET", CM).json["metadata"]["resourceVersion"])

    async def compact() -> None:
        async with RaftstoreClient(api.cluster.endpoints) as c:
            await c.compact(rv)

    asyncio.run(compact())
    evs = watch_lines(api, f"{CM}?watch=1&resourceVersion={int(old) - 1}", 1)
    assert evs and evs[0]["type"] == "ERROR"
    st = evs[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    # A list continuation token from before the compaction is 410 too.
    r = api.request("GET", f"{CM}?limit=1&resourceVersion={int(old)}&resourceVersionMatch=Exact")
    assert r.status == 410 and r.json["reason"] == "Expired"
    # Watching from the current revision works.
    evs = watch_lines(api, f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1", 1)
    assert evs == []


# ------------------------------------------------------------------- lists


def test_list_pagination_and_selectors(api: Env) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "paged"}}
    assert api.request("POST", "/api/v1/namespaces", ns).status == 201
    base = "/api/v1/namespaces/paged/configmaps"
    for i in range(7):
        api.request("POST", base, cm(f"p{i}", labels={"n": str(i), "even": str(i % 2 == 0).lower()}))
    names, cont, pages, rvs = [], "", 0, set()
    while True:
        r = api.request("GET", f"{base}?limit=3" + (f"&continue={cont}" if cont else "")).json
        pages += 1
        names += [i["metadata"]["name"] for i in r["items"]]
        rvs.add(r["metadata"]["resourceVersion"])
        cont = r["metadata"].get("continue", "")
        if not cont:
            break
        assert r["metadata"]["remainingItemCount"] == 7 - len(names)
        api.request("POST", base, cm(f"late-{pages}"))  # not visible: pages are a consistent snapshot
    assert names == [f"p{i}" for i in range(7)] and pages == 3 and len(rvs) == 1
    sel = lambda q: [i["metadata"]["name"] for i in api.request("GET", f"{base}?labelSelector={q}").json["items"]]
    assert sel("even%3Dtrue") == ["p0", "p2", "p4", "p6"]
    assert sel("even!%3Dtrue,n") == ["p1", "p3", "p5"]
    assert sel("n%20in%20(1,2),even%3D%3Dfalse") == ["p1"]
    assert sel("n%20notin%20(0,1,2,3,4,5)") == ["late-1", "late-2", "p6"]
    assert sel("!n") == ["late-1", "late-2"]
    # Filtered pages still fill up to the limit.
    r = api.request("GET", f"{base}?limit=2&labelSelector=even%3Dtrue").json
    assert [i["metadata"]["name"] for i in r["items"]] == ["p0", "p2"] and r["metadata"]["continue"]
    r = api.request("GET", f"{base}?limit=2&labelSelector=even%3Dtrue&continue={r['metadata']['continue']}").json
    assert [i["metadata"]["name"] for i in r["items"]] == ["p4", "p6"]
    r = api.request("GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dpaged,metadata.name!%3Dp0").json
    assert len(r["items"]) == 8
    bad = api.request("GET", f"{base}?limit=1&continue=garbage")
    assert bad.status == 400


# --------------------------------------------------------------- deletion


def test_finalizers_propagation_and_graceful_deletion(api: Env) -> None:
    api.request("POST", CM, {**cm("fin"), "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})
    r = api.request("DELETE", f"{CM}/fin")
    assert r.status == 200 and r.json["metadata"]["deletionTimestamp"]
    assert api.request("GET", f"{CM}/fin").status == 200  # held by its finalizer
    # New finalizers cannot be added while deleting; clearing the last one removes the object.
    r = api.request(
        "PATCH",
        f"{CM}/fin",
        {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}},
        content_type="application/merge-patch+json",
    )
    assert r.status == 422
    r = api.request(
        "PATCH", f"{CM}/fin", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
    )
    assert r.status == 200
    assert api.request("GET", f"{CM}/fin").status == 404

    # propagationPolicy Orphan / Foreground set the GC finalizers and keep the object.
    for policy, fin in (("Orphan", "orphan"), ("Foreground", "foregroundDeletion")):
        name = f"gc-{fin.lower()}"
        api.request("POST", CM, cm(name))
        r = api.request("DELETE", f"{CM}/{name}", {"propagationPolicy": policy})
        assert r.status == 200 and r.json["metadata"]["finalizers"] == [fin]
        assert r.json["metadata"]["deletionTimestamp"]
    r = api.request("DELETE", f"{CM}/gc-orphan", {"propagationPolicy": "Sideways"})
    assert r.status == 422
    # Background (and no finalizers): gone at once, and the answer is a Status.
    api.request("POST", CM, cm("gc-bg"))
    r = api.request("DELETE", f"{CM}/gc-bg?propagationPolicy=Background")
    assert r.status == 200 and r.json["kind"] == "Status" and r.json["status"] == "Success"

    # A pod bound to a node is deleted gracefully; an unbound one at once; grace 0 forces it.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "graceful"},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 7,
            "containers": [{"name": "c", "image": "busybox"}],
        },
    }
    assert api.request("POST", PODS, pod).status == 201
    r = api.request("DELETE", f"{PODS}/graceful")
    assert r.json["metadata"]["deletionGracePeriodSeconds"] == 7 and r.json["metadata"]["generation"] == 2
    r = api.request("DELETE", f"{PODS}/graceful", {"gracePeriodSeconds": 3})
    assert r.json["metadata"]["deletionGracePeriodSeconds"] == 3
    r = api.request("DELETE", f"{PODS}/graceful?gracePeriodSeconds=0")
    assert r.status == 200 and api.request("GET", f"{PODS}/graceful").status == 404
    # Preconditions.
    api.request("POST", CM, cm("precond"))
    r = api.request("DELETE", f"{CM}/precond", {"preconditions": {"uid": "not-the-uid"}})
    assert r.status == 409
    # dryRun deletes nothing.
    assert api.request("DELETE", f"{CM}/precond?dryRun=All").status == 200
    assert api.request("GET", f"{CM}/precond").status == 200


# --------------------------------------------------------------- subresources


def test_binding_sets_node_once_and_eviction_deletes(api: Env) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tobind"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    assert api.request("POST", PODS, pod).status == 201
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "tobind"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    r = api.request("POST", f"{PODS}/tobind/binding", binding, user="scheduler")
    assert r.status == 201 and r.json["status"] == "Success"
    got = api.request("GET", f"{PODS}/tobind").json
    assert got["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    r = api.request("POST", f"{PODS}/tobind/binding", {**binding, "target": {"kind": "Node", "name": "n2"}})
    assert r.status == 409 and r.json["reason"] == "Conflict" and 'already assigned to node "n1"' in r.json["message"]
    assert api.request("GET", f"{PODS}/tobind").json["spec"]["nodeName"] == "n1"
    # Eviction of the (bound) pod starts its graceful deletion.
    ev = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "tobind"}}
    r = api.request("POST", f"{PODS}/tobind/eviction", ev)
    assert r.status == 201
    assert api.request("GET", f"{PODS}/tobind").json["metadata"]["deletionTimestamp"]


def test_services_get_cluster_ips_and_node_ports(api: Env) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    a = api.request("POST", SVCS, svc).json
    assert a["spec"]["type"] == "ClusterIP" and a["spec"]["clusterIP"].startswith("127.96.")
    assert a["spec"]["ports"][0]["protocol"] == "TCP"
    np = {**svc, "metadata": {"name": "web-np"}, "spec": {**svc["spec"], "type": "NodePort"}}
    b = api.request("POST", SVCS, np).json
    assert b["spec"]["clusterIP"] != a["spec"]["clusterIP"]
    assert 30000 <= b["spec"]["ports"][0]["nodePort"] <= 32767
    # A taken IP cannot be requested again; a released one can.
    dup = {**svc, "metadata": {"name": "dup"}, "spec": {**svc["spec"], "clusterIP": a["spec"]["clusterIP"]}}
    r = api.request("POST", SVCS, dup)
    assert r.status == 422 and "already allocated" in r.json["message"]
    assert api.request("DELETE", f"{SVCS}/web").status == 200
    assert api.request("POST", SVCS, dup).status == 201
    # Changing the clusterIP is invalid; updates keep it.
    cur = api.request("GET", f"{SVCS}/web-np").json
    cur["spec"]["clusterIP"] = "127.96.9.9"
    assert api.request("PUT", f"{SVCS}/web-np", cur).status == 422
    bad = {**svc, "metadata": {"name": "noports"}, "spec": {"selector": {"a": "b"}}}
    r = api.request("POST", SVCS, bad)
    assert r.status == 422 and r.json["details"]["causes"][0]["field"] == "spec.ports"


# ------------------------------------------------------------------ patches


def test_patch_flavours(api: Env) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "patchy"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "one", "image": "x:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "two", "image": "y:1"},
                    ]
                },
            },
        },
    }
    assert api.request("POST", DEPLOYS, dep).status == 201
    smp = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "two", "image": "y:2"},
                        {"name": "one", "env": [{"name": "B", "value": "2"}, {"$patch": "delete", "name": "A"}]},
                        {"name": "three", "image": "z:1"},
                    ]
                }
            }
        }
    }
    r = api.request("PATCH", f"{DEPLOYS}/patchy", smp, content_type="application/strategic-merge-patch+json")
    assert r.status == 200, r.body
    cs = r.json["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("one", "x:1"), ("two", "y:2"), ("three", "z:1")]
    assert cs[0]["env"] == [{"name": "B", "value": "2"}]
    assert r.json["metadata"]["generation"] == 2
    jp = [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        {"op": "remove", "path": "/spec/template/spec/containers/2"},
    ]
    r = api.request("PATCH", f"{DEPLOYS}/patchy", jp, content_type="application/json-patch+json")
    assert (
        r.status == 200
        and r.json["spec"]["replicas"] == 4
        and len(r.json["spec"]["template"]["spec"]["containers"]) == 2
    )
    r = api.request(
        "PATCH",
        f"{DEPLOYS}/patchy",
        {"spec": {"template": {"spec": {"containers": [{"name": "solo", "image": "s:1"}]}}}},
        content_type="application/merge-patch+json",
    )
    assert [c["name"] for c in r.json["spec"]["template"]["spec"]["containers"]] == ["solo"]
    # $patch: replace on a list.
    r = api.request(
        "PATCH",
        f"{DEPLOYS}/patchy",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "r", "image": "r:1"}]}}}},
        content_type="application/strategic-merge-patch+json",
    )
    assert [c["name"] for c in r.json["spec"]["template"]["spec"]["containers"]] == ["r"]
    # Server-side apply: create, then merge, with managedFields.
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}}
    r = api.request("PATCH", f"{CM}/applied?fieldManager=tester", applied, content_type="application/apply-patch+yaml")
    assert r.status == 201 and r.json["data"] == {"k": "v"}
    r = api.request(
        "PATCH",
        f"{CM}/applied?fieldManager=tester",
        raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k2: v2\n",
        content_type="application/apply-patch+yaml",
    )
    assert r.status == 200 and r.json["data"] == {"k2": "v2"}
    assert r.json["metadata"]["managedFields"][0]["manager"] == "tester"
    r = api.request("PATCH", f"{CM}/applied", applied, content_type="application/apply-patch+yaml")
    assert r.status == 422  # fieldManager is required for apply


def test_concurrent_writers_lose_no_update(api: Env) -> None:
    api.request("POST", CM, cm("counter", n="0"))

    def bump(_: int) -> int:
        # Read-modify-write with optimistic concurrency: retry on 409 like every Kubernetes client.
        while True:
            cur = api.request("GET", f"{CM}/counter").json
            cur["data"]["n"] = str(int(cur["data"]["n"]) + 1)
            r = api.request("PUT", f"{CM}/counter", cur)
            if r.status == 200:
                return 1
            assert r.status == 409, r.body

    def add_label(i: int) -> int:
        # Patches without a resourceVersion are retried by the server on a lost compare.
        r = api.request(
            "PATCH",
            f"{CM}/counter",
            {"metadata": {"labels": {f"l{i}": "x"}}},
            content_type="application/merge-patch+json",
        )
        assert r.status == 200, r.body
        return 1

    with ThreadPoolExecutor(8) as ex:
        assert sum(ex.map(bump, range(30))) == 30
        assert sum(ex.map(add_label, range(30))) == 30
    final = api.request("GET", f"{CM}/counter").json
    assert final["data"]["n"] == "30"
    assert len(final["metadata"]["labels"]) == 30


# --------------------------------------------------------------- discovery


def test_discovery_documents(api: Env) -> None:
    agg = api.request(
        "GET",
        "/apis",
        headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"},
    )
    assert agg.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: g for g in agg.json["items"]}
    assert {"apps", "coordination.k8s.io"} <= set(groups)
    deps = next(r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments")
    assert {
        "subresource": "scale",
        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "verbs": ["get", "patch", "update"],
    } in deps["subresources"]
    core = api.request("GET", "/api/v1").json
    names = {r["name"] for r in core["resources"]}
    assert {
        "pods",
        "pods/status",
        "pods/binding",
        "pods/log",
        "pods/eviction",
        "services",
        "endpoints",
        "events",
        "nodes",
        "namespaces",
        "configmaps",
        "secrets",
    } <= names
    assert api.request("GET", "/api").json["versions"] == ["v1"]
    assert api.request("GET", "/version", user=None).json["minor"] == "37"
    idx = api.request("GET", "/openapi/v3").json["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"} <= set(idx)
    doc = api.request("GET", idx["apis/apps/v1"]["serverRelativeURL"]).json
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    containers = doc["components"]["schemas"]["V1PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_table_output(api: Env) -> None:
    hdr = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    t = api.request("GET", "/api/v1/namespaces", headers=hdr).json
    assert t["kind"] == "Table" and [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert ["default", "Active"] == t["rows"][0]["cells"][:2]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    t = api.request(
        "GET",
        "/api/v1/namespaces/default?includeObject=Object".replace("namespaces/default", "namespaces/default"),
        headers=hdr,
    ).json
    assert t["rows"][0]["object"]["kind"] == "Namespace"
