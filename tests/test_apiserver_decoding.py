"""Decoding and validation never raise on any JSON shape (issue 10): the pure parts, without a server.

Unit tests of each guard (request bodies as Go's decoder takes them, typed decoding, query integers,
DeleteOptions, patches, quantities, deletion times, managedFields, Scale), then a property test that drives
the registry's whole write path for every served kind - create, update, patches, apply, status, scale,
binding, eviction, finalize, delete, deletecollection - over an in-memory store (``memstore``) with
malformed bodies (``badinput_shapes``): only ``APIError``s may come out, everything stored stays well-typed,
and a canary object is never touched. Seeded (``derandomize``); ``RAYKUBE_BADINPUT_EXAMPLES`` runs more.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
from badinput_shapes import BY_PLURAL, KINDS, NAME, base, mutated, patches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memstore import MemStore
from multidict import MultiDict

from cluster.api.quantity import QuantityError, canonical
from cluster.apiserver import errors, jsonvalue, lifecycle, patch, schema, subresources, tables
from cluster.apiserver.deletecollection import delete_collection
from cluster.apiserver.errors import APIError
from cluster.apiserver.negotiation import parse_json, parse_yaml
from cluster.apiserver.options import WriteOptions, delete_options, parse_int
from cluster.apiserver.registry import Registry
from cluster.apiserver.resources import served
from cluster.apiserver.selector import FieldSelector, LabelSelector
from cluster.apiserver.validation import V, validate_metadata

EXAMPLES = int(os.environ.get("RAYKUBE_BADINPUT_EXAMPLES", "100"))


def _code(fn: Any, *args: Any, **kw: Any) -> int:
    try:
        fn(*args, **kw)
    except APIError as e:
        return e.code
    return 0


# ------------------------------------------------------------ request bodies


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'{"a":1e400}',
        b"[" * 5000,
        b'{"a":' * 150 + b"1" + b"}" * 150,
        b'{"metadata":{"name":"z\xff"}}',
        b'{"a":"\x00"}',
        b"\xff\xfe",
    ],
)
def test_json_go_would_refuse_is_a_400(raw: bytes) -> None:
    assert _code(parse_json, raw) == 400


def test_json_lone_surrogates_become_replacement_characters() -> None:
    value, dups = parse_json(b'{"a":"x\\ud800y","\\udc00":1,"a":"\\ud83d\\ude00"}')
    assert value == {"a": "\U0001f600", "\ufffd": 1} and dups == ["a"]
    json.dumps(value, ensure_ascii=False).encode()  # storable
    ok, _ = parse_json(json.dumps({"deep": [[[[1]]]], "n": 2**70, "s": "\x00"}).encode())
    assert ok["n"] == 2**70 and ok["s"] == "\x00"


@pytest.mark.parametrize(
    "raw,want",
    [
        (b"a: 2001-13-45\nb: 2001-12-14\n", {"a": "2001-13-45", "b": "2001-12-14"}),
        (b"labels: {2: a, true: b, ~: c, 1.5: d}\n", {"labels": {"2": "a", "true": "b", "null": "c", "1.5": "d"}}),
    ],
)
def test_yaml_becomes_json_as_sigs_k8s_io_yaml_makes_it(raw: bytes, want: dict) -> None:
    assert parse_yaml(raw) == want


@pytest.mark.parametrize(
    "raw",
    [
        b"a: .nan\n",
        b"a: -.inf\n",
        b"a: !!binary aGVsbG8=\n",
        b"a: &a [*a]\n",
        b"a: !!timestamp 2001-12-14\n",
        b"? [a, b]\n: c\n",
        b"a: &a [1,2,3,4,5,6,7,8]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d]\n",
        b"a: [" * 3000,
        b"\x00",
    ],
)
def test_yaml_that_is_not_json_is_a_400(raw: bytes) -> None:
    assert _code(parse_yaml, raw) == 400


def test_normalize_bounds_depth_and_values() -> None:
    deep: Any = 1
    for _ in range(jsonvalue.MAX_DEPTH):
        deep = [deep]
    assert jsonvalue.normalize(deep, 1000) == deep
    with pytest.raises(jsonvalue.BodyError, match="max depth"):
        jsonvalue.normalize([deep], 1000)
    with pytest.raises(jsonvalue.BodyError, match="more values"):
        jsonvalue.normalize([0] * 2000, 10)
    with pytest.raises(jsonvalue.BodyError, match="keys must be strings"):
        jsonvalue.normalize({1: 2}, 10)


# ------------------------------------------------------------ typed decoding


def test_null_list_elements_decode_to_zero_values() -> None:
    body = {"metadata": {"finalizers": [None, "a/b"]}, "spec": {"containers": [None]}}
    d = schema.decode(body, "V1Pod", check_required=False)
    assert d.obj["metadata"]["finalizers"] == ["", "a/b"] and d.obj["spec"]["containers"] == [{}]
    assert schema.decode({"spec": {"finalizers": [None]}}, "V1Namespace").obj["spec"]["finalizers"] == [""]


@pytest.mark.parametrize(
    "body,type_name,message",
    [
        ({"spec": {"replicas": 2**63}}, "V1Deployment", "cannot unmarshal number 9223372036854775808"),
        ({"spec": {"replicas": -(2**63) - 1}}, "V1Deployment", "of type int64"),
        ({"spec": {"replicas": 1.5}}, "V1Deployment", "cannot unmarshal number into"),
        ({"spec": {"ports": [{"port": 80, "targetPort": 2**31}]}}, "V1Service", "of type int32"),
        ({"metadata": {"labels": ["a"]}}, "V1ConfigMap", "cannot unmarshal array into"),
        ({"metadata": {"name": 5}}, "V1ConfigMap", "metadata.name of type string"),
    ],
)
def test_numbers_and_types_go_would_refuse_are_type_errors(body: dict, type_name: str, message: str) -> None:
    errs = schema.decode(body, type_name).type_errors
    assert errs and message in errs[0], errs


# -------------------------------------------------------------- query, options


@pytest.mark.parametrize("raw", ["", "x", "1.5", "²", "1_000", " 1", "9" * 20, "9223372036854775808", "nan"])
def test_query_integers_are_int64s(raw: str) -> None:
    assert _code(parse_int, "limit", raw) == 400


def test_query_integers() -> None:
    assert parse_int("limit", "-9223372036854775808") == -(2**63) and parse_int("limit", "+7") == 7


def test_delete_options_are_decoded_and_checked() -> None:
    q = MultiDict()
    assert _code(delete_options, {"preconditions": [1]}, q) == 400
    assert _code(delete_options, {"gracePeriodSeconds": "5"}, q) == 400
    assert _code(delete_options, {"dryRun": "All"}, q) == 400
    assert _code(delete_options, {"dryRun": ["All", "Some"]}, q) == 422
    assert _code(delete_options, [], q) == 400
    assert _code(delete_options, None, MultiDict(gracePeriodSeconds="99999999999999999999")) == 400
    assert delete_options({"dryRun": ["All"], "bogus": 1}, MultiDict(gracePeriodSeconds="3")) == {
        "dryRun": ["All"],
        "gracePeriodSeconds": 3,
    }
    assert _code(lifecycle.delete_policy, {"propagationPolicy": "Orphan", "orphanDependents": True}) == 422


def test_a_huge_grace_period_ends_in_year_9999() -> None:
    assert lifecycle.deletion_timestamp(2**63 - 1) == "9999-12-31T23:59:59Z"
    assert lifecycle.deletion_timestamp(-(2**63)) == "1970-01-01T00:00:00Z"


# ------------------------------------------------------------------ patches


def test_patch_directives_of_the_wrong_shape_are_patch_errors() -> None:
    with pytest.raises(patch.PatchError):
        patch.strategic_merge_patch({"a": 1}, {"$retainKeys": [{"x": 1}]}, None)
    out = patch.strategic_merge_patch(
        {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
        {"spec": {"$setElementOrder/containers": [{"name": {"x": 1}}, {"name": "b"}]}},
        "V1Pod",
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "a"]
    with pytest.raises(patch.PatchError, match="invalid array index"):
        patch.json_patch({"a": [1]}, [{"op": "replace", "path": "/a/²", "value": 2}])


def test_json_patches_are_bounded() -> None:
    doubling = [{"op": "copy", "from": "", "path": f"/c{i}"} for i in range(40)]
    with pytest.raises(patch.PatchError, match="would exceed limit"):
        patch.json_patch({"x": "y" * 1000}, doubling)
    with pytest.raises(patch.PatchError, match="maximum operations"):
        patch.json_patch({}, [{"op": "test", "path": ""}] * 10_001)


@pytest.mark.parametrize("raw", ["1e999999999", "1e1001", "5e-1001", "9" * 1200, 10**1200])
def test_quantities_out_of_range_are_quantity_errors(raw: Any) -> None:
    with pytest.raises(QuantityError):
        canonical(raw)


# ------------------------------------------------------- metadata, Scale


def test_managed_fields_are_validated() -> None:
    v = V()
    md = {"name": "x", "managedFields": [{"operation": "Bogus", "fieldsType": "FieldsV2", "manager": "m" * 129}]}
    validate_metadata({"metadata": md}, "subdomain", False, v)
    assert [c.field for c in v.causes] == [
        "metadata.managedFields[0].operation",
        "metadata.managedFields[0].fieldsType",
        "metadata.managedFields[0].manager",
    ]
    assert schema.decode({"metadata": {"managedFields": [{"fieldsV1": 5}]}}, "V1ConfigMap").type_errors


@pytest.mark.parametrize("replicas,ok", [(0, True), (2**31 - 1, True), (-1, False), (2**31, False)])
def test_scale_replicas_are_an_int32_at_least_0(replicas: int, ok: bool) -> None:
    causes = subresources.validate_scale({"spec": {"replicas": replicas}})
    assert (causes == []) == ok and all(c.field == "spec.replicas" for c in causes)


# ----------------------------------------------- the write path, fuzzed


class Harness:
    """A registry over a MemStore with the default and a canary namespace, and the fuzz target of a kind."""

    def __init__(self) -> None:
        self.store = MemStore()
        self.registry = Registry(self.store)
        self.loop = asyncio.new_event_loop()
        nsdef = served("namespaces")
        for ns in ("default", "canary"):
            self.run(self.registry.create(nsdef, None, {"metadata": {"name": ns}}, WriteOptions()))
        cm = {"metadata": {"name": "canary"}, "data": {"k": "v"}}
        self.run(self.registry.create(served("configmaps"), "canary", cm, WriteOptions()))
        self.canary = {k: v for k, v in self.store.kv.items() if "canary" in k}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def ensure(self, plural: str) -> None:
        rdef = BY_PLURAL[plural]
        try:
            self.run(self.registry.create(rdef, "default" if rdef.namespaced else None, base(rdef), WriteOptions()))
        except APIError as e:
            assert e.code == 409, e  # the valid base object of every kind must be accepted

    def check_stored(self) -> None:
        """Everything stored decodes without type errors and prints as a Table; the canary is as it was."""
        assert {k: v for k, v in self.store.kv.items() if "canary" in k} == self.canary
        for key, kv in self.store.kv.items():
            plural = key.split("/")[2]
            if plural in BY_PLURAL:
                obj = json.loads(kv.value)
                assert schema.decode(obj, BY_PLURAL[plural].schema).type_errors == [], (key, obj)
                tables.to_table([obj], plural, {}, time.time(), "Object")


@pytest.fixture
def harness() -> Any:
    h = Harness()
    yield h
    h.loop.close()


def _ops(plural: str) -> list[str]:
    rdef = BY_PLURAL[plural]
    ops = ["create", "update", "patch", "apply", "delete"]
    ops += ["deletecollection"] if "deletecollection" in rdef.verbs else []  # as routing serves it
    ops += ["status-update", "status-patch"] if rdef.has_status else []
    ops += ["scale-update", "scale-patch"] if rdef.subresource("scale") else []
    ops += ["binding", "eviction"] if plural == "pods" else []
    ops += ["finalize"] if plural == "namespaces" else []
    return ops


SUB_BODIES = {
    "V1Scale": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": NAME}, "spec": {"replicas": 2}},
    "V1Binding": {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": NAME}, "target": {"name": "n1"}},
    "V1Eviction": {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": NAME}},
    "V1DeleteOptions": {"gracePeriodSeconds": 0},
}


def _wire(body: Any) -> tuple[Any, list[str]]:
    """The body as the server gets it: sent as JSON, parsed as the server parses it."""
    return parse_json(json.dumps(body).encode())


async def _write(h: Harness, plural: str, op: str, draw: Any) -> None:
    rdef, reg = BY_PLURAL[plural], h.registry
    ns = "default" if rdef.namespaced else None
    opts = WriteOptions(field_validation=draw(st.sampled_from(["Strict", "Warn", "Ignore"])))
    sub = op.split("-")[0] if "-" in op or op in ("binding", "eviction", "finalize") else None
    if op in ("create", "update", "apply", "status-update", "finalize"):
        body, opts.duplicates = _wire(draw(mutated(rdef)))
        if op == "create":
            await reg.create(rdef, ns, body, opts)
        elif op == "apply":
            opts.field_manager = "fz"
            await reg.patch(rdef, ns, NAME, "apply", body, opts)
        else:
            await reg.update(rdef, ns, NAME, body, opts, None, sub)
    elif op in ("patch", "status-patch"):
        ct, raw = draw(patches(rdef))
        body, _ = _wire(raw)
        ptype = {"application/json-patch+json": "json", "application/merge-patch+json": "merge"}.get(ct, "strategic")
        await reg.patch(rdef, ns, NAME, ptype, body, opts, None, sub)
    elif op.startswith("scale"):
        if op == "scale-update":
            body, _ = _wire(draw(mutated(rdef, "V1Scale", SUB_BODIES["V1Scale"])))
            await subresources.write_scale(reg, rdef, "default", NAME, None, body, opts)
        else:
            ct, raw = draw(patches(rdef, "V1Scale"))
            ptype = {"application/json-patch+json": "json", "application/merge-patch+json": "merge"}.get(ct)
            body, _ = _wire(raw)
            await subresources.write_scale(reg, rdef, "default", NAME, ptype or "strategic", body, opts)
    elif op in ("binding", "eviction"):
        tname = "V1Binding" if op == "binding" else "V1Eviction"
        body, _ = _wire(draw(mutated(rdef, tname, SUB_BODIES[tname])))
        fn = subresources.bind if op == "binding" else subresources.evict
        await fn(reg, rdef, "default", NAME, body, opts, None)
    else:
        raw, _ = _wire(draw(mutated(rdef, "V1DeleteOptions", SUB_BODIES["V1DeleteOptions"])))
        options = delete_options(raw, MultiDict())
        opts.dry_run = bool(options.get("dryRun"))
        if op == "delete":
            await reg.delete(rdef, ns, NAME, options, opts)
        else:
            sel = LabelSelector()
            await delete_collection(reg, rdef, ns, sel, FieldSelector(), options, opts, lambda o: None)


@pytest.mark.parametrize("plural", KINDS)
def test_no_body_makes_the_write_path_raise_anything_but_a_status(harness: Harness, plural: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        harness.ensure(plural)
        op = data.draw(st.sampled_from(_ops(plural)), label="op")
        try:
            harness.run(_write(harness, plural, op, data.draw))
        except APIError as e:
            assert 400 <= e.code < 500 or (e.code == 409 and e.reason == "Conflict"), e
        harness.check_stored()

    run()
    assert isinstance(errors.bad_request("x"), APIError)
