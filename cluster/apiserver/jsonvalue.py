"""What a decoded request body may hold: JSON values only, bounded, as kube-apiserver's Go decoder takes them.

Python's parsers accept more than Go's decoder does and hand back values the
rest of the server cannot handle; ``normalize`` either fixes a parsed body
up or refuses it with a ``BodyError`` (the caller's 400):

- numbers: ``json.loads`` takes ``NaN`` and ``Infinity`` and turns ``1e400``
  into infinity, YAML has ``.nan`` and ``.inf``; Go refuses them all, so
  does ``normalize`` (they would also be stored as invalid JSON).
- strings: a lone UTF-16 surrogate (``"\\ud800"``) cannot be encoded as
  UTF-8 when the object is stored; Go's decoder replaces it with U+FFFD, and
  so does ``normalize``.
- YAML keys that are not strings (``1: a``, ``true: x``, ``~: y``) become
  the strings sigs.k8s.io/yaml makes of them; other YAML types (binary,
  explicit timestamps) are refused. ``YAML_LOADER`` keeps plain scalars that
  look like timestamps as the strings they are, as sigs.k8s.io/yaml does
  (PyYAML would build dates, or fail on ``2001-13-45``).
- nesting: Python's recursion (here, in ``json``, ``copy``, the patch
  functions) is bounded, so a body nests at most ``MAX_DEPTH`` levels (Go's
  decoder stops at 10000; no served kind nests deeper than about 20).
- size: YAML aliases can make a small document a huge value (a "billion
  laughs"); a body may hold at most one value per byte it was sent in, plus
  ``SPARE_VALUES``.

Concurrency: pure functions and read-only module data.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

MAX_DEPTH = 100
SPARE_VALUES = 1024


class BodyError(ValueError):
    """A body that parsed but is not one kube-apiserver would take (the message says why)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without the implicit timestamp type."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YAML_LOADER = _Loader


def normalize(value: Any, size: int, *, yaml_keys: bool = False) -> Any:
    """``value`` (a parsed body of ``size`` bytes) checked and fixed up; raises BodyError."""
    budget = [size + SPARE_VALUES]
    return _norm(value, 0, yaml_keys, budget)


def _norm(v: Any, depth: int, yaml_keys: bool, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise BodyError("the body holds more values than its size allows (YAML aliases?)")
    if isinstance(v, str):
        return _text(v)
    if v is None or isinstance(v, (bool, int)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise BodyError(f"json: unsupported value: {v!r} (numbers must be finite)")
        return v
    if depth >= MAX_DEPTH:
        raise BodyError(f"json: exceeded max depth: objects and arrays nest at most {MAX_DEPTH} levels")
    if isinstance(v, dict):
        return {_key(k, yaml_keys): _norm(x, depth + 1, yaml_keys, budget) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x, depth + 1, yaml_keys, budget) for x in v]
    raise BodyError(f"unsupported value of type {type(v).__name__}: a body holds JSON values only")


def _text(s: str) -> str:
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)


def _key(k: Any, yaml_keys: bool) -> str:
    if isinstance(k, str):
        return _text(k)
    if yaml_keys:
        # What sigs.k8s.io/yaml makes of scalar keys when it converts YAML to JSON.
        if isinstance(k, bool):
            return "true" if k else "false"
        if k is None:
            return "null"
        if isinstance(k, int) or (isinstance(k, float) and math.isfinite(k)):
            return str(k)
    raise BodyError(f"unsupported key {k!r}: object keys must be strings")
