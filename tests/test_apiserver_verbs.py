"""The verb contract: every served resource and subresource answers exactly the verbs kube-apiserver serves
for it (anything else is a 405 ``MethodNotAllowed`` Status), discovery advertises exactly those verbs, and a
collection DELETE follows Kubernetes' semantics (each object through the normal delete path and authorised on
its own, dry run deletes nothing, a failure part-way says what happened).

``KUBE_VERBS`` is written down from Kubernetes (its REST storage per kind, ``pkg/registry/*/*/storage/
storage.go``, as the official Python client's generated API also shows: there is no
``delete_collection_namespace``), not derived from raykube's own tables, so the tests compare the two.
"""

from __future__ import annotations

import uuid

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)
from multidict import MultiDict

from cluster.apiserver import discovery, errors, routing
from cluster.apiserver.resources import RESOURCES
from cluster.apiserver.routing import route, verb

ALL = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
STATUS = {"get", "patch", "update"}
KUBE_VERBS: dict[str, set[str]] = {
    "namespaces": ALL - {"deletecollection"},
    "namespaces/status": STATUS,
    "namespaces/finalize": {"update"},
    "nodes": ALL,
    "nodes/status": STATUS,
    "pods": ALL,
    "pods/status": STATUS,
    "pods/binding": {"create"},
    "pods/eviction": {"create"},
    "pods/log": {"get"},
    "services": ALL,
    "services/status": STATUS,
    "endpoints": ALL,
    "configmaps": ALL,
    "secrets": ALL,
    "events": ALL,
    "deployments": ALL,
    "deployments/status": STATUS,
    "deployments/scale": STATUS,
    "replicasets": ALL,
    "replicasets/status": STATUS,
    "replicasets/scale": STATUS,
    "leases": ALL,
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# The verb each method is on each shape of path (None: no verb, a 405 whatever the resource).
SHAPES: dict[str, dict[str, str | None]] = {
    "collection": {"GET": "list", "POST": "create", "PUT": None, "PATCH": None, "DELETE": "deletecollection"},
    "all-namespaces": {"GET": "list", "POST": None, "PUT": None, "PATCH": None, "DELETE": None},
    "object": {"GET": "get", "POST": None, "PUT": "update", "PATCH": "patch", "DELETE": "delete"},
    "watch": {"GET": "watch", "POST": None, "PUT": None, "PATCH": None, "DELETE": None},
    "subresource": {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"},
}


def _paths(ns: str) -> list[tuple[str, str, str]]:
    """(resource or resource/subresource, shape, path) for every served path, objects named "absent"."""
    out = []
    for r in RESOURCES:
        coll = f"{r.gv_path}/namespaces/{ns}/{r.plural}" if r.namespaced else f"{r.gv_path}/{r.plural}"
        out.append((r.plural, "collection", coll))
        out.append((r.plural, "object", f"{coll}/absent"))
        watch = f"{r.gv_path}/watch/namespaces/{ns}/{r.plural}" if r.namespaced else f"{r.gv_path}/watch/{r.plural}"
        out.append((r.plural, "watch", watch))
        if r.namespaced:
            out.append((r.plural, "all-namespaces", f"{r.gv_path}/{r.plural}"))
        for s in r.subresources:
            out.append((f"{r.plural}/{s.name}", "subresource", f"{coll}/absent/{s.name}"))
    return out


def _expected_verb(resource: str, shape: str, method: str) -> str | None:
    v = SHAPES[shape].get(method)
    return v if v in KUBE_VERBS[resource] else None


# ------------------------------------------------------------------- pure


def test_the_verb_table_is_kubernetes() -> None:
    table = {r.plural: set(r.verbs) for r in RESOURCES}
    table |= {f"{r.plural}/{s.name}": set(s.verbs) for r in RESOURCES for s in r.subresources}
    assert table == KUBE_VERBS


def test_discovery_advertises_what_routing_serves() -> None:
    advertised = {}
    for g, vs in discovery.GROUPS.items():
        for v in vs:
            for item in discovery.resource_list(g, v)["resources"]:
                advertised[item["name"]] = set(item["verbs"])
    served: dict[str, set[str]] = {}
    for resource, _shape, path in _paths("default"):
        served.setdefault(resource, set()).update(routing.served_verbs(route([p for p in path.split("/") if p])))
    assert served == advertised == KUBE_VERBS


@pytest.mark.parametrize("resource,shape,path", _paths("default"), ids=lambda x: str(x))
def test_every_method_maps_to_a_served_verb_or_405(resource: str, shape: str, path: str) -> None:
    r = route([p for p in path.split("/") if p])
    assert r is not None
    for method in METHODS:
        want = _expected_verb(resource, shape, method) if method != "OPTIONS" else None
        try:
            got = verb(method, MultiDict(), r)
            served = got in routing.served_verbs(r)
        except Exception as exc:  # the 405 APIError
            assert getattr(exc, "code", None) == 405, exc
            served = False
        assert served == (want is not None), (method, path)
        if want is not None:
            assert got == want


# ---------------------------------------------------------------- network


def test_every_path_and_method_answers_as_kubernetes_does(api: Env) -> None:
    """Every (path, method): 405 Status where kube-apiserver serves no verb, never a 405 (or 5xx) where it
    does. Writes are dry runs and objects are absent, so nothing changes."""
    wrong = []
    for resource, shape, path in _paths("default"):
        for method in METHODS:
            q = "?dryRun=All&resourceVersion=not-a-number" if shape == "watch" or method != "GET" else ""
            body = {} if method in ("POST", "PUT", "PATCH") else None
            ct = "application/merge-patch+json" if method == "PATCH" else "application/json"
            r = api.request(method, path + q, body, content_type=ct)
            want = _expected_verb(resource, shape, method) if method != "OPTIONS" else None
            if want is None:
                st = r.json or {}
                if r.status != 405 or st.get("kind") != "Status" or st.get("reason") != "MethodNotAllowed":
                    wrong.append((method, path, r.status, r.body[:200]))
            elif r.status == 405 or r.status >= 500:
                wrong.append((method, path, r.status, r.body[:200]))
    assert wrong == []


def test_live_discovery_matches_the_kubernetes_verbs(api: Env) -> None:
    advertised: dict[str, set[str]] = {}
    for gv in ("/api/v1", "/apis/apps/v1", "/apis/coordination.k8s.io/v1"):
        for item in api.request("GET", gv).json["resources"]:
            advertised[item["name"]] = set(item["verbs"])
    agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    for top in ("/api", "/apis"):
        for group in api.request("GET", top, headers={"Accept": agg}).json["items"]:
            for res in group["versions"][0]["resources"]:
                assert set(res["verbs"]) == KUBE_VERBS[res["resource"]]
                for sub in res.get("subresources") or []:
                    assert set(sub["verbs"]) == KUBE_VERBS[f"{res['resource']}/{sub['subresource']}"]
    assert advertised == KUBE_VERBS


def test_namespace_collection_delete_is_405_and_deletes_nothing(api: Env) -> None:
    """Issue 10, bug 1: ``DELETE /api/v1/namespaces`` deleted every namespace sorting before ``default``."""
    ns = "aa-" + uuid.uuid4().hex[:8]
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    r = api.request("DELETE", "/api/v1/namespaces")
    assert r.status == 405, r.body
    assert r.json["kind"] == "Status" and r.json["reason"] == "MethodNotAllowed" and r.json["code"] == 405
    got = api.request("GET", f"/api/v1/namespaces/{ns}")
    assert got.status == 200 and "deletionTimestamp" not in got.json["metadata"], got.body
    assert got.json["status"]["phase"] == "Active"
    # A user without the right still gets the 403 of authorisation first, as from kube-apiserver.
    assert api.request("DELETE", "/api/v1/namespaces", user="viewer").status == 403


def test_writes_to_a_watch_path_or_all_namespaces_are_405(api: Env) -> None:
    cm = {"metadata": {"name": "nowhere"}}
    for path in ("/api/v1/watch/namespaces/default/configmaps", "/api/v1/configmaps"):
        assert api.request("POST", path, cm).status == 405
        assert api.request("DELETE", path).status == 405
    assert api.request("GET", "/api/v1/namespaces/default/configmaps/nowhere").status == 404


# ------------------------------------------------------ collection deletes


def _make_cms(api: Env, ns: str, names: list[str], **md: object) -> dict[str, dict]:
    out = {}
    for n in names:
        r = api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": n, **md}})
        assert r.status == 201, r.body
        out[n] = r.json
    return out


@pytest.fixture
def ns(api: Env) -> str:
    name = "dc-" + uuid.uuid4().hex[:8]
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}}).status == 201
    return name


