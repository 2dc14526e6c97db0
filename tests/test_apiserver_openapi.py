"""The served OpenAPI v3 documents: built from the resource table, valid, and true to what the server answers.

The first half needs no server: it builds the documents (``cluster.apiserver.openapi``)
and checks their shape against the resource table and kube-apiserver's layout
(path parameters, list kinds, Scale, delete answers, status codes, query
parameters) and validates each with ``openapi-spec-validator``. The second half
fetches every group's document from a live API server (``apiserver_fixtures``),
validates it, checks real answers against the documented schemas, and runs
``kubectl explain`` and the official Python client against the server.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)

from cluster.apiserver import discovery, openapi, openapi_schemas
from cluster.apiserver.resources import RESOURCES, ResourceDef, Subresource, group_versions
from cluster.apiserver.strategies import STRATEGIES

LIST_PARAMS = {
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "watch",
    "allowWatchBookmarks",
    "timeoutSeconds",
    "sendInitialEvents",
}
WRITE_PARAMS = {"dryRun", "fieldManager", "fieldValidation"}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    built, _ = discovery.build_openapi()
    return {k: json.loads(v) for k, v in built.items()}


def doc_of(docs: dict[str, dict[str, Any]], r: ResourceDef) -> dict[str, Any]:
    return docs[discovery.openapi_key(r.group, r.version)]


def base(r: ResourceDef) -> str:
    return r.gv_path + ("/namespaces/{namespace}" if r.namespaced else "") + "/" + r.plural


def params(path_item: dict[str, Any], op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every parameter of ``op``: its own and its path's."""
    return {p["name"]: p for p in path_item.get("parameters", []) + op.get("parameters", [])}


def schema_ref(op: dict[str, Any], code: str, media: str = "application/json") -> Any:
    return op["responses"][code]["content"][media]["schema"]


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for v in node.values():
            out |= refs(v)
        return out
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node)) if node else set()
    return set()


# ------------------------------------------------------------------ pure


def test_a_document_per_served_group_version_and_paths_per_resource(docs: dict[str, dict[str, Any]]) -> None:
    assert set(docs) == {discovery.openapi_key(g, v) for g, v in group_versions()}
    for r in RESOURCES:
        paths = doc_of(docs, r)["paths"]
        coll, item = paths[base(r)], paths[base(r) + "/{name}"]
        assert ("get" in coll) == ("list" in r.verbs) and ("post" in coll) == ("create" in r.verbs)
        assert ("delete" in coll) == ("deletecollection" in r.verbs), r.plural
        assert {"get", "put", "patch", "delete"} <= set(item), r.plural
        for s in r.subresources:
            sub = paths[f"{base(r)}/{{name}}/{s.name}"]
            verbs = {"get": "get", "put": "update", "patch": "patch", "post": "create"}
            assert {verbs[m] for m in sub if m in verbs} == set(s.verbs), (r.plural, s.name)
        if r.namespaced:
            assert set(paths[f"{r.gv_path}/{r.plural}"]) == {"parameters", "get"}  # all namespaces: list only
        assert f"{r.gv_path}/watch/{r.plural}" in paths


def test_path_parameters_are_declared(docs: dict[str, dict[str, Any]]) -> None:
    for doc in docs.values():
        for path, item in doc["paths"].items():
            for method in METHODS:
                if method not in item:
                    continue
                declared = {n for n, p in params(item, item[method]).items() if p["in"] == "path"}
                assert declared == set(re.findall(r"{(\w+)}", path)), (path, method)
                for n in declared:
                    assert params(item, item[method])[n]["required"] is True


