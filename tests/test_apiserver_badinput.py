"""The API contract under bad input (issue 10), against a live server: no body, path, query or header makes
it answer 5xx; a malformed body is a 400 (undecodable, wrong type) or a 422 naming the field; ``/scale``
honours fieldValidation and validates its body; an internal error is logged once, with the request's id.

Bug tests first (each failed on the commit before the fix), then a table of shapes, then a property test
that throws malformed bodies (``badinput_shapes``) at every served kind's create, update, patches, apply,
status, scale, binding, eviction, finalize, delete and deletecollection, and checks a canary namespace is
untouched. Seeded (``derandomize``); ``RAYKUBE_BADINPUT_NET_EXAMPLES`` runs more (the default keeps it to
seconds).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import uuid
from typing import Any

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)
from badinput_shapes import BY_PLURAL, KINDS, NAME, base, mutated, patches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("RAYKUBE_BADINPUT_NET_EXAMPLES", "25"))
CM = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
WORKLOAD = base(BY_PLURAL["deployments"])["spec"]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _status(r: Any, code: int) -> dict:
    assert r.status == code, r.body
    st_ = r.json
    assert st_["kind"] == "Status" and st_["code"] == code, st_
    return st_


def _fields(st_: dict) -> list[str]:
    return [c.get("field") for c in (st_.get("details") or {}).get("causes") or []]


# ------------------------------------------------------------ bug 2: null


@pytest.mark.parametrize("plural", KINDS)
def test_null_in_finalizers_is_a_422_naming_the_field(api: Env, plural: str) -> None:
    """Issue 10, bug 2: ``"finalizers": [null]`` answered 500 TypeError from the shared metadata validation."""
    rdef = BY_PLURAL[plural]
    body = base(rdef, "null-fin-" + plural[:20])
    body["metadata"]["finalizers"] = [None]
    coll = f"{rdef.gv_path}/namespaces/default/{plural}" if rdef.namespaced else f"{rdef.gv_path}/{plural}"
    st_ = _status(api.request("POST", coll, body), 422)
    assert st_["reason"] == "Invalid" and "metadata.finalizers[0]" in _fields(st_), st_


def test_null_in_namespace_spec_finalizers_is_a_422(api: Env) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "null-spec-fin"}}
    body["spec"] = {"finalizers": ["kubernetes", None]}
    st_ = _status(api.request("POST", "/api/v1/namespaces", body), 422)
    assert _fields(st_) == ["spec.finalizers[1]"]
    assert api.request("GET", "/api/v1/namespaces/null-spec-fin").status == 404


# ------------------------------------------------------- bug 3: /scale


@pytest.fixture(params=[DEPLOYMENTS, REPLICASETS], ids=["deployments", "replicasets"])
def scalable(api: Env, request: pytest.FixtureRequest) -> str:
    kind = "Deployment" if request.param == DEPLOYMENTS else "ReplicaSet"
    name = "sc-" + uuid.uuid4().hex[:8]
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": dict(WORKLOAD, replicas=2)}
    assert api.request("POST", request.param, body).status == 201
    return f"{request.param}/{name}"


def _replicas(api: Env, path: str) -> int:
    return api.request("GET", path).json["spec"]["replicas"]


def test_scale_honours_strict_field_validation(api: Env, scalable: str) -> None:
    """Issue 10, bug 3: a Strict PUT of a Scale with an unknown field set the replicas instead of a 400."""
    scale = api.request("GET", f"{scalable}/scale").json
    scale["spec"] = {"replicas": 7, "bogus": 1}
    st_ = _status(api.request("PUT", f"{scalable}/scale?fieldValidation=Strict", scale), 400)
    assert st_["reason"] == "BadRequest" and st_["message"] == 'strict decoding error: unknown field "spec.bogus"'
    for ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        r = api.request(
            "PATCH", f"{scalable}/scale?fieldValidation=Strict", {"spec": {"replicas": 7, "bogus": 1}}, content_type=ct
        )
        assert _status(r, 400)["message"] == 'strict decoding error: unknown field "spec.bogus"'
    ops = [{"op": "add", "path": "/spec/bogus", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 7}]
    r = api.request(
        "PATCH", f"{scalable}/scale?fieldValidation=Strict", ops, content_type="application/json-patch+json"
    )
    assert _status(r, 400)["message"] == 'strict decoding error: unknown field "spec.bogus"'
    assert _replicas(api, scalable) == 2


def test_scale_warns_of_unknown_fields_by_default(api: Env, scalable: str) -> None:
    scale = api.request("GET", f"{scalable}/scale").json
    scale["spec"] = {"replicas": 3, "bogus": 1}
    r = api.request("PUT", f"{scalable}/scale", scale)
    assert r.status == 200 and r.json["spec"]["replicas"] == 3, r.body
    assert r.headers.get_all("Warning") == ['299 - "unknown field \\"spec.bogus\\""']
    r = api.request(
        "PATCH", f"{scalable}/scale", {"spec": {"replicas": 4, "bogus": 1}}, content_type="application/merge-patch+json"
    )
    assert r.status == 200 and r.headers.get_all("Warning") == ['299 - "unknown field \\"spec.bogus\\""']
    r = api.request(
        "PATCH",
        f"{scalable}/scale?fieldValidation=Ignore",
        {"spec": {"replicas": 5, "bogus": 1}},
        content_type="application/merge-patch+json",
    )
    assert r.status == 200 and r.headers.get_all("Warning") is None
    assert _replicas(api, scalable) == 5


@pytest.mark.parametrize(
    "replicas,code",
    [(-1, 422), (2**31, 422), (2**63, 400), ("3", 400), (1.5, 400), (None, 200), ([1], 400)],
)
def test_scale_replicas_must_be_an_int32_at_least_0(api: Env, scalable: str, replicas: Any, code: int) -> None:
    r = api.request(
        "PATCH", f"{scalable}/scale", {"spec": {"replicas": replicas}}, content_type="application/merge-patch+json"
    )
    if code == 200:
        assert r.status == 200 and _replicas(api, scalable) == 0  # null removes the field: replicas 0
        return
    st_ = _status(r, code)
    if code == 422:
        assert _fields(st_) == ["spec.replicas"] and st_["details"]["kind"] == "Scale"
    assert _replicas(api, scalable) == 2


# ------------------------------------------------------- shapes, by table


@pytest.mark.parametrize(
    "method,path,body,code,field",
    [
        ("POST", CM, {"metadata": {"name": "t1", "labels": ["a"]}}, 400, None),
        ("POST", CM, {"metadata": {"name": "t2"}, "data": {"a": 5}}, 400, None),
        ("POST", CM, {"metadata": {"name": ["t3"]}}, 400, None),
        (
            "POST",
            CM,
            {"metadata": {"name": "t4", "managedFields": [{"operation": "Bogus", "fieldsV1": {}}]}},
            422,
            "metadata.managedFields[0].operation",
        ),
        ("POST", CM, [{"metadata": {"name": "t5"}}], 400, None),
        ("POST", CM, {"metadata": 5}, 400, None),
        ("POST", DEPLOYMENTS, {"metadata": {"name": "t6"}, "spec": dict(WORKLOAD, replicas=2**63)}, 400, None),
        ("POST", DEPLOYMENTS, {"metadata": {"name": "t7"}, "spec": dict(WORKLOAD, replicas=-1)}, 422, "spec.replicas"),
        (
            "POST",
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "t8"}, "spec": {"ports": [{"port": 80, "targetPort": 2**40}]}},
            400,
            None,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            {
                "metadata": {"name": "t9"},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1e99999"}}}]},
            },
            422,
            "spec.containers[0].resources.limits[cpu]",
        ),
        ("POST", "/api/v1/namespaces/default/pods/absent/binding", {"target": [1]}, 400, None),
        ("POST", "/api/v1/namespaces/default/pods/absent/eviction", {"deleteOptions": [1]}, 400, None),
        ("DELETE", f"{CM}/absent", {"preconditions": [1]}, 400, None),
        ("DELETE", f"{CM}/absent", {"gracePeriodSeconds": "now"}, 400, None),
        ("DELETE", f"{CM}/absent?gracePeriodSeconds=1e3", None, 400, None),
        ("GET", f"{CM}?limit=%C2%B2", None, 400, None),
        ("GET", f"{CM}?limit=99999999999999999999", None, 400, None),
        ("GET", f"{CM}?resourceVersion=%C2%B2&resourceVersionMatch=Exact", None, 400, None),
        ("GET", f"{CM}?watch=1&resourceVersion=99999999999999999999", None, 400, None),
        ("GET", f"{CM}?watch=1&timeoutSeconds=nan", None, 400, None),
        ("GET", f"{CM}?labelSelector=%00", None, 400, None),
        ("GET", f"{CM}?continue=%ff%00", None, 400, None),
        ("GET", "/api/v1/namespaces/d%00x/configmaps/a%00", None, 404, None),
        ("GET", "/api/v1/namespaces/default/configmaps/a%ed%a0%80", None, 404, None),
    ],
)
def test_bad_shapes_get_a_4xx_status(api: Env, method: str, path: str, body: Any, code: int, field: str | None) -> None:
    st_ = _status(api.request(method, path, body), code)
    if field is not None:
        assert field in _fields(st_), st_


@pytest.mark.parametrize(
    "raw,ct,code",
    [
        (b'{"metadata":{"name":"r1"},"data":{"a":NaN}}', "application/json", 400),
        (b'{"metadata":{"name":"r2"},"data":{"a":1e400}}', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"metadata":{"name":"r3\xff"}}', "application/json", 400),
        (b'{"metadata":{"name":"r4"},"data":{"a":"\x00"}}', "application/json", 400),
        (b"metadata: {name: r5}\ndata: {a: .nan}\n", "application/yaml", 400),
        (b"metadata: {name: r6}\nx: &a [*a]\n", "application/yaml", 400),
        (b"metadata: {name: r7}\nbogus: 2001-13-45\n", "application/yaml", 201),
        (b"metadata: {name: r8, labels: {1: a}}\n", "application/yaml", 201),
    ],
)
def test_undecodable_bodies_are_400s(api: Env, raw: bytes, ct: str, code: int) -> None:
    r = api.request("POST", CM, raw=raw, content_type=ct)
    if code == 201:
        assert r.status == 201, r.body
    else:
        assert _status(r, code)["reason"] == "BadRequest"


def test_lone_surrogates_are_stored_as_replacement_characters(api: Env) -> None:
    r = api.request("POST", CM, raw=b'{"metadata":{"name":"sur"},"data":{"a":"x\\ud800"}}')
    assert r.status == 201 and r.json["data"]["a"] == "x\ufffd", r.body
    assert api.request("GET", f"{CM}/sur").json["data"]["a"] == "x\ufffd"


def test_unknown_fields_on_subresources_follow_field_validation(api: Env) -> None:
    name = "fv-" + uuid.uuid4().hex[:8]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": WORKLOAD}
    assert api.request("POST", DEPLOYMENTS, dep).status == 201
    patch = {"status": {"bogus": 1, "replicas": 1}}
    ct = "application/merge-patch+json"
    r = api.request("PATCH", f"{DEPLOYMENTS}/{name}/status?fieldValidation=Strict", patch, content_type=ct)
    assert _status(r, 400)["message"] == 'strict decoding error: unknown field "status.bogus"'
    r = api.request("PATCH", f"{DEPLOYMENTS}/{name}/status", patch, content_type=ct)
    assert r.status == 200 and r.headers.get_all("Warning") == ['299 - "unknown field \\"status.bogus\\""']
    pods = "/api/v1/namespaces/default/pods"
    pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert api.request("POST", pods, pod).status == 201
    binding = {"metadata": {"name": name}, "target": {"name": "n1", "bogus": 1}}
    r = api.request("POST", f"{pods}/{name}/binding?fieldValidation=Strict", binding)
    assert _status(r, 400)["message"] == 'strict decoding error: unknown field "target.bogus"'
    r = api.request("POST", f"{pods}/{name}/binding", binding)
    assert r.status == 201 and r.headers.get_all("Warning") == ['299 - "unknown field \\"target.bogus\\""']
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}, "bogus": 1}
    r = api.request("POST", f"{pods}/{name}/eviction?fieldValidation=Strict", eviction)
    assert _status(r, 400)["message"] == 'strict decoding error: unknown field "bogus"'


# --------------------------------------------------- headers, logging


def _raw_request(api: Env, data: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=api.ca)
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(data)
            out = b""
            while chunk := t.recv(65536):
                out += chunk
            return out


def test_a_nul_byte_in_a_header_is_a_400_and_one_log_line(api: Env) -> None:
    log = api.workdir / "apiserver.log"
    before = log.stat().st_size
    tok = api.tokens["admin"].encode()
    req = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Odd: a\x00b\r\nAuthorization: Bearer " + tok
    out = _raw_request(api, req + b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.") and b" 400 " in out.split(b"\r\n", 1)[0]
    assert api.request("GET", "/api/v1/namespaces/default").status == 200  # still serving
    with open(log, "rb") as f:
        f.seek(before)
        new = f.read().decode(errors="replace")
    assert "Traceback" not in new, new
    assert new.count("rejected a malformed HTTP request") == 1, new


def test_a_newline_in_a_path_segment_is_a_status_404(api: Env) -> None:
    """Found by the fuzzer: %0A in a name missed the catch-all route and got aiohttp's text/plain 404."""
    r = api.request("GET", "/api/v1/namespaces/default/configmaps/a%0Ab")
    assert r.status == 404
    body = r.json
    assert body["kind"] == "Status" and body["reason"] == "NotFound", body


