"""Validation every kind shares: name and label syntax, the cause collector, object metadata.

``V`` collects ``errors.Cause`` s; ``validate_metadata`` checks ``metadata``
(name or generateName, namespace, labels, annotations, finalizers, owner
references) with the name rule a kind asks for (``NAME_CHECKS``). The checks
of one kind live with its strategy (``strategies/<kind>.py``) and build on
these. Field paths and messages follow kube-apiserver's
(``metadata.name: Invalid value``).

Concurrency: pure functions and read-only tables; a ``V`` belongs to the one
validation that made it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from . import errors
from .errors import Cause

DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
IANA_SVC_NAME_RE = re.compile(r"^[-a-z0-9]+$")

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

TOTAL_ANNOTATION_SIZE = 256 * 1024
MAX_CONFIG_SIZE = 1024 * 1024


# ------------------------------------------------------------ name checks


def dns1123_label(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not DNS1123_LABEL_RE.match(v):
        out.append(LABEL_MSG)
    return out


def dns1123_subdomain(v: str) -> list[str]:
    out = []
    if len(v) > 253:
        out.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN_RE.match(v):
        out.append(SUBDOMAIN_MSG)
    return out


def dns1035_label(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not DNS1035_LABEL_RE.match(v):
        out.append(DNS1035_MSG)
    return out


NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "label": dns1123_label,
    "subdomain": dns1123_subdomain,
    "dns1035": dns1035_label,
}


def qualified_name(v: str) -> list[str]:
    parts = v.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    out = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    elif not QUALIFIED_NAME_RE.match(name):
        out.append(QUALIFIED_MSG)
    return out


def label_value(v: str) -> list[str]:
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not LABEL_VALUE_RE.match(v):
        out.append(LABEL_VALUE_MSG)
    return out


class V:
    """Collects causes."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def add(self, c: Cause) -> None:
        self.causes.append(c)

    def required(self, path: str, detail: str = "") -> None:
        self.add(errors.required(path, detail))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(errors.invalid(path, value, detail))

    def unsupported(self, path: str, value: Any, supported: list[str]) -> None:
        self.add(errors.unsupported(path, value, supported))

    def enum(self, path: str, value: Any, supported: list[str]) -> None:
        if value is not None and value not in supported:
            self.unsupported(path, value, supported)

    def port(self, path: str, value: Any, *, allow_zero: bool = False) -> None:
        if not isinstance(value, int):
            return
        lo = 0 if allow_zero else 1
        if not lo <= value <= 65535:
            self.invalid(path, value, f"must be between {lo} and 65535, inclusive")

    def non_negative(self, path: str, value: Any) -> None:
        if isinstance(value, int) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def labels(self, path: str, labels: Any) -> None:
        for k, v in (labels or {}).items():
            for m in qualified_name(k):
                self.invalid(path, k, m)
            if isinstance(v, str):
                for m in label_value(v):
                    self.invalid(f"{path}[{k}]", v, m)

    def forbidden(self, path: str, detail: str) -> None:
        self.add(errors.forbidden_field(path, detail))


# -------------------------------------------------------------- metadata


def validate_metadata(obj: dict[str, Any], name_check: str, namespaced: bool, v: V) -> None:
    md = obj.get("metadata") or {}
    name = md.get("name") or ""
    if not name:
        if md.get("generateName"):
            v.invalid("metadata.generateName", md.get("generateName"), "name was not generated")
        else:
            v.required("metadata.name", "name or generateName is required")
    else:
        for m in NAME_CHECKS[name_check](name):
            v.invalid("metadata.name", name, m)
    ns = md.get("namespace")
    if namespaced:
        if not ns:
            v.required("metadata.namespace")
        else:
            for m in dns1123_label(ns):
                v.invalid("metadata.namespace", ns, m)
    elif ns:
        v.forbidden("metadata.namespace", "not allowed on this type")
    v.labels("metadata.labels", md.get("labels"))
    ann = md.get("annotations") or {}
    size = 0
    for k, val in ann.items():
        for m in qualified_name(k.lower()):
            v.invalid("metadata.annotations", k, m)
        size += len(k) + len(val or "")
    if size > TOTAL_ANNOTATION_SIZE:
        v.add(errors.too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE))
    for i, f in enumerate(md.get("finalizers") or []):
        if "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
            v.invalid(
                f"metadata.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it fully qualified"
            )
        else:
            for m in qualified_name(f):
                v.invalid(f"metadata.finalizers[{i}]", f, m)
    if "orphan" in (md.get("finalizers") or []) and "foregroundDeletion" in (md.get("finalizers") or []):
        v.invalid(
            "metadata.finalizers", md.get("finalizers"), "finalizer orphan and foregroundDeletion cannot be both set"
        )
    for i, ref in enumerate(md.get("ownerReferences") or []):
        p = f"metadata.ownerReferences[{i}]"
        for f in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(f):
                v.required(f"{p}.{f}")
    controllers = [r for r in md.get("ownerReferences") or [] if r.get("controller")]
    if len(controllers) > 1:
        v.invalid(
            "metadata.ownerReferences", md.get("ownerReferences"), "Only one reference can have Controller set to true"
        )
    validate_managed_fields(md.get("managedFields") or [], v)


def validate_managed_fields(entries: list[Any], v: V) -> None:
    """kube-apiserver's ValidateManagedFields (decoding has made each FieldsV1 an object)."""
    for i, e in enumerate(entries):
        p = f"metadata.managedFields[{i}]"
        if e.get("operation") not in ("Apply", "Update"):
            v.invalid(f"{p}.operation", e.get("operation"), "must be `Apply` or `Update`")
        if e.get("fieldsType") and e["fieldsType"] != "FieldsV1":
            v.invalid(f"{p}.fieldsType", e["fieldsType"], "must be `FieldsV1`")
        manager = e.get("manager") or ""
        if len(manager) > 128:
            v.add(errors.too_long(f"{p}.manager", 128))


# ------------------------------------------------------------- data maps


def validate_config_keys(field: str, data: Any, v: V) -> int:
    """Check the keys of a ConfigMap's or Secret's data map; returns the size of its values."""
    size = 0
    for k, val in (data or {}).items():
        if len(k) > 253 or not CONFIG_KEY_RE.match(k) or k in (".", ".."):
            v.invalid(
                f"{field}[{k}]",
                k,
                "a valid config key must consist of alphanumeric characters, '-', '_' or "
                "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                "validation is '[-._a-zA-Z0-9]+')",
            )
        size += len(val or "")
    return size