def test_operation_ids_are_kube_apiservers_and_unique(docs: dict[str, dict[str, Any]]) -> None:
    core = docs["api/v1"]["paths"]
    assert core["/api/v1/namespaces/{namespace}/pods"]["get"]["operationId"] == "listCoreV1NamespacedPod"
    assert core["/api/v1/namespaces/{namespace}/pods"]["delete"]["operationId"] == "deleteCoreV1CollectionNamespacedPod"
    assert core["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert core["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"] == "replaceCoreV1NamespaceFinalize"
    assert core["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["operationId"] == "watchCoreV1NamespacedPodList"
    lease = docs["apis/coordination.k8s.io/v1"]["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"]
    assert lease["post"]["operationId"] == "createCoordinationV1NamespacedLease"
    assert openapi.camel_group("rbac.authorization.k8s.io", "v1beta1") == "RbacAuthorizationV1beta1"
    ids = [
        op["operationId"]
        for doc in docs.values()
        for item in doc["paths"].values()
        for m, op in item.items()
        if m in METHODS
    ]
    assert len(ids) == len(set(ids))


def test_lists_answer_the_list_kind_and_take_list_options(docs: dict[str, dict[str, Any]]) -> None:
    for r in RESOURCES:
        doc = doc_of(docs, r)
        item = doc["paths"][base(r)]
        lst = schema_ref(item["get"], "200")
        assert lst == {"$ref": f"#/components/schemas/{r.schema}List"}
        comp = doc["components"]["schemas"][f"{r.schema}List"]
        assert comp["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{r.schema}"}
        assert comp["x-kubernetes-group-version-kind"] == [
            {"group": r.group, "kind": r.list_kind, "version": r.version}
        ]
        assert LIST_PARAMS <= set(params(item, item["get"]))
        assert schema_ref(item["get"], "200", "application/json;stream=watch")["$ref"].endswith("/V1WatchEvent")
        # a collection delete is documented exactly where it is served (namespaces have none, as upstream)
        assert ("delete" in item) == ("deletecollection" in r.verbs), r.plural
        if "deletecollection" in r.verbs:
            dc = item["delete"]
            assert LIST_PARAMS - {"watch", "allowWatchBookmarks"} <= set(params(item, dc))
            assert {"dryRun", "gracePeriodSeconds", "propagationPolicy"} <= set(params(item, dc))


def test_writes_answer_201_and_take_write_options(docs: dict[str, dict[str, Any]]) -> None:
    for r in RESOURCES:
        paths = doc_of(docs, r)["paths"]
        post, one = paths[base(r)]["post"], paths[base(r) + "/{name}"]
        assert {"200", "201", "202"} <= set(post["responses"])
        assert {"200", "201"} <= set(one["put"]["responses"]) and {"200", "201"} <= set(one["patch"]["responses"])
        for op in (post, one["put"], one["patch"]):
            assert WRITE_PARAMS | {"pretty"} <= set(params(one, op))
            assert {"400", "401", "403", "404", "409", "415", "422", "500"} <= set(op["responses"])
            assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/V1Status")
        assert "force" in params(one, one["patch"])
        assert set(one["patch"]["requestBody"]["content"]) == {
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        }
        # kubectl sends fieldValidation=Strict once the kind's PATCH operation lists it inline.
        assert one["patch"]["x-kubernetes-group-version-kind"] == {
            "group": r.group,
            "version": r.version,
            "kind": r.kind,
        }
        assert "fieldValidation" in [p["name"] for p in one["patch"]["parameters"]]


def test_delete_answers_what_the_strategy_says(docs: dict[str, dict[str, Any]]) -> None:
    for r in RESOURCES:
        one = doc_of(docs, r)["paths"][base(r) + "/{name}"]
        got = schema_ref(one["delete"], "200")
        kind = {"$ref": f"#/components/schemas/{r.schema}"}
        if STRATEGIES[r.group_resource].return_deleted_object:
            assert got == kind, r.plural
        else:
            assert got == {"anyOf": [{"$ref": "#/components/schemas/V1Status"}, kind]}, r.plural
        assert "202" in one["delete"]["responses"]
        assert one["delete"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/V1DeleteOptions"
        )
    pods = docs["api/v1"]["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert schema_ref(pods["delete"], "200") == {"$ref": "#/components/schemas/V1Pod"}


def test_scale_is_autoscaling_v1_scale_and_log_is_text(docs: dict[str, dict[str, Any]]) -> None:
    apps = docs["apis/apps/v1"]
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    for m in ("get", "put", "patch"):
        assert schema_ref(scale[m], "200") == {"$ref": "#/components/schemas/V1Scale"}
        assert scale[m]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert scale["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/V1Scale")
    assert apps["components"]["schemas"]["V1Scale"]["x-kubernetes-group-version-kind"] == [
        {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    ]
    status = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert schema_ref(status["get"], "200") == {"$ref": "#/components/schemas/V1Deployment"}
    core = docs["api/v1"]["paths"]
    log = core["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert schema_ref(log, "200", "text/plain") == {"type": "string"}
    evict = core["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert schema_ref(evict, "201")["$ref"].endswith("/V1Status")
    assert evict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/V1Eviction")


def test_every_ref_resolves_and_the_documents_are_valid_openapi(docs: dict[str, dict[str, Any]]) -> None:
    from openapi_spec_validator import validate

    for key, doc in docs.items():
        names = set(doc["components"]["schemas"])
        for r in refs(doc):
            assert r.startswith("#/components/schemas/") and r.rsplit("/", 1)[1] in names, (key, r)
        validate(doc)


def test_a_new_group_joins_the_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    widget = ResourceDef(
        "widgets.example.io",
        "v1alpha1",
        "Widget",
        "widgets",
        True,
        "V1ConfigMap",
        subresources=(Subresource("status", "Widget", ("get", "patch", "update")),),
    )
    monkeypatch.setattr(openapi, "RESOURCES", RESOURCES + [widget])
    monkeypatch.setitem(STRATEGIES, widget.group_resource, STRATEGIES["configmaps"])
    doc = openapi.document("widgets.example.io", "v1alpha1", "test")
    path = "/apis/widgets.example.io/v1alpha1/namespaces/{namespace}/widgets"
    assert doc["paths"][path]["get"]["operationId"] == "listWidgetsExampleIoV1alpha1NamespacedWidget"
    assert f"{path}/{{name}}/status" in doc["paths"]
    assert doc["components"]["schemas"]["V1ConfigMapList"]["properties"]["items"]["items"]["$ref"].endswith(
        "/V1ConfigMap"
    )
    assert openapi_schemas.list_schema(widget) == "V1ConfigMapList"


# ------------------------------------------------------------------ live


def _validator(doc: dict[str, Any], schema: Any) -> Any:
    from openapi_schema_validator import OAS30Validator

    # The components ride along in the root, so the document's "#/components/..." references resolve.
    return OAS30Validator({**schema, "components": doc["components"]})


def served_documents(api: Env) -> dict[str, dict[str, Any]]:
    index = api.request("GET", "/openapi/v3").json["paths"]
    out = {}
    for key, entry in index.items():
        r = api.request("GET", entry["serverRelativeURL"])
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json"), key
        out[key] = r.json
    return out


def test_every_served_group_document_passes_the_validator(api: Env) -> None:
    from openapi_spec_validator import validate

    served = served_documents(api)
    assert set(served) == {discovery.openapi_key(g, v) for g, v in group_versions()}
    for key, doc in served.items():
        validate(doc)


def _check(doc: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """``body`` (answered with ``status``) matches what ``doc`` documents for ``method path``."""
    resp = doc["paths"][path][method]["responses"][str(status)]
    schema = resp["content"]["application/json"]["schema"]
    errors = sorted(str(e.message) for e in _validator(doc, schema).iter_errors(body))
    assert not errors, (path, method, status, errors[:3])


def test_real_answers_match_the_documented_schemas(api: Env) -> None:
    served = served_documents(api)
    core, apps = served["api/v1"], served["apis/apps/v1"]
    ns = "/api/v1/namespaces/{namespace}"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "oa1"}, "data": {"a": "1"}}
    r = api.request("POST", "/api/v1/namespaces/default/configmaps", cm)
    _check(core, ns + "/configmaps", "post", r.status, r.json)
    r = api.request("GET", "/api/v1/namespaces/default/configmaps")
    assert r.json["kind"] == "ConfigMapList"
    _check(core, ns + "/configmaps", "get", r.status, r.json)
    r = api.request("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert r.status == 409
    _check(core, ns + "/configmaps", "post", r.status, r.json)
    r = api.request("DELETE", "/api/v1/namespaces/default/configmaps/oa1")
    assert r.status == 200 and r.json["kind"] == "Status"
    _check(core, ns + "/configmaps/{name}", "delete", r.status, r.json)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "oa-pod"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    assert api.request("POST", "/api/v1/namespaces/default/pods", pod).status == 201
    r = api.request("DELETE", "/api/v1/namespaces/default/pods/oa-pod")
    assert r.status == 200 and r.json["kind"] == "Pod"
    _check(core, ns + "/pods/{name}", "delete", r.status, r.json)
    r = api.request("DELETE", "/api/v1/namespaces/default/pods/oa-pod?gracePeriodSeconds=0")
    _check(core, ns + "/pods/{name}", "delete", r.status, r.json)
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "oa-dep"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "oa"}},
            "template": {"metadata": {"labels": {"app": "oa"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    dpath = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert api.request("POST", "/apis/apps/v1/namespaces/default/deployments", dep).status == 201
    r = api.request("GET", "/apis/apps/v1/namespaces/default/deployments/oa-dep/scale")
    assert r.json["kind"] == "Scale"
    _check(apps, dpath + "/{name}/scale", "get", r.status, r.json)
    r = api.request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/oa-dep/scale",
        {"spec": {"replicas": 3}},
        content_type="application/merge-patch+json",
    )
    _check(apps, dpath + "/{name}/scale", "patch", r.status, r.json)
    ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "oa-ns"}}
    assert api.request("POST", "/api/v1/namespaces", ns_obj).status == 201
    r = api.request("DELETE", "/api/v1/namespaces/oa-ns")  # marked: the namespace itself answers
    assert r.status == 200 and r.json["kind"] == "Namespace"
    _check(core, "/api/v1/namespaces/{name}", "delete", r.status, r.json)
    r = api.request("GET", "/api/v1/namespaces/default/configmaps?labelSelector=%3D%3D")
    assert r.status == 400
    _check(core, ns + "/configmaps", "get", r.status, r.json)
    r = api.request("GET", "/api/v1/")
    _check(core, "/api/v1/", "get", r.status, r.json)


def test_kubectl_explain_reads_the_documents(api: Env) -> None:
    out = api.kubectl("explain", "pods.spec.containers").stdout
    # kubectl names a type after its component (V1Container here, io.k8s.api.core.v1.Container in kube's).
    assert "KIND:       Pod" in out and "FIELD: containers <[]V1Container>" in out, out
    assert re.search(r"\n  image\t+<string>", out), out
    out = api.kubectl("explain", "deployments.spec").stdout
    assert "GROUP:      apps" in out and "FIELD: spec <V1DeploymentSpec>" in out, out
    assert re.search(r"\n  replicas\t+<integer>", out) and re.search(
        r"\n  template\t+<V1PodTemplateSpec> -required-", out
    ), out


def test_the_python_client_still_works(api: Env) -> None:
    from kubernetes import client

    with api.client() as c:
        core = client.CoreV1Api(c)
        core.create_namespaced_config_map("default", {"metadata": {"name": "oa-py"}, "data": {"k": "v"}})
        assert core.read_namespaced_config_map("oa-py", "default").data == {"k": "v"}
        assert "oa-py" in [i.metadata.name for i in core.list_namespaced_config_map("default").items]
        status = core.delete_namespaced_config_map("oa-py", "default")
        assert (status if isinstance(status, dict) else status.to_dict())["status"] == "Success"
        apps = client.AppsV1Api(c)
        assert apps.list_namespaced_deployment("default").kind == "DeploymentList"
