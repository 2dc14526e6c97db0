"""Structure-aware cases for the fuzzer: a valid object the server answered, with a few drawn changes.

Schema-generated bodies (``fuzz_harness``) are mostly rejected early - a
random label or name is invalid - so they rarely reach a kind's deeper
validation. ``mutate(obj, data)`` starts from a real object instead (a seeded
one, as the server returns it) and changes one to three places in it, drawn
with hypothesis: a value replaced by any JSON value (null, a wrong type, a
huge number, a deep list), a key removed, an unknown key added, a null put
into a list. Most of the object stays valid, so the change is what the
server's decoding and validation have to deal with.

Concurrency: pure functions over the object they are given (a copy).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``obj`` (the keys and indexes that lead to it), the root first."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, prefix + (i,))
    return out


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def mutate(obj: dict[str, Any], data: Any) -> dict[str, Any]:
    """A copy of ``obj`` with one to three drawn changes."""
    out = copy.deepcopy(obj)
    for _ in range(data.draw(st.integers(1, 3))):
        places = paths(out)[1:]  # not the root: the body stays an object
        if not places:
            break
        path = data.draw(st.sampled_from(places))
        parent, key = _at(out, path[:-1]), path[-1]
        action = data.draw(st.sampled_from(["replace", "remove", "add", "null-in-list"]))
        target = parent[key]
        if action == "replace":
            parent[key] = data.draw(JSON)
        elif action == "remove":
            del parent[key]
        elif action == "add" and isinstance(target, dict):
            target[data.draw(st.text(max_size=10))] = data.draw(JSON)
        elif action == "add" and isinstance(target, list):
            target.insert(data.draw(st.integers(0, len(target))), data.draw(JSON))
        elif action == "null-in-list" and isinstance(target, list):
            target.append(None)
        else:
            parent[key] = [target, None] if data.draw(st.booleans()) else None
    return out