def test_every_response_carries_its_request_id(api: Env) -> None:
    ids = {api.request("GET", "/api/v1/namespaces/default").headers["Audit-Id"] for _ in range(3)}
    ids.add(api.request("GET", "/api/v1/namespaces/absent").headers["Audit-Id"])
    assert len(ids) == 4 and all(uuid.UUID(i) for i in ids)


async def test_an_internal_error_is_logged_once_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp.test_utils import make_mocked_request

    from cluster.apiserver import APIServer, APIServerConfig

    server = APIServer(APIServerConfig(raftstore_endpoints=["127.0.0.1:1"]))

    async def broken(request: Any) -> Any:
        raise RuntimeError("a planted bug")

    server._dispatch = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="cluster.apiserver"):
        resp = await server._handle(make_mocked_request("GET", "/api/v1/namespaces"))
    st_ = json.loads(resp.body)
    assert resp.status == 500 and st_["reason"] == "InternalError" and "a planted bug" in st_["message"]
    [rec] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    rid = st_["message"].rsplit("request ", 1)[1].rstrip(")")
    assert rid in rec.getMessage() and rec.exc_info is not None
    uuid.UUID(rid)


# ------------------------------------------------ property test, live


class Canary:
    """A namespace and a config map the fuzzing never aims at: they must not change."""

    def __init__(self, api: Env) -> None:
        self.api = api
        self.ns = "canary-" + uuid.uuid4().hex[:8]
        assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": self.ns}}).status == 201
        cm = {"metadata": {"name": "canary"}, "data": {"k": "v"}}
        assert api.request("POST", f"/api/v1/namespaces/{self.ns}/configmaps", cm).status == 201
        self.snapshot = self._read()

    def _read(self) -> list[Any]:
        # The objects themselves, resourceVersions included (a list's own resourceVersion is the store's).
        ns = self.api.request("GET", f"/api/v1/namespaces/{self.ns}").json
        return [ns, self.api.request("GET", f"/api/v1/namespaces/{self.ns}/configmaps").json["items"]]

    def assert_unchanged(self) -> None:
        assert self._read() == self.snapshot