def _names(api: Env, ns: str, selector: str) -> list[str]:
    r = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps?labelSelector={selector}")
    return sorted(o["metadata"]["name"] for o in r.json["items"])


def test_dry_run_collection_delete_deletes_nothing(api: Env, ns: str) -> None:
    _make_cms(api, ns, ["a", "b"], labels={"set": "dry"})
    for body, q in (({"dryRun": ["All"]}, ""), (None, "&dryRun=All")):
        r = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Ddry{q}", body)
        assert r.status == 200 and sorted(o["metadata"]["name"] for o in r.json["items"]) == ["a", "b"]
        assert _names(api, ns, "set%3Ddry") == ["a", "b"]
    bad = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps", {"dryRun": ["Everything"]})
    assert bad.status == 422 and bad.json["details"]["causes"][0]["field"] == "dryRun"
    assert api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps", {"dryRun": "All"}).status == 400
    assert _names(api, ns, "set%3Ddry") == ["a", "b"]


def test_collection_delete_goes_through_the_normal_delete_path(api: Env, ns: str) -> None:
    _make_cms(api, ns, ["held"], labels={"set": "fin"}, finalizers=["example.com/hold"])
    _make_cms(api, ns, ["free"], labels={"set": "fin"})
    r = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Dfin")
    assert r.status == 200 and r.json["kind"] == "ConfigMapList"
    # The finalizer holds "held": marked for deletion, not removed; "free" is gone.
    assert _names(api, ns, "set%3Dfin") == ["held"]
    held = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/held").json
    assert held["metadata"]["deletionTimestamp"]
    # A pod bound to a node gets its grace period, as a DELETE of it would.
    pod = {"metadata": {"name": "p", "labels": {"set": "pods"}}, "spec": {"nodeName": "n1", "containers": []}}
    pod["spec"]["containers"] = [{"name": "c", "image": "busybox"}]
    assert api.request("POST", f"/api/v1/namespaces/{ns}/pods", pod).status == 201
    r = api.request("DELETE", f"/api/v1/namespaces/{ns}/pods?labelSelector=set%3Dpods")
    assert r.status == 200, r.body
    got = api.request("GET", f"/api/v1/namespaces/{ns}/pods/p").json
    assert got["metadata"]["deletionGracePeriodSeconds"] == 30 and got["metadata"]["deletionTimestamp"]


