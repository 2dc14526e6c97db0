"""Hypothesis strategies for malformed request bodies: a valid object of each served kind with one field (or a
few) set to a JSON value of the wrong shape - null, wrong types, huge and negative numbers, NUL bytes, lone
surrogates, nested lists and objects, unknown fields - and patches (merge, strategic with its directives, JSON
patch) that do the same.

The fields come from the served schemas (``schema_data``), so a mutation lands where decoding and validation
look, several levels deep (``spec.template.spec.containers[0].ports[0].containerPort``), instead of bouncing
off the first type check. Shared by the pure property tests (``test_apiserver_decoding``) and the ones
against a live server (``test_apiserver_badinput``).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from cluster.apiserver.resources import RESOURCES, ResourceDef
from cluster.apiserver.schema_data import SCHEMAS

NAME = "fz"
POD_SPEC = {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}
TEMPLATE = {"metadata": {"labels": {"app": "fz"}}, "spec": POD_SPEC}
WORKLOAD = {"replicas": 1, "selector": {"matchLabels": {"app": "fz"}}, "template": TEMPLATE}
BODIES: dict[str, dict[str, Any]] = {
    "namespaces": {"spec": {"finalizers": ["kubernetes"]}},
    "nodes": {"spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]}},
    "pods": {"spec": POD_SPEC},
    "services": {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "fz"}}},
    "endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "configmaps": {"data": {"a": "b"}},
    "secrets": {"data": {"a": "Yg=="}},
    "events": {"involvedObject": {"kind": "Pod", "name": "x"}, "reason": "R", "message": "m"},
    "deployments": {"spec": WORKLOAD},
    "replicasets": {"spec": WORKLOAD},
    "leases": {"spec": {"holderIdentity": "h", "leaseDurationSeconds": 10}},
}
KINDS = [r.plural for r in RESOURCES]
BY_PLURAL = {r.plural: r for r in RESOURCES}


def base(rdef: ResourceDef, name: str = NAME) -> dict[str, Any]:
    """A valid object of ``rdef`` (namespaced ones without a namespace: the path gives it)."""
    body = {"apiVersion": rdef.api_version, "kind": rdef.kind, "metadata": {"name": name, "labels": {"fz": "1"}}}
    return body | copy.deepcopy(BODIES[rdef.plural])


Path = tuple[Any, ...]


def schema_paths(type_name: str, depth: int = 6) -> list[Path]:
    """Every field path of ``type_name`` down to ``depth`` fields (list items as index 0, map values as "k")."""
    out: list[Path] = []

    def walk(t: Any, prefix: Path, left: int) -> None:
        if left == 0:
            return
        if isinstance(t, list):
            step: Any = 0 if t[0] == "list" else "k"
            out.append(prefix + (step,))
            walk(t[1], prefix + (step,), left)
        elif t in SCHEMAS:
            for f, ft in sorted(SCHEMAS[t]["fields"].items()):
                out.append(prefix + (f,))
                walk(ft, prefix + (f,), left - 1)

    walk(type_name, (), depth)
    return out


_PATHS: dict[str, list[Path]] = {}


def paths_of(type_name: str) -> list[Path]:
    if type_name not in _PATHS:
        _PATHS[type_name] = schema_paths(type_name)
    return _PATHS[type_name]


SPECIAL_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x" * 300,
    "1e999999",
    "-1",
    "9" * 30,
    "😀",
    "default",
    "kubernetes",
    "a/b",
    "NaN",
    "2001-13-45",
    "10.0.0.1",
    "None",
]
SPECIAL_NUMBERS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 1.5]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["name"])), inner)
    ),
    max_leaves=10,
)


# Nulls often, alone or in a list: where a list element, an object or a string belongs, code that trusts the
# schema meets None.
# (Built fresh each time: set_path fills containers in place, so a shared one would become circular.)
odd_values = st.one_of(json_values, st.none(), st.builds(lambda: [None]), st.builds(lambda: {"name": None}))


def set_path(obj: Any, path: Path, value: Any) -> Any:
    """``obj`` with the value at ``path`` set (containers made on the way, of the kind the path needs)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        lst = obj if isinstance(obj, list) else []
        while len(lst) <= head:
            lst.append({})
        lst[head] = set_path(lst[head], rest, value)
        return lst
    d = obj if isinstance(obj, dict) else {}
    d[head] = set_path(d.get(head), rest, value)
    return d


def pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@st.composite
def mutated(draw: st.DrawFn, rdef: ResourceDef, type_name: str | None = None, start: Any = None) -> Any:
    """``start`` (default: the kind's valid object) with 1-3 fields set to odd values, or odder still."""
    type_name = type_name or rdef.schema
    body = copy.deepcopy(start) if start is not None else base(rdef)
    roll = draw(st.integers(0, 19))
    if roll == 0:
        return draw(json_values)  # not even an object
    for _ in range(draw(st.integers(1, 3))):
        # Every kind's metadata often (its validation is shared), the rest of the kind's fields otherwise.
        if "metadata" in SCHEMAS[type_name]["fields"] and draw(st.integers(0, 2)) == 0:
            path = ("metadata",) + draw(st.sampled_from(paths_of("V1ObjectMeta")))
        else:
            path = draw(st.sampled_from(paths_of(type_name)))
        if draw(st.integers(0, 5)) == 0:
            path = path + (draw(st.sampled_from(["bogus", "$patch", "name"])),)  # an unknown field
        body = set_path(body, path, draw(odd_values))
    return body


@st.composite
def patches(draw: st.DrawFn, rdef: ResourceDef, type_name: str | None = None) -> tuple[str, Any]:
    """(patch content type, body): a merge, strategic or JSON patch that sets odd values at schema paths."""
    type_name = type_name or rdef.schema
    kind = draw(st.sampled_from(["merge", "strategic", "json"]))
    paths = paths_of(type_name)
    if kind == "json":
        ops = []
        for _ in range(draw(st.integers(0, 4))):
            op: dict[str, Any] = {
                "op": draw(st.sampled_from(["add", "replace", "remove", "move", "copy", "test", "x"]))
            }
            op["path"] = draw(st.one_of(st.sampled_from(paths).map(pointer), st.text(max_size=6), st.just("")))
            if draw(st.booleans()):
                op["from"] = draw(st.one_of(st.sampled_from(paths).map(pointer), st.just("")))
            if draw(st.integers(0, 3)):
                op["value"] = draw(odd_values)
            ops.append(op if draw(st.integers(0, 9)) else draw(json_values))
        return "application/json-patch+json", ops
    body: Any = {}
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        if kind == "strategic" and draw(st.integers(0, 3)) == 0:
            directive = draw(
                st.sampled_from(["$patch", "$retainKeys", "$setElementOrder/containers", "$deleteFromPrimitiveList/x"])
            )
            path = path[:-1] + (directive,)
        body = set_path(body, path, draw(odd_values))
    if draw(st.integers(0, 15)) == 0:
        body = draw(json_values)
    ct = "application/merge-patch+json" if kind == "merge" else "application/strategic-merge-patch+json"
    return ct, body
