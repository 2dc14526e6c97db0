"""Property-based fuzzing of the API server over its own OpenAPI documents (schemathesis; see ``fuzz_harness``).

``test_fuzz_every_served_group`` seeds a scratch namespace (``fuzz``) with an
object of every namespaced kind, puts a ConfigMap and a Deployment in a
canary namespace the fuzzer is never aimed at, snapshots the canary, fuzzes
every operation of every served group-version (discovered from
``/openapi/v3``) for a bounded time with a fixed seed, and fails on any 5xx,
any answer that does not match its documented status codes, content type or
schema, and any change to the canary. The budget and the seed come from the
environment, to run it longer by hand::

    RAYKUBE_FUZZ_SECONDS=600 RAYKUBE_FUZZ_EXAMPLES=25 RAYKUBE_FUZZ_SEED=7 \\
        python -m pytest -q -s tests/test_apiserver_fuzz.py

(defaults: 60 s; 2 cases per operation per round, 3 times that for an operation with a
request body; seed 10). The other tests
show that the checks bite: a document that lies about an answer, and a
canary changed behind the fuzzer's back, are both caught.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import schemathesis
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)
from fuzz_harness import PROTECTED, SCRATCH, SEEDED, Canary, Fuzzer

SECONDS = float(os.environ.get("RAYKUBE_FUZZ_SECONDS", "60"))
EXAMPLES = int(os.environ.get("RAYKUBE_FUZZ_EXAMPLES", "2"))
SEED = int(os.environ.get("RAYKUBE_FUZZ_SEED", "10"))
CANARY = "canary"

TEMPLATE = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}
SPECS: dict[str, dict[str, Any]] = {
    "pods": {"spec": TEMPLATE["spec"]},
    "services": {"spec": {"ports": [{"port": 80}]}},
    "endpoints": {"subsets": [{"addresses": [{"ip": "127.0.0.9"}], "ports": [{"port": 80}]}]},
    "configmaps": {"data": {"k": "v"}},
    "secrets": {"stringData": {"k": "v"}},
    "events": {"involvedObject": {"kind": "Pod", "name": "fuzz-a", "namespace": SCRATCH}, "reason": "R"},
    "deployments": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    "replicasets": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE}},
    "leases": {"spec": {"holderIdentity": "h", "leaseDurationSeconds": 10}},
}


def served_resources(api: Env) -> list[tuple[str, str, dict[str, Any]]]:
    """(group-version path, apiVersion, APIResource) of every served resource (no subresources)."""
    out = []
    gvs = [("/api/v1", "v1")] + [
        (f"/apis/{g['preferredVersion']['groupVersion']}", g["preferredVersion"]["groupVersion"])
        for g in api.request("GET", "/apis").json["groups"]
    ]
    for path, api_version in gvs:
        for r in api.request("GET", path).json["resources"]:
            if "/" not in r["name"]:
                out.append((path, api_version, r))
    return out


def create(api: Env, path: str, api_version: str, r: dict[str, Any], name: str, ns: str | None, strict: bool) -> None:
    body = {"apiVersion": api_version, "kind": r["kind"], "metadata": {"name": name}}
    body.update(copy.deepcopy(SPECS.get(r["name"], {})))
    url = f"{path}/namespaces/{ns}/{r['name']}" if r["namespaced"] else f"{path}/{r['name']}"
    got = api.request("POST", url, body)
    # Between rounds a seeded object may be held back by what the fuzzer did (a finalizer, a terminating
    # namespace): only the first seeding must succeed.
    assert got.status in (201, 409) or not strict, (url, got.status, got.json)


def seed_objects(api: Env, canary: bool = True) -> None:
    """The namespaces and the objects the fuzzer aims at (by ``SEEDED`` names), and the canary's.

    Idempotent: what exists already stays as it is (so the canary is only made once)."""
    ns = served_resources(api)
    nsdef = next(r for p, v, r in ns if r["name"] == "namespaces")
    for name in (SCRATCH, *SEEDED) + ((CANARY,) if canary else ()):
        create(api, "/api/v1", "v1", nsdef, name, None, canary)
    for path, api_version, r in ns:
        if r["name"] == "namespaces" or "create" not in r["verbs"]:
            continue
        for name in SEEDED:
            create(api, path, api_version, r, name, SCRATCH if r["namespaced"] else None, canary)
    if not canary:
        return
    cm = next(x for x in ns if x[2]["name"] == "configmaps")
    dep = next(x for x in ns if x[2]["name"] == "deployments")
    create(api, cm[0], cm[1], cm[2], "canary-cm", CANARY, True)
    create(api, dep[0], dep[1], dep[2], "canary-dep", CANARY, True)


@pytest.mark.timeout(SECONDS + 240)  # the fuzzing budget and the set-up around it, however long the budget
def test_fuzz_every_served_group(api: Env) -> None:
    assert CANARY in PROTECTED
    seed_objects(api)
    canary = Canary(api, CANARY)
    before = canary.snapshot()
    assert [o["metadata"]["name"] for o in before["/api/v1/configmaps"]] == ["canary-cm"]
    assert [o["metadata"]["name"] for o in before["/apis/apps/v1/deployments"]] == ["canary-dep"]
    fuzzer = Fuzzer(api)
    assert {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"} <= set(fuzzer.docs)  # from /openapi/v3
    stats = fuzzer.run(SECONDS, EXAMPLES, SEED, reseed=lambda: seed_objects(api, canary=False))
    print("\nfuzz:", stats.summary(), "\nnot sent (known bugs):", fuzzer.skipped)
    for bug, f in stats.known_examples.items():
        print(f"known bug seen: {bug}: {f.operation} -> {f.status} {f.message[:200]}\n  reproduce: {f.curl[:400]}")
    after = canary.snapshot()
    assert after == before, "the canary namespace changed while the fuzzer was aimed elsewhere"
    assert api.request("GET", "/readyz", user=None).status == 200
    assert stats.requests > 0 and len(stats.by_operation) == len(fuzzer.operations) - len(fuzzer.skipped)
    report = "\n\n".join(f"{f.operation} -> {f.status}\n{f.message}\nreproduce: {f.curl}" for f in stats.failures[:10])
    assert not stats.failures, f"{len(stats.failures)} failure(s); the first ones:\n\n{report}"


def test_a_lying_document_is_caught(api: Env) -> None:
    """The schema checks bite: a document that says a ConfigMap read answers an object it does not is a failure."""
    fuzzer = Fuzzer(api)
    doc = fuzzer.docs["api/v1"]
    cm = doc["components"]["schemas"]["V1ConfigMap"]
    cm["required"] = ["bogus"]  # no ConfigMap the server answers has it
    lying = Fuzzer.__new__(Fuzzer)
    lying.__dict__.update(fuzzer.__dict__)
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config())
    lying.operations = [
        r.ok() for r in schema.get_all_operations() if r.ok().label == "GET /api/v1/namespaces/{namespace}/configmaps"
    ]
    lying.docs_by_op = {op.label: doc for op in lying.operations}
    seed_objects(api)
    stats = lying.run(3, 3, SEED, log=lambda _: None)
    assert stats.failures and "bogus" in stats.failures[0].message


def test_a_changed_canary_is_caught(api: Env) -> None:
    seed_objects(api)
    canary = Canary(api, CANARY)
    before = canary.snapshot()
    patch = {"metadata": {"labels": {"touched": "yes"}}}
    r = api.request(
        "PATCH", f"/api/v1/namespaces/{CANARY}/configmaps/canary-cm", patch, content_type="application/merge-patch+json"
    )
    assert r.status == 200
    assert canary.snapshot() != before
