"""Unit tests of the API server's pure parts: quantities, selectors, patches,
schema decoding, validation and defaulting, tables, authorisation, tokens."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cluster.api.quantity import QuantityError, canonical, parse_quantity
from cluster.apiserver import auth, errors, patch, schema, tables
from cluster.apiserver import strategies as validation
from cluster.apiserver.selector import (
    from_label_selector_object,
    parse_field_selector,
    parse_label_selector,
)


@pytest.mark.parametrize(
    "raw,value,canon",
    [
        ("500m", Decimal("0.5"), "500m"),
        ("0.5", Decimal("0.5"), "500m"),
        ("1", Decimal(1), "1"),
        ("1000m", Decimal(1), "1"),
        ("1024Mi", Decimal(2**30), "1Gi"),
        ("1.5Gi", Decimal(3 * 2**29), "1536Mi"),
        ("128974848", Decimal(128974848), "128974848"),
        ("129M", Decimal(129 * 10**6), "129M"),
        ("1e3", Decimal(1000), "1e3"),
        ("0", Decimal(0), "0"),
        (2, Decimal(2), "2"),
        (0.25, Decimal("0.25"), "250m"),
        ("100Ki", Decimal(102400), "100Ki"),
        ("1n", Decimal("1e-9"), "1n"),
    ],
)
def test_quantities(raw, value, canon) -> None:
    assert parse_quantity(raw) == value
    assert canonical(raw) == canon


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Zi", "Mi", "1 Gi", True])
def test_bad_quantities(bad) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)


def test_label_selectors() -> None:
    labels = {"app": "web", "tier": "front", "n": "5"}
    ok = [
        "app=web",
        "app==web",
        "app!=db",
        "tier in (front, back)",
        "tier notin (db)",
        "app",
        "!missing",
        "app=web,tier=front",
        "n>3",
        "n<6",
        "missing!=x",
    ]
    for s in ok:
        assert parse_label_selector(s).matches(labels), s
    for s in ["app=db", "tier notin (front)", "missing", "!app", "n>5", "missing in (x)"]:
        assert not parse_label_selector(s).matches(labels), s
    for bad in ["app in (", "=x", "a b", "app=(x)", "in in (a,)x"]:
        with pytest.raises(errors.APIError) as e:
            parse_label_selector(bad)
        assert e.value.code == 400
    sel = from_label_selector_object(
        {
            "matchLabels": {"a": "b"},
            "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["d", "e"]},
                {"key": "f", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "a=b,c in (d,e),!f"
    assert sel.matches({"a": "b", "c": "e"}) and not sel.matches({"a": "b", "c": "e", "f": "1"})


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "hostNetwork": False},
        "status": {"phase": "Running"},
    }
    fs = parse_field_selector("spec.nodeName=n1,status.phase!=Failed,spec.hostNetwork=false")
    assert fs.matches(pod)
    assert not parse_field_selector("spec.nodeName==n2").matches(pod)
    assert parse_field_selector("spec.nodeName=").matches({"spec": {}})
    assert parse_field_selector(r"metadata.name=a\,b").requirements[0].value == "a,b"
    with pytest.raises(errors.APIError):
        parse_field_selector("spec.other=x", {"metadata.name"})


def test_merge_and_json_patch() -> None:
    doc = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert patch.merge_patch(doc, {"a": {"b": None, "e": 2}, "d": None}) == {"a": {"c": [1, 2], "e": 2}}
    out = patch.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/c/-", "value": 3},
            {"op": "replace", "path": "/d", "value": "y"},
            {"op": "move", "from": "/a/b", "path": "/b"},
            {"op": "copy", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/c/0"},
            {"op": "test", "path": "/e", "value": "y"},
        ],
    )
    assert out == {"a": {"c": [2, 3]}, "d": "y", "b": 1, "e": "y"}
    assert doc == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    with pytest.raises(patch.TestFailed):
        patch.json_patch(doc, [{"op": "test", "path": "/d", "value": "nope"}])
    with pytest.raises(patch.PatchError):
        patch.json_patch(doc, [{"op": "remove", "path": "/nope"}])
    assert patch.json_patch({"a/b": {"~": 1}}, [{"op": "remove", "path": "/a~1b/~0"}]) == {"a/b": {}}


def test_strategic_merge_patch_follows_kubernetes_merge_keys() -> None:
    pod = {
        "metadata": {"finalizers": ["a"], "labels": {"x": "1"}},
        "spec": {
            "containers": [
                {
                    "name": "c1",
                    "image": "i1",
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "c2", "image": "i2"},
            ],
            "tolerations": [{"key": "t1"}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    }
    p = {
        "metadata": {"finalizers": ["b"], "labels": {"x": None, "y": "2"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}],
            "containers": [
                {
                    "name": "c1",
                    "ports": [{"containerPort": 443}],
                    "env": [{"$patch": "delete", "name": "A"}, {"name": "C", "value": "3"}],
                }
            ],
            "tolerations": [{"key": "t2"}],
            "volumes": [{"name": "v", "configMap": {"name": "cm"}, "$retainKeys": ["name", "configMap"]}],
        },
    }
    out = patch.strategic_merge_patch(pod, p, "V1Pod")
    assert out["metadata"] == {"finalizers": ["a", "b"], "labels": {"y": "2"}}
    cs = out["spec"]["containers"]
    assert [c["name"] for c in cs] == ["c2", "c1"]
    assert [pp["containerPort"] for pp in cs[1]["ports"]] == [80, 443]
    assert cs[1]["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # atomic list: replaced
    assert out["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm"}}]
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    out = patch.strategic_merge_patch(svc, {"spec": {"ports": [{"port": 443}]}}, "V1Service")
    assert [p["port"] for p in out["spec"]["ports"]] == [80, 443]
    out = patch.strategic_merge_patch(pod, {"spec": {"containers": [{"$patch": "replace"}, {"name": "z"}]}}, "V1Pod")
    assert out["spec"]["containers"] == [{"name": "z"}]


def test_schema_decoding() -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "bogus": 1},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"cpu": 0.5, "memory": "x"}}, "extra": True}
            ],
            "restartPolicy": None,
        },
    }
    d = schema.decode(body, "V1Pod", check_required=False)
    assert d.unknown == ["metadata.bogus", "spec.containers[0].extra"]
    assert d.obj["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "500m"
    assert [c.field for c in d.causes] == ["spec.containers[0].resources.limits[memory]"]
    assert "restartPolicy" not in d.obj["spec"]
    d = schema.decode({"spec": {"replicas": "3"}}, "V1Deployment", check_required=False)
    assert d.type_errors and "replicas" in d.type_errors[0]
    d = schema.decode({"spec": {"ports": [{"name": "x"}]}}, "V1Service")
    assert [c.field for c in d.causes] == ["spec.ports[0].port"]


def test_pod_defaults_and_validation() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "1"}}},
                {"name": "d", "image": "nginx:1.2"},
            ]
        },
    }
    validation.default_pod(pod)
    s = pod["spec"]
    assert s["restartPolicy"] == "Always" and s["dnsPolicy"] == "ClusterFirst"
    assert s["terminationGracePeriodSeconds"] == 30 and s["schedulerName"] == "default-scheduler"
    assert [c["imagePullPolicy"] for c in s["containers"]] == ["Always", "IfNotPresent"]
    assert s["containers"][0]["resources"]["requests"] == {"cpu": "1"}
    assert s["tolerations"] == [], "the not-ready/unreachable tolerations come from admission, not defaulting"
    validation.add_default_tolerations(s, 300)
    assert {(t["key"], t["tolerationSeconds"]) for t in s["tolerations"]} == {
        ("node.kubernetes.io/not-ready", 300),
        ("node.kubernetes.io/unreachable", 300),
    }
    own = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 60,
            }
        ]
    }
    validation.add_default_tolerations(own, 0)
    assert [(t["key"], t.get("tolerationSeconds")) for t in own["tolerations"]] == [
        ("node.kubernetes.io/unreachable", 60),
        ("node.kubernetes.io/not-ready", 0),
    ], "a pod's own toleration stays"
    everything = {"tolerations": [{"operator": "Exists"}]}
    validation.add_default_tolerations(everything, 0)
    assert everything["tolerations"] == [{"operator": "Exists"}], "tolerates every taint already"
    assert validation.validate_pod(pod, None) == []
    assert validation.qos_class(s) == "Burstable"
    bad = {
        "metadata": {"name": "Bad_Name", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "",
                    "ports": [{"containerPort": 0}],
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                },
                {"name": "c", "image": "x"},
            ],
            "restartPolicy": "Sometimes",
        },
    }
    fields = {(c.field, c.reason) for c in validation.validate_pod(bad, None)}
    assert ("metadata.name", "FieldValueInvalid") in fields
    assert ("spec.containers[0].image", "FieldValueRequired") in fields
    assert ("spec.containers[0].ports[0].containerPort", "FieldValueInvalid") in fields
    assert ("spec.containers[0].resources.requests", "FieldValueInvalid") in fields
    assert ("spec.containers[1].name", "FieldValueDuplicate") in fields
    assert ("spec.restartPolicy", "FieldValueNotSupported") in fields


def test_deployment_and_service_validation() -> None:
    dep = {
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    validation.default_deployment(dep)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert validation.validate_deployment(dep, None) == []
    changed = {**dep, "spec": {**dep["spec"], "selector": {"matchLabels": {"a": "c"}}}}
    fields = {c.field for c in validation.validate_deployment(changed, dep)}
    assert fields == {"spec.selector", "spec.template.metadata.labels"}
    svc = {
        "metadata": {"name": "1svc", "namespace": "default"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}, {"port": 70000}]},
    }
    validation.default_service(svc)
    fields = {c.field for c in validation.validate_service(svc, None)}
    assert {"metadata.name", "spec.ports[0].nodePort", "spec.ports[1].port", "spec.ports[0].name"} <= fields


def test_tables() -> None:
    assert tables.human_duration(5) == "5s" and tables.human_duration(150) == "2m30s"
    assert tables.human_duration(3600 * 5 + 60 * 3) == "5h3m" and tables.human_duration(86400 * 3) == "3d"
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }
    now = tables.parse_time("2024-01-01T00:10:00Z")
    t = tables.to_table([pod], "pods", {"resourceVersion": "1"}, now)
    assert t["rows"][0]["cells"][:5] == ["p", "1/2", "CrashLoopBackOff", 2, "10m"]
    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:10:00Z"
    assert tables.pod_phase(pod, now) == "Terminating"


def test_authorization_rules() -> None:
    admin = auth.User("admin", ("system:masters",))
    viewer = auth.User("viewer", ("raykube:viewers",))
    node = auth.User("system:node:n1", ("system:nodes",))
    a = auth.Attributes
    assert auth.authorize(admin, a("delete", "pods", namespace="x", name="p")).allowed
    assert auth.authorize(viewer, a("list", "pods", namespace="x")).allowed
    assert not auth.authorize(viewer, a("create", "pods", namespace="x")).allowed
    assert not auth.authorize(viewer, a("get", "secrets", namespace="x", name="s")).allowed
    assert auth.authorize(node, a("update", "nodes", "status", name="n1")).allowed
    assert not auth.authorize(node, a("update", "nodes", "status", name="n2")).allowed
    d = auth.authorize(node, a("patch", "pods", "status", namespace="x", name="p"))
    assert d.allowed and d.object_check is not None
    d.object_check({"spec": {"nodeName": "n1"}}, {"spec": {"nodeName": "n1"}})
    with pytest.raises(errors.APIError) as e:
        d.object_check({"spec": {"nodeName": "n2"}}, None)
    assert e.value.code == 403
    assert not auth.authorize(node, a("create", "deployments", namespace="x", group="apps")).allowed
    msg = auth.forbidden(viewer, a("create", "deployments", namespace="x", group="apps")).message
    assert msg == (
        'deployments.apps is forbidden: User "viewer" cannot create resource "deployments" in API group '
        '"apps" in the namespace "x"'
    )


def test_generate_tokens() -> None:
    t = auth.generate_tokens(["n1", "n2"])
    users = {v["user"]: v["groups"] for v in t.values()}
    assert "system:masters" in users["admin"] and "raykube:viewers" in users["viewer"]
    assert "system:nodes" in users["system:node:n1"] and "system:node:n2" in users
    assert "system:kube-scheduler" in users and "system:kube-controller-manager" in users
    assert len(set(t)) == 6 and all(len(k) >= 32 for k in t)
    a = auth.Authenticator(None, t)
    tok = auth.token_for(t, "system:node:n2")
    assert a.authenticate(f"Bearer {tok}").node_name == "n2"
    assert a.authenticate("Bearer nope") is None and a.authenticate(None) is None
