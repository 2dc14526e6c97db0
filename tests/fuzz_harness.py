"""A property-based fuzzer (schemathesis over hypothesis) for the API server, driven by its own OpenAPI documents.

``Fuzzer(env)`` fetches ``/openapi/v3`` and every group-version document it
lists (so a new group joins by being served), and ``run(seconds, examples,
seed)`` sends generated requests - positive (schema-valid) and negative
(schema-violating) cases of every operation, round after round, each
operation ``examples`` cases a round, until ``seconds`` have passed -
and checks each answer: no 5xx, a documented status code and content type,
a body that matches the documented schema (watch streams: every line a
``WatchEvent`` of the watched kind). Failures are collected (with a curl
line to reproduce them), not raised, so one run reports them all.

Where it aims: namespaced paths always get the scratch namespace ``fuzz``;
``{name}`` is drawn from the seeded objects' names or generated; a
Namespace's ``{name}`` is never one of ``PROTECTED`` (the canary, the
scratch namespace, the system ones). Half the object bodies are not
generated from the schema but a seeded object with a few drawn changes
(``fuzz_mutate``), and most name the kind, name and namespace of their
path, so that more requests get past the first checks to defaulting,
validation and storage. Everything it sends goes to the test's
own loopback API server, with the admin token, from a ``requests`` session
that ignores proxy and CA-bundle settings from the environment.

``Canary`` snapshots every object of every namespaced kind in a namespace
(and the namespace itself) so a test can compare before and after.

``fuzz_known.KNOWN_BUGS`` are answers the server gives today that are known (each says
which bug it is: issue 10's, or found by this fuzzer and reported): they are
counted and reported, not failures. Remove an entry once its fix has landed.

Concurrency: one thread; requests are sent one at a time.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

import requests
import schemathesis
from apiserver_fixtures import Env
from fuzz_known import KNOWN_BUGS, KnownBug
from fuzz_mutate import mutate
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SCRATCH = "fuzz"
PROTECTED = {"canary", SCRATCH, "default", "kube-system", "kube-public", "kube-node-lease"}
SEEDED = ("fuzz-a", "fuzz-b")  # objects of every namespaced kind in SCRATCH (and nodes, namespaces) by these names
FRESH = SEEDED + ("fuzz-c", "fuzz-d")  # names a create's body gets: existing ones (409) or new ones
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TRUE = ("true", "1", "yes")
MUTABLE_MEDIA = (
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
BODY_WEIGHT = 3  # an operation with a request body gets this many times the cases of one without  # what the server's parse_bool takes for true


@dataclass
class Finding:
    operation: str
    status: int
    message: str
    curl: str


@dataclass
class Stats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, int] = field(default_factory=dict)
    by_operation_status: dict[tuple[str, int], int] = field(default_factory=dict)
    seconds_by_operation: dict[str, float] = field(default_factory=dict)
    failures: list[Finding] = field(default_factory=list)
    known: dict[str, int] = field(default_factory=dict)
    known_examples: dict[str, Finding] = field(default_factory=dict)  # the first answer of each known bug
    rounds: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items()))
        known = "; ".join(f"{k}: {v}" for k, v in self.known.items()) or "none"
        return (
            f"{self.requests} requests in {self.seconds:.0f} s over {len(self.by_operation)} operations, "
            f"{self.rounds} round(s); status codes {{{codes}}}; known bugs seen: {known}; "
            f"failures: {len(self.failures)}"
        )


def is_watch(path: str, query: dict[str, Any] | None) -> bool:
    w = (query or {}).get("watch")
    return "/watch/" in path or (w is True or (isinstance(w, str) and w.lower() in TRUE))


class Fuzzer:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, no CA bundle from the environment: only our server
        self.session.verify = env.ca
        self.auth = f"Bearer {env.tokens['admin']}"
        self.docs: dict[str, dict[str, Any]] = {}
        index = self.get("/openapi/v3")["paths"]
        for key, entry in sorted(index.items()):
            self.docs[key] = self.get(entry["serverRelativeURL"])
        self.operations: list[Any] = []
        self.docs_by_op: dict[str, dict[str, Any]] = {}
        for doc in self.docs.values():
            # Authentication is not what is fuzzed here: without the document's security requirement
            # schemathesis neither generates nor drops the Authorization header the fuzzer sets.
            schema = schemathesis.openapi.from_dict(
                {k: v for k, v in doc.items() if k != "security"}, config=schemathesis.Config()
            )
            for result in schema.get_all_operations():
                op = result.ok()
                self.operations.append(op)
                self.docs_by_op[op.label] = doc
        self._strategies: dict[str, Any] = {}
        self._templates: dict[str, dict[str, Any]] = {}
        self._fetch_templates()
        self.skipped = [op.label for op in self.operations if self.known_bug(op.label) is not None]

    def get(self, path: str) -> Any:
        r = self.session.get(self.env.url + path, headers={"Authorization": self.auth}, timeout=30)
        r.raise_for_status()
        return r.json()

    @staticmethod
    def known_bug(label: str, case: Any = None, resp: Any = None) -> KnownBug | None:
        """The known bug an operation is (no case: it is not sent at all), or an answer to ``case`` is
        (``resp``: the response, or the exception that came instead)."""
        status = None if resp is None else 0 if isinstance(resp, Exception) else resp.status_code
        for k in KNOWN_BUGS:
            if re.search(k.operation, label) and k.status == status and (resp is None or k.when(case, resp)):
                return k
        return None

    # ---------------------------------------------------------------- run

    def run(
        self,
        seconds: float,
        examples: int,
        seed: int,
        log: Callable[[str], None] = print,
        reseed: Callable[[], None] | None = None,
    ) -> Stats:
        """Fuzz every operation, round after round, for ``seconds``; ``reseed`` (if any) runs before each
        round and after each collection delete, to put back the seeded objects that were deleted."""
        stats = Stats()
        start = time.monotonic()
        deadline = start + seconds
        ops = [op for op in self.operations if op.label not in self.skipped]
        while time.monotonic() < deadline:
            if reseed is not None:
                reseed()
            order = list(ops)
            random.Random(seed + stats.rounds).shuffle(order)
            for op in order:
                if time.monotonic() >= deadline:
                    break
                t0 = time.monotonic()
                # A first quick round of one case each reaches every operation early in the budget.
                self._fuzz(op, examples if stats.rounds else 1, seed + stats.rounds, deadline, stats)
                if reseed is not None and op.method.upper() == "DELETE" and not op.path.endswith("{name}"):
                    reseed()  # a collection delete takes the seeded objects with it
                stats.seconds_by_operation[op.label] = stats.seconds_by_operation.get(op.label, 0.0) + (
                    time.monotonic() - t0
                )
            stats.rounds += 1
        stats.seconds = time.monotonic() - start
        log(stats.summary())
        return stats

    def _strategy(self, op: Any) -> Any:
        """Two positive (schema-valid) cases to one negative: the valid ones get deeper into the server."""
        if op.label not in self._strategies:
            fixed = {"namespace": SCRATCH} if "{namespace}" in op.path else None
            positive = op.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE, path_parameters=fixed)
            try:
                negative = op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE, path_parameters=fixed)
                self._strategies[op.label] = st.one_of(positive, positive, negative)
            except Exception:  # an operation with nothing to negate has no negative cases
                self._strategies[op.label] = positive
        return self._strategies[op.label]

    def _fuzz(self, op: Any, examples: int, seed: int, deadline: float, stats: Stats) -> None:
        names = st.sampled_from(SEEDED)
        if "requestBody" in op.definition.raw and op.method.upper() != "DELETE" and examples > 1:
            examples *= BODY_WEIGHT  # decoding and validation, where the bugs were, are behind a body

        @hseed(seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the time budget holds, the raw case is reported
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=self._strategy(op), data=st.data())
        def one(case: Any, data: Any) -> None:
            if time.monotonic() >= deadline:
                return
            self._aim(op, case, data, names)
            self._send(op, case, stats)

        one()

    def _aim(self, op: Any, case: Any, data: Any, names: Any) -> None:
        params = case.path_parameters
        if params is not None and "name" in params:
            if data.draw(st.integers(0, 3)) > 0:  # mostly a seeded object's: deeper than a 404
                params["name"] = data.draw(names)
            if op.path.startswith("/api/v1/namespaces/{name}") or op.path.startswith("/api/v1/watch/namespaces/{name}"):
                # A Namespace's name is the one path parameter that could reach the canary: itself, or (with
                # a %2F in it) any path below /api/v1/namespaces/<protected>/.
                if unquote(str(params["name"])).split("/")[0] in PROTECTED:
                    params["name"] = "fuzz-ns-" + str(params["name"])
        if case.headers is None:
            case.headers = {}
        case.headers["Authorization"] = self.auth  # the generated security parameter would only ever get a 401
        template = self._template(op, case)
        if template is not None and data.draw(st.booleans()):
            case.body = mutate(template, data)  # a real object with a few drawn changes (fuzz_mutate)
        if isinstance(case.body, dict) and data.draw(st.integers(0, 3)) > 0:
            self._align(op, case, data)
        if is_watch(op.path, case.query):
            # Watches end when their timeoutSeconds runs out (unset or empty: 30-60 minutes): every value the
            # server reads as a number becomes 0 (the initial events, then the end); only the ones it rejects
            # stay as generated.
            query = dict(case.query or {})
            t = query.get("timeoutSeconds")
            try:
                float(t if t not in (None, "") else 0)
                query["timeoutSeconds"] = 0
            except (TypeError, ValueError):
                pass
            case.query = query

    def _template(self, op: Any, case: Any) -> dict[str, Any] | None:
        """The seeded object an object body of ``op`` can start from (None: none, or not an object body)."""
        if case.media_type not in MUTABLE_MEDIA:
            return None
        return self._templates.get(op.label)

    def _fetch_templates(self) -> None:
        """Each write operation's seeded object as the server answers it, read before any fuzzing."""
        for op in self.operations:
            if op.method.upper() not in ("POST", "PUT", "PATCH") or "requestBody" not in op.definition.raw:
                continue
            item = op.path if "{name}" in op.path else op.path + "/{name}"
            item = item.replace("{namespace}", SCRATCH).replace("{name}", SEEDED[0])
            for url in (item, item.rsplit("/", 1)[0]):  # a subresource's own object, else its owner
                r = self.session.get(self.env.url + url, headers={"Authorization": self.auth}, timeout=30)
                if r.status_code == 200 and r.headers.get("Content-Type", "").startswith("application/json"):
                    obj = r.json()
                    if op.method.upper() == "POST":
                        obj.get("metadata", {}).pop("resourceVersion", None)  # a create may not name one
                    self._templates[op.label] = obj
                    break

    def _align(self, op: Any, case: Any, data: Any) -> None:
        """Most object bodies name the kind, name and namespace the path does, so more writes get past
        the first checks (a mismatch is a 400) to defaulting, validation and storage."""
        content = (op.definition.raw.get("requestBody") or {}).get("content") or {}
        ref = ((content.get("application/json") or {}).get("schema") or {}).get("$ref", "")
        component = self.docs_by_op[op.label]["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        gvks = component.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1:
            return
        gvk = gvks[0]
        body = case.body
        body["apiVersion"] = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        body["kind"] = gvk["kind"]
        meta = body.get("metadata")
        if not isinstance(meta, dict) or data.draw(st.booleans()):
            meta = body["metadata"] = {}  # and half of those without generated metadata, to get past its checks
        params = case.path_parameters or {}
        # Path parameters are kept percent-encoded once generated; the body names the decoded ones.
        meta["name"] = unquote(str(params["name"])) if "name" in params else data.draw(st.sampled_from(FRESH))
        if "namespace" in params:
            meta["namespace"] = unquote(str(params["namespace"]))
        else:
            meta.pop("namespace", None)
        if data.draw(st.booleans()):
            meta.pop("resourceVersion", None)  # an unconditional write rather than a stale one

    def _send(self, op: Any, case: Any, stats: Stats) -> None:
        stats.requests += 1
        stats.by_operation[op.label] = stats.by_operation.get(op.label, 0) + 1
        watch = is_watch(op.path, case.query)
        try:
            resp = case.call(base_url=self.env.url, session=self.session, verify=self.env.ca, timeout=(10, 20))
        except requests.RequestException as exc:
            known = self.known_bug(op.label, case, exc)
            if known is not None:
                self._count_known(known, op, case, 0, repr(exc), stats)
            else:
                stats.failures.append(Finding(op.label, 0, f"no answer: {exc!r}", case.as_curl_command(verify=False)))
            return
        assert resp.request.url.startswith(self.env.url), resp.request.url  # only our own server
        stats.by_status[resp.status_code] = stats.by_status.get(resp.status_code, 0) + 1
        key = (op.label, resp.status_code)
        stats.by_operation_status[key] = stats.by_operation_status.get(key, 0) + 1
        known = self.known_bug(op.label, case, resp)
        if known is not None:
            self._count_known(known, op, case, resp.status_code, resp.text, stats)
            return
        try:
            if watch and resp.status_code == 200:
                self._check_stream(op, resp)
            else:
                case.validate_response(resp, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # a check failed: record it with the request that caused it
            stats.failures.append(
                Finding(op.label, resp.status_code, str(exc)[:3000], case.as_curl_command(verify=False))
            )

    @staticmethod
    def _count_known(known: KnownBug, op: Any, case: Any, status: int, text: str, stats: Stats) -> None:
        stats.known[known.bug] = stats.known.get(known.bug, 0) + 1
        if known.bug not in stats.known_examples:
            curl = case.as_curl_command(verify=False)
            stats.known_examples[known.bug] = Finding(op.label, status, text[:500], curl[:1500])

    def _check_stream(self, op: Any, resp: Any) -> None:
        """A watch answer: JSON lines, each a WatchEvent; object events carry the watched kind."""
        doc = self.docs_by_op[op.label]
        event = OAS30Validator({"$ref": "#/components/schemas/V1WatchEvent", "components": doc["components"]})
        gvk = op.definition.raw.get("x-kubernetes-group-version-kind") or {}
        for line in resp.text.splitlines():
            if not line.strip():
                continue
            ev = json.loads(line)
            errors = [e.message for e in event.iter_errors(ev)]
            if errors:
                raise AssertionError(f"watch event does not match WatchEvent: {errors[:3]}: {line[:500]}")
            kind = ev["object"].get("kind")
            if ev["type"] == "ERROR":
                if kind != "Status":
                    raise AssertionError(f"watch ERROR event without a Status: {line[:500]}")
            elif kind not in (gvk.get("kind"), None):
                raise AssertionError(f"watch of {gvk.get('kind')} sent a {kind}: {line[:500]}")


# ------------------------------------------------------------------ canary


class Canary:
    """Every object in namespace ``ns`` (of every namespaced kind the server lists), and the namespace itself."""

    def __init__(self, env: Env, ns: str) -> None:
        self.env, self.ns = env, ns

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.env.request("GET", f"/api/v1/namespaces/{self.ns}").json}
        for gv_path in ["/api/v1"] + [
            f"/apis/{g['preferredVersion']['groupVersion']}" for g in self.env.request("GET", "/apis").json["groups"]
        ]:
            for r in self.env.request("GET", gv_path).json["resources"]:
                if "/" in r["name"] or not r["namespaced"] or "list" not in r["verbs"]:
                    continue
                items = self.env.request("GET", f"{gv_path}/namespaces/{self.ns}/{r['name']}").json["items"]
                out[f"{gv_path}/{r['name']}"] = sorted(items, key=lambda o: o["metadata"]["name"])
        return out
