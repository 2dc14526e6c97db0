"""Errors come back as Kubernetes ``Status`` objects and never change stored
data: stale resourceVersion (409), invalid object (422 naming the field), no
token (401), a write by the viewer (403), a node writing another node's pod
(403), a body over 3 MiB (413), malformed JSON (400), and friends."""

from __future__ import annotations

import json

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def _cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _pod(name: str, node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _status(r, code: int, reason: str) -> dict:
    assert r.status == code, r.body
    st = r.json
    assert st["kind"] == "Status" and st["apiVersion"] == "v1" and st["status"] == "Failure"
    assert st["code"] == code and st["reason"] == reason, st
    return st


@pytest.fixture(scope="module")
def stored(api: Env) -> dict:
    """A config map and two pods bound to n1 and n2, created once."""
    assert api.request("POST", CM, _cm("errs", a="1")).status == 201
    assert api.request("POST", PODS, _pod("on-n1", "n1")).status == 201
    assert api.request("POST", PODS, _pod("on-n2", "n2")).status == 201
    return {"cm": f"{CM}/errs", "pod1": f"{PODS}/on-n1", "pod2": f"{PODS}/on-n2"}


def _snapshot(api: Env, *paths: str) -> list[bytes]:
    out = []
    for p in paths:
        r = api.request("GET", p)
        assert r.status == 200
        out.append(r.body)
    return out


def test_stale_resource_version_is_409_and_changes_nothing(api: Env, stored: dict) -> None:
    before = api.request("GET", stored["cm"]).json
    stale = dict(before)
    ok = api.request("PUT", stored["cm"], {**before, "data": {"a": "2"}})
    assert ok.status == 200
    snap = _snapshot(api, stored["cm"])
    r = api.request("PUT", stored["cm"], {**stale, "data": {"a": "stale"}})
    st = _status(r, 409, "Conflict")
    assert "the object has been modified" in st["message"] and st["details"]["name"] == "errs"
    # A stale resourceVersion inside a patch is a precondition too.
    r = api.request(
        "PATCH",
        stored["cm"],
        {"metadata": {"resourceVersion": before["metadata"]["resourceVersion"]}, "data": {"a": "x"}},
        content_type="application/merge-patch+json",
    )
    _status(r, 409, "Conflict")
    assert _snapshot(api, stored["cm"]) == snap


def test_invalid_object_is_422_naming_the_field(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["pod1"])
    bad = _pod("bad-pod")
    bad["spec"]["containers"][0]["image"] = ""
    bad["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    r = api.request("POST", PODS, bad)
    st = _status(r, 422, "Invalid")
    assert st["details"]["kind"] == "Pod" and st["details"]["name"] == "bad-pod"
    causes = {c["field"]: c for c in st["details"]["causes"]}
    assert causes["spec.containers[0].image"]["reason"] == "FieldValueRequired"
    assert causes["spec.containers[0].ports[0].containerPort"]["reason"] == "FieldValueInvalid"
    assert "spec.containers[0].image: Required value" in st["message"]
    assert api.request("GET", f"{PODS}/bad-pod").status == 404
    # Invalid update: a deployment whose selector does not match its template, bad quantities, replicas < 0.
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad-dep"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "c"}},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]},
            },
        },
    }
    r = api.request("POST", "/apis/apps/v1/namespaces/default/deployments", dep)
    st = _status(r, 422, "Invalid")
    fields = {c["field"] for c in st["details"]["causes"]}
    assert {
        "spec.replicas",
        "spec.template.metadata.labels",
        "spec.template.spec.containers[0].resources.limits[cpu]",
    } <= fields
    # Invalid update of an existing pod (spec is immutable except for a few fields).
    pod = api.request("GET", stored["pod1"]).json
    pod["spec"]["containers"][0]["name"] = "renamed"
    st = _status(api.request("PUT", stored["pod1"], pod), 422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "spec"
    assert _snapshot(api, stored["pod1"]) == snap


def test_no_token_is_401(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["cm"])
    r = api.request("PUT", stored["cm"], _cm("errs", a="nope"), user=None)
    _status(r, 401, "Unauthorized")
    r = api.request("GET", CM, user=None)
    _status(r, 401, "Unauthorized")
    r = api.request("GET", CM, user=None, headers={"Authorization": "Bearer not-a-token"})
    _status(r, 401, "Unauthorized")
    assert _snapshot(api, stored["cm"]) == snap


def test_viewer_write_is_403(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["cm"])
    assert api.request("GET", stored["cm"], user="viewer").status == 200
    r = api.request(
        "PATCH", stored["cm"], {"data": {"a": "viewer"}}, user="viewer", content_type="application/merge-patch+json"
    )
    st = _status(r, 403, "Forbidden")
    assert st["message"] == (
        'configmaps "errs" is forbidden: User "viewer" cannot patch resource "configmaps" in '
        'API group "" in the namespace "default"'
    )
    _status(api.request("DELETE", stored["cm"], user="viewer"), 403, "Forbidden")
    _status(api.request("POST", CM, _cm("by-viewer"), user="viewer"), 403, "Forbidden")
    _status(api.request("GET", "/api/v1/namespaces/default/secrets", user="viewer"), 403, "Forbidden")
    assert _snapshot(api, stored["cm"]) == snap
    assert api.request("GET", f"{CM}/by-viewer").status == 404


def test_node_writing_another_nodes_pod_is_403(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["pod1"], stored["pod2"])
    # n1 may update the status of its own pod...
    r = api.request(
        "PATCH",
        stored["pod1"] + "/status",
        {"status": {"phase": "Running"}},
        user="n1",
        content_type="application/merge-patch+json",
    )
    assert r.status == 200, r.body
    snap = _snapshot(api, stored["pod1"], stored["pod2"])
    # ...but not n2's pod, nor delete it, nor change its own pod's spec.
    r = api.request(
        "PATCH",
        stored["pod2"] + "/status",
        {"status": {"phase": "Failed"}},
        user="n1",
        content_type="application/merge-patch+json",
    )
    st = _status(r, 403, "Forbidden")
    assert 'User "system:node:n1" cannot patch resource "pods/status"' in st["message"]
    assert "can only modify pods bound to it" in st["message"]
    _status(api.request("DELETE", stored["pod2"], user="n1"), 403, "Forbidden")
    _status(
        api.request(
            "PATCH",
            stored["pod1"],
            {"metadata": {"labels": {"x": "y"}}},
            user="n1",
            content_type="application/merge-patch+json",
        ),
        403,
        "Forbidden",
    )
    # Nodes: only its own Node object.
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}
    _status(api.request("POST", "/api/v1/nodes", node, user="n1"), 403, "Forbidden")
    assert api.request("POST", "/api/v1/nodes", {**node, "metadata": {"name": "n1"}}, user="n1").status == 201
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "n2"},
        "spec": {"holderIdentity": "n2", "leaseDurationSeconds": 40},
    }
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    _status(api.request("POST", leases, lease, user="n1"), 403, "Forbidden")
    lease["metadata"]["name"] = "n1"
    assert api.request("POST", leases, lease, user="n1").status == 201
    assert _snapshot(api, stored["pod1"], stored["pod2"]) == snap
    # and n2 may delete its own pod (a graceful delete of a bound pod: it becomes Terminating).
    r = api.request("DELETE", stored["pod2"], user="n2")
    assert r.status == 200 and r.json["metadata"]["deletionTimestamp"]


