"""Label and field selectors, with Kubernetes' syntax and semantics.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``,
``a`` (exists), ``!a`` (does not exist), ``a>3``/``a<3`` (numeric), joined with
commas (AND). Field selectors: ``path=value``, ``path==value``,
``path!=value``, joined with commas; ``\\,`` ``\\=`` ``\\\\`` escape in values.
A field path is evaluated on the JSON object (a missing field is ``""``).
Which field paths a resource accepts is decided by the resource registry.
Also converts a ``metav1.LabelSelector`` (matchLabels/matchExpressions) to a
selector and to its string form, and matches one against labels the way
controllers do (``label_selector_matches``). Pure functions, no I/O; bad
syntax raises ``SelectorError`` with Kubernetes' message, which the API
server turns into a 400.

Concurrency: pure functions; selectors are immutable and may be shared by
concurrent watch coroutines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message is kube-apiserver's."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and v in self.values
        if self.op in ("!=", "notin"):
            return not has or v not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if not has:
            return False
        try:
            n = int(str(v))
            bound = int(self.values[0])
        except ValueError:
            return False
        return n > bound if self.op == "gt" else n < bound

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        if self.op == "gt":
            return f"{self.key}>{self.values[0]}"
        if self.op == "lt":
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a selector that matches nothing (e.g. empty matchExpressions values for In)

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_key(key: str, raw: str) -> None:
    if not key or len(key) > 316 or not _KEY_RE.match(key):
        raise SelectorError(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{key}": '
            f"name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            f"and end with an alphanumeric character (in selector {raw!r})"
        )


def _check_value(v: str, raw: str) -> None:
    if len(v) > 63 or not _VALUE_RE.match(v):
        raise SelectorError(
            f'unable to parse requirement: Invalid value: "{v}": a valid label must be an empty '
            f"string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
            f"end with an alphanumeric character (in selector {raw!r})"
        )


_SET_RE = re.compile(r"^\s*([^\s!=<>()]+)\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(r"^\s*([^\s!=<>()]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_label_selector(raw: str | None) -> LabelSelector:
    if raw is None or not raw.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    for part in _split_top(raw):
        p = part.strip()
        if not p:
            raise SelectorError(f"found '', expected: identifier (in label selector {raw!r})")
        m = _SET_RE.match(p)
        if m:
            key, op, inner = m.group(1), m.group(2), m.group(3)
            _check_key(key, raw)
            vals = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
            for v in vals:
                _check_value(v, raw)
            if op == "in" and not vals:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (in {raw!r})")
            reqs.append(Requirement(key, op, vals))
            continue
        m = _OP_RE.match(p)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            _check_key(key, raw)
            if op in (">", "<"):
                try:
                    int(val)
                except ValueError:
                    raise SelectorError(
                        f"for 'Gt', 'Lt' operators, the value must be an integer (in {raw!r})"
                    ) from None
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (val,)))
                continue
            _check_value(val, raw)
            reqs.append(Requirement(key, "=" if op in ("=", "==") else "!=", (val,)))
            continue
        if p.startswith("!"):
            key = p[1:].strip()
            _check_key(key, raw)
            reqs.append(Requirement(key, "!"))
            continue
        if re.match(r"^[^\s!=<>(),]+$", p):
            _check_key(p, raw)
            reqs.append(Requirement(p, "exists"))
            continue
        raise SelectorError(f"unable to parse requirement: {p!r} (in label selector {raw!r})")
    return LabelSelector(tuple(reqs))


def from_label_selector_object(sel: dict[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` as a selector. None/empty selects everything."""
    if not sel:
        return LabelSelector()
    reqs: list[Requirement] = []
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append(Requirement(k, "=", (str(v),)))
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = tuple(sorted(str(x) for x in e.get("values") or []))
        key = e.get("key", "")
        if op == "In":
            if not vals:
                return LabelSelector((), nothing=True)
            reqs.append(Requirement(key, "in", vals))
        elif op == "NotIn":
            reqs.append(Requirement(key, "notin", vals))
        elif op == "Exists":
            reqs.append(Requirement(key, "exists"))
        elif op == "DoesNotExist":
            reqs.append(Requirement(key, "!"))
        else:
            raise SelectorError(f"{op!r} is not a valid label selector operator")
    return LabelSelector(tuple(reqs))


# ---------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    op: str  # "=" or "!="
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        v = field_value(obj, self.path)
        return (v == self.value) if self.op == "=" else (v != self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact(self, path: str) -> str | None:
        """The value this selector requires ``path`` to equal, if any."""
        for r in self.requirements:
            if r.path == path and r.op == "=":
                return r.value
        return None


def field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)):
        return ""
    return str(cur)


def _split_escaped(s: str, sep: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(v: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            nxt = v[i + 1]
            if nxt not in ",=\\":
                raise SelectorError(f"invalid field selector: invalid escape sequence \\{nxt}")
            out.append(nxt)
            i += 2
            continue
        if v[i] in "=,":
            raise SelectorError(f"invalid field selector: unescaped {v[i]!r} in value {v!r}")
        out.append(v[i])
        i += 1
    return "".join(out)


def parse_field_selector(raw: str | None, allowed: set[str] | None = None, plural: str = "") -> FieldSelector:
    if raw is None or not raw.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in _split_escaped(raw, ","):
        if not part.strip():
            continue
        m = re.match(r"^\s*([^!=\s]+)\s*(==|!=|=)(.*)$", part)
        if not m:
            raise SelectorError(f"invalid selector: '{raw}'; can't understand '{part}'")
        path, op, val = m.group(1), m.group(2), _unescape(m.group(3))
        if allowed is not None and path not in allowed:
            raise SelectorError(f"field label not supported: {path}" + (f' (resource "{plural}")' if plural else ""))
        reqs.append(FieldRequirement(path, "!=" if op == "!=" else "=", val))
    return FieldSelector(tuple(reqs))


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector against ``labels`` as controllers use it: an empty/None selector or
    one with an unknown operator matches nothing (upstream treats an empty selector as invalid for
    ReplicaSets and Deployments)."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    try:
        return from_label_selector_object(selector).matches(labels)
    except SelectorError:
        return False


def selector_string(selector: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector in ``kubectl get -o wide`` order: matchLabels sorted, then expressions as written."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for e in (selector or {}).get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        parts.append(
            {
                "In": f"{key} in ({vals})",
                "NotIn": f"{key} notin ({vals})",
                "Exists": f"{key}",
                "DoesNotExist": f"!{key}",
            }.get(op, "")
        )
    return ",".join(p for p in parts if p)