def test_collection_delete_failing_part_way_reports_what_it_did(api: Env, ns: str) -> None:
    made = _make_cms(api, ns, ["pf-a", "pf-b", "pf-c"], labels={"set": "pf"})
    # The precondition (pf-a's uid) holds for pf-a only: pf-a goes, pf-b is a 409 and stops the walk.
    pre = {"preconditions": {"uid": made["pf-a"]["metadata"]["uid"]}}
    r = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Dpf", pre)
    assert r.status == 409 and r.json["reason"] == "Conflict", r.body
    msg = r.json["message"]
    assert "Precondition failed" in msg and "1 of the 3 matching configmaps were deleted" in msg and "pf-a" in msg
    assert _names(api, ns, "set%3Dpf") == ["pf-b", "pf-c"]


def test_collection_delete_needs_the_deletecollection_right(api: Env, ns: str) -> None:
    _make_cms(api, ns, ["auth-a"], labels={"set": "auth"})
    # The viewer may not delete collections: a 403 before anything is touched.
    r = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Dauth", user="viewer")
    assert r.status == 403 and _names(api, ns, "set%3Dauth") == ["auth-a"]
    # A node may delete pods bound to it, but not collections of pods.
    assert api.request("DELETE", f"/api/v1/namespaces/{ns}/pods", user="n1").status == 403


class FakeRegistry:
    """Just what delete_collection asks of a registry: list, then delete one object at a time."""

    def __init__(self, names: list[str], gone: set[str]) -> None:
        self.items = [{"metadata": {"name": n, "namespace": "ns"}} for n in names]
        self.gone = gone
        self.deleted: list[tuple[str, dict]] = []

    async def list(self, rdef, ns, lsel, fsel):
        return self.items, {"resourceVersion": "7"}

    async def delete(self, rdef, ns, name, options, opts, check):
        if name in self.gone:
            raise errors.not_found(rdef.plural, rdef.group, name)
        if check is not None:
            check({"metadata": {"name": name}}, None)
        options["mutated"] = name  # a graceful delete may change its options: the next object must not see it
        self.deleted.append((name, options))
        return {"metadata": {"name": name}}, True


async def test_collection_delete_authorises_each_object_and_reports_where_it_stopped() -> None:
    from cluster.apiserver.deletecollection import delete_collection
    from cluster.apiserver.options import WriteOptions
    from cluster.apiserver.resources import served
    from cluster.apiserver.selector import FieldSelector, LabelSelector

    reg = FakeRegistry(["a", "b", "c", "d"], gone={"b"})
    asked: list[str] = []

    def authorize(obj: dict):
        name = obj["metadata"]["name"]
        asked.append(name)
        if name == "d":
            raise errors.forbidden(f'configmaps "{name}" is forbidden', "configmaps", "", name)

        def check(old, new):
            assert old["metadata"]["name"] == name

        return check

    cms = served("configmaps")
    with pytest.raises(errors.APIError) as exc:
        await delete_collection(reg, cms, "ns", LabelSelector(), FieldSelector(), {"o": 1}, WriteOptions(), authorize)
    assert asked == ["a", "b", "c", "d"]  # each object authorised on its own, "b" (already gone) skipped
    assert [n for n, _ in reg.deleted] == ["a", "c"]
    assert all(opts == {"o": 1, "mutated": n} for n, opts in reg.deleted)  # a copy of the options each
    e = exc.value
    assert e.code == 403 and e.reason == "Forbidden" and e.details == {"kind": "configmaps", "name": "d"}
    assert "2 of the 4 matching configmaps were deleted before it (a, c)" in e.message
    out, meta = await delete_collection(
        FakeRegistry(["x"], set()), cms, "ns", LabelSelector(), FieldSelector(), {}, WriteOptions(), lambda o: None
    )
    assert [o["metadata"]["name"] for o in out] == ["x"] and meta == {"resourceVersion": "7"}