def test_body_over_3mib_is_413(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["cm"])
    big = _cm("errs", a="x" * (3 * 1024 * 1024 + 10))
    r = api.request("PUT", stored["cm"], big)
    _status(r, 413, "RequestEntityTooLarge")
    r = api.request("POST", CM, {**big, "metadata": {"name": "big"}})
    _status(r, 413, "RequestEntityTooLarge")
    assert _snapshot(api, stored["cm"]) == snap
    assert api.request("GET", f"{CM}/big").status == 404


def test_malformed_json_is_400(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["cm"])
    for raw in (b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "errs"', b"not json", b"[1, 2"):
        r = api.request("PUT", stored["cm"], raw=raw)
        _status(r, 400, "BadRequest")
        r = api.request("PATCH", stored["cm"], raw=raw, content_type="application/merge-patch+json")
        _status(r, 400, "BadRequest")
    assert _snapshot(api, stored["cm"]) == snap


def test_other_bad_input_is_rejected_without_changes(api: Env, stored: dict) -> None:
    snap = _snapshot(api, stored["cm"])
    cur = api.request("GET", stored["cm"]).json
    _status(api.request("GET", "/api/v1/namespaces/default/nosuchthings"), 404, "NotFound")
    _status(api.request("GET", f"{CM}/missing"), 404, "NotFound")
    # Wrong kind / apiVersion in the body.
    _status(api.request("PUT", stored["cm"], {**cur, "kind": "Secret"}), 400, "BadRequest")
    _status(api.request("PUT", stored["cm"], {**cur, "apiVersion": "apps/v1"}), 400, "BadRequest")
    # Name / namespace mismatch with the URL.
    _status(
        api.request("PUT", stored["cm"], {**cur, "metadata": {**cur["metadata"], "name": "other"}}), 400, "BadRequest"
    )
    _status(
        api.request("POST", CM, {**_cm("x"), "metadata": {"name": "x", "namespace": "kube-system"}}), 400, "BadRequest"
    )
    # Type errors are decode errors (400), unknown fields under Strict are 400 naming the field.
    _status(api.request("PUT", stored["cm"], {**cur, "data": {"a": 1}}), 400, "BadRequest")
    st = _status(
        api.request("PUT", stored["cm"] + "?fieldValidation=Strict", {**cur, "spec": {"x": 1}}), 400, "BadRequest"
    )
    assert st["message"] == 'strict decoding error: unknown field "spec"'
    # Unsupported patch type, bad JSON patch, bad selectors.
    r = api.request("PATCH", stored["cm"], {"data": {}}, content_type="application/x-thing")
    _status(r, 415, "UnsupportedMediaType")
    r = api.request(
        "PATCH",
        stored["cm"],
        [{"op": "test", "path": "/data/a", "value": "nope"}],
        content_type="application/json-patch+json",
    )
    assert r.status == 422
    _status(api.request("GET", CM + "?labelSelector=a%20in%20("), 400, "BadRequest")
    _status(api.request("GET", CM + "?fieldSelector=spec.nope%3Dx"), 400, "BadRequest")
    # Creating something that exists, or in a namespace that does not.
    _status(api.request("POST", CM, _cm("errs")), 409, "AlreadyExists")
    _status(api.request("POST", "/api/v1/namespaces/nowhere/configmaps", _cm("x")), 404, "NotFound")
    _status(api.request("DELETE", "/api/v1/namespaces/kube-system"), 403, "Forbidden")
    assert _snapshot(api, stored["cm"]) == snap


def test_warn_field_validation_sends_warning_header(api: Env) -> None:
    body = _cm("warned", a="1")
    body["bogus"] = True
    r = api.request("POST", CM + "?fieldValidation=Warn", body)
    assert r.status == 201
    assert r.headers.get_all("Warning") == ['299 - "unknown field \\"bogus\\""']
    assert "bogus" not in r.json
    r = api.request("POST", CM + "?dryRun=All", _cm("dry", a="1"))
    assert r.status == 201 and r.json["metadata"]["name"] == "dry"
    assert api.request("GET", f"{CM}/dry").status == 404
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}'
    r = api.request("POST", CM + "?fieldValidation=Strict", raw=raw)
    assert r.status == 400 and 'duplicate field \\"data\\"' in json.dumps(r.json["message"])