@pytest.fixture
def fuzz_ns(api: Env) -> str:
    ns = "fuzz-" + uuid.uuid4().hex[:8]
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    return ns


def _ops(plural: str) -> list[str]:
    rdef = BY_PLURAL[plural]
    ops = ["create", "update", "patch", "apply", "delete"] + (
        ["deletecollection"] if "deletecollection" in rdef.verbs else []
    )
    ops += ["status-update", "status-patch"] if rdef.has_status else []
    ops += ["scale-update", "scale-patch"] if rdef.subresource("scale") else []
    ops += ["binding", "eviction"] if plural == "pods" else []
    return ops + (["finalize"] if plural == "namespaces" else [])


def _request(api: Env, plural: str, ns: str, op: str, draw: Any) -> Any:
    rdef = BY_PLURAL[plural]
    coll = f"{rdef.gv_path}/namespaces/{ns}/{plural}" if rdef.namespaced else f"{rdef.gv_path}/{plural}"
    fv = draw(st.sampled_from(["Strict", "Warn", "Ignore", ""]))
    q = f"?fieldValidation={fv}"
    obj = f"{coll}/{NAME}"
    sub = {"status-update": "/status", "status-patch": "/status", "scale-update": "/scale", "scale-patch": "/scale"}
    target = obj + sub.get(op, "")
    if op == "create":
        return api.request("POST", coll + q, draw(mutated(rdef)))
    if op in ("update", "status-update", "finalize"):
        return api.request("PUT", (obj + "/finalize" if op == "finalize" else target) + q, draw(mutated(rdef)))
    if op == "scale-update":
        start = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": NAME}, "spec": {"replicas": 1}}
        return api.request("PUT", target + q, draw(mutated(rdef, "V1Scale", start)))
    if op in ("patch", "status-patch", "scale-patch"):
        ct, body = draw(patches(rdef, "V1Scale" if op == "scale-patch" else None))
        return api.request("PATCH", target + q, body, content_type=ct)
    if op == "apply":
        body = json.dumps(draw(mutated(rdef))).encode()
        return api.request("PATCH", obj + q + "&fieldManager=fz", raw=body, content_type="application/apply-patch+yaml")
    if op in ("binding", "eviction"):
        tname = "V1Binding" if op == "binding" else "V1Eviction"
        return api.request("POST", f"{obj}/{op}{q}", draw(mutated(rdef, tname, {"metadata": {"name": NAME}})))
    options = draw(mutated(rdef, "V1DeleteOptions", {}))
    return api.request("DELETE", obj if op == "delete" else coll + "?labelSelector=fz%3D1", options)


@pytest.mark.parametrize("plural", KINDS)
def test_malformed_writes_of_every_kind_never_5xx_nor_touch_the_canary(api: Env, fuzz_ns: str, plural: str) -> None:
    canary = Canary(api)
    rdef = BY_PLURAL[plural]
    coll = f"{rdef.gv_path}/namespaces/{fuzz_ns}/{plural}" if rdef.namespaced else f"{rdef.gv_path}/{plural}"

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        made = api.request("POST", coll, base(rdef))
        assert made.status in (201, 409), made.body  # the target of updates, whatever the last example did
        op = data.draw(st.sampled_from(_ops(plural)), label="op")
        r = _request(api, plural, fuzz_ns, op, data.draw)
        assert r.status < 500, (op, r.status, r.body[:500])
        if r.status >= 400:
            body = r.json
            assert body["kind"] == "Status" and body["code"] == r.status, body
        # What was stored reads back, as JSON and as kubectl's Table.
        for accept in ("application/json", TABLE):
            assert api.request("GET", coll, headers={"Accept": accept}).status == 200

    run()
    canary.assert_unchanged()
