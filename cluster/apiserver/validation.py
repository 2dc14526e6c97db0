"""Per-resource defaulting and validation, after Kubernetes' own rules.

``default_<kind>(obj)`` fills defaults in place (pods: restartPolicy Always,
dnsPolicy ClusterFirst, terminationGracePeriodSeconds 30, imagePullPolicy,
schedulerName; deployments:
replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10,
progressDeadlineSeconds 600; services: ClusterIP, TCP, targetPort = port, ...).
``validate_<kind>(obj, old)`` returns a list of ``errors.Cause`` (empty when
valid); ``old`` is the stored object on update, for immutability rules.
``add_default_tolerations`` is the DefaultTolerationSeconds admission the
registry applies to new pods (the seconds are the API server's setting).
Field paths and messages follow kube-apiserver's (``spec.containers[0].image:
Required value``). Pure functions; the registry calls them.

Concurrency: pure functions; defaulting mutates only the object it is given,
which belongs to one request.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from typing import Any, Callable

from . import errors
from .errors import Cause
from ..api.quantity import QuantityError, parse_quantity
from .selector import from_label_selector_object

DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
IANA_SVC_NAME_RE = re.compile(r"^[-a-z0-9]+$")
PERCENT_RE = re.compile(r"^[0-9]+%$")

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                 "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
QUALIFIED_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")

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
    "label": dns1123_label, "subdomain": dns1123_subdomain, "dns1035": dns1035_label,
}


def qualified_name(v: str) -> list[str]:
    parts = v.split("/")
    if len(parts) > 2:
        return [f"a qualified name {QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"]
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
            v.invalid(f"metadata.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it fully "
                                                       "qualified")
        else:
            for m in qualified_name(f):
                v.invalid(f"metadata.finalizers[{i}]", f, m)
    if "orphan" in (md.get("finalizers") or []) and "foregroundDeletion" in (md.get("finalizers") or []):
        v.invalid("metadata.finalizers", md.get("finalizers"),
                  'finalizer orphan and foregroundDeletion cannot be both set')
    for i, ref in enumerate(md.get("ownerReferences") or []):
        p = f"metadata.ownerReferences[{i}]"
        for f in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(f):
                v.required(f"{p}.{f}")
    controllers = [r for r in md.get("ownerReferences") or [] if r.get("controller")]
    if len(controllers) > 1:
        v.invalid("metadata.ownerReferences", md.get("ownerReferences"),
                  "Only one reference can have Controller set to true")


# ------------------------------------------------------------------ pods

DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-{not-ready,unreachable}-toleration-seconds
TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def add_default_tolerations(spec: dict[str, Any], seconds: int) -> None:
    """The DefaultTolerationSeconds admission plugin (pod create only): a pod that does not tolerate the
    not-ready or unreachable NoExecute taint gets a toleration for ``seconds``."""
    tols = spec.setdefault("tolerations", [])
    for key in TOLERATION_KEYS:
        if not any((t.get("key") == key or (t.get("operator") == "Exists" and not t.get("key")))
                   and t.get("effect") in (None, "", "NoExecute") for t in tols):
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})


def _image_pull_policy(image: str) -> str:
    ref = image.split("@", 1)
    if len(ref) == 2:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_container(c: dict[str, Any], template: bool) -> None:
    if isinstance(c.get("image"), str) and c.get("image") and not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _image_pull_policy(c["image"])
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")
    res = c["resources"]
    # Requests default to limits where only limits are given (Kubernetes does this for pods, not templates).
    if res.get("limits") and not template:
        req = res.setdefault("requests", {})
        for k, val in res["limits"].items():
            req.setdefault(k, val)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            pr.setdefault("timeoutSeconds", 1)
            pr.setdefault("periodSeconds", 10)
            pr.setdefault("successThreshold", 1)
            pr.setdefault("failureThreshold", 3)
            hg = pr.get("httpGet")
            if isinstance(hg, dict):
                hg.setdefault("path", "/")
                hg.setdefault("scheme", "HTTP")
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        fr = vf.get("fieldRef")
        if isinstance(fr, dict):
            fr.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any], *, template: bool = False) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("initContainers") or []:
        _default_container(c, template)
    for c in spec.get("containers") or []:
        _default_container(c, template)
    for vol in spec.get("volumes") or []:
        if isinstance(vol.get("configMap"), dict):
            vol["configMap"].setdefault("defaultMode", 420)
        if isinstance(vol.get("secret"), dict):
            vol["secret"].setdefault("defaultMode", 420)
        if "emptyDir" in vol and vol["emptyDir"] is None:
            vol["emptyDir"] = {}
    if not template:
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("tolerations", [])


def qos_class(spec: dict[str, Any]) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
            elif r in req:
                try:
                    if parse_quantity(req[r]) != parse_quantity(lim[r]):
                        guaranteed = False
                except QuantityError:
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed and containers else "Burstable"


def default_pod(obj: dict[str, Any]) -> None:
    default_pod_spec(obj.setdefault("spec", {}))


STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}


def _validate_resources(res: Any, path: str, v: V) -> None:
    if not isinstance(res, dict):
        return
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        parsed[kind] = {}
        for name, q in (res.get(kind) or {}).items():
            p = f"{path}.{kind}[{name}]"
            if name not in STANDARD_RESOURCES and not name.startswith("hugepages-") and "/" not in name:
                v.invalid(p, name, "must be a standard resource type or fully qualified")
                continue
            try:
                val = parse_quantity(q)
            except QuantityError as exc:
                v.invalid(p, q, str(exc))
                continue
            if val < 0:
                v.invalid(p, q, "must be greater than or equal to 0")
            parsed[kind][name] = val
    for name, req in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if lim is not None and req > lim:
            v.invalid(f"{path}.requests", (res.get("requests") or {}).get(name),
                      f"must be less than or equal to {name} limit of {(res.get('limits') or {}).get(name)}")


def _validate_probe(pr: Any, path: str, v: V) -> None:
    if not isinstance(pr, dict):
        return
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if pr.get(h) is not None]
    if not handlers:
        v.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        v.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        val = pr.get(f)
        if isinstance(val, int) and val < 0:
            v.invalid(f"{path}.{f}", val, "must be greater than or equal to 0")
    for h in ("httpGet", "tcpSocket"):
        hv = pr.get(h)
        if isinstance(hv, dict):
            port = hv.get("port")
            if port is None:
                v.required(f"{path}.{h}.port")
            elif isinstance(port, int):
                v.port(f"{path}.{h}.port", port)
            elif isinstance(port, str) and (not IANA_SVC_NAME_RE.match(port) or len(port) > 15):
                v.invalid(f"{path}.{h}.port", port, "must contain only alpha-numeric characters (a-z, 0-9), and "
                                                      "hyphens (-)")


def _validate_container(c: dict[str, Any], path: str, volumes: set[str], v: V, *, ephemeral_ok: bool = False) -> None:
    name = c.get("name")
    if not name:
        v.required(f"{path}.name")
    else:
        for m in dns1123_label(name):
            v.invalid(f"{path}.name", name, m)
    if not c.get("image"):
        v.required(f"{path}.image")
    v.enum(f"{path}.imagePullPolicy", c.get("imagePullPolicy"), ["Always", "IfNotPresent", "Never"])
    v.enum(f"{path}.terminationMessagePolicy", c.get("terminationMessagePolicy"), ["File", "FallbackToLogsOnError"])
    seen_ports: set[tuple[Any, Any]] = set()
    port_names: set[str] = set()
    for i, p in enumerate(c.get("ports") or []):
        pp = f"{path}.ports[{i}]"
        if p.get("containerPort") is None:
            v.required(f"{pp}.containerPort")
        else:
            v.port(f"{pp}.containerPort", p.get("containerPort"))
        if p.get("hostPort") is not None:
            v.port(f"{pp}.hostPort", p.get("hostPort"), allow_zero=True)
        v.enum(f"{pp}.protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
        key = (p.get("containerPort"), p.get("protocol"))
        if key in seen_ports:
            v.add(errors.duplicate(pp, f"{p.get('containerPort')}/{p.get('protocol')}"))
        seen_ports.add(key)
        pn = p.get("name")
        if pn:
            if len(pn) > 15 or not IANA_SVC_NAME_RE.match(pn) or not re.search("[a-z]", pn):
                v.invalid(f"{pp}.name", pn, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens "
                                            "(-), at most 15 characters, and at least one letter")
            if pn in port_names:
                v.add(errors.duplicate(f"{pp}.name", pn))
            port_names.add(pn)
    for i, e in enumerate(c.get("env") or []):
        ep = f"{path}.env[{i}]"
        en = e.get("name")
        if not en:
            v.required(f"{ep}.name")
        elif "=" in en or any(ord(ch) < 32 or ord(ch) > 126 for ch in en):
            v.invalid(f"{ep}.name", en, "a valid environment variable name must consist only of printable ASCII "
                                        "characters other than '='")
        if e.get("value") is not None and e.get("valueFrom") is not None:
            v.invalid(f"{ep}.valueFrom", "", "may not be specified when `value` is not empty")
    _validate_resources(c.get("resources"), f"{path}.resources", v)
    mounts: set[str] = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        mp = f"{path}.volumeMounts[{i}]"
        if not m.get("name"):
            v.required(f"{mp}.name")
        elif m["name"] not in volumes:
            v.add(Cause(f"{mp}.name", "FieldValueNotFound", f'Not found: "{m["name"]}"'))
        if not m.get("mountPath"):
            v.required(f"{mp}.mountPath")
        elif m["mountPath"] in mounts:
            v.invalid(f"{mp}.mountPath", m["mountPath"], "must be unique")
        else:
            mounts.add(m["mountPath"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _validate_probe(c.get(probe), f"{path}.{probe}", v)
    rp = c.get("restartPolicy")
    if rp is not None and rp != "Always":
        v.unsupported(f"{path}.restartPolicy", rp, ["Always"])


def validate_pod_spec(spec: Any, path: str, v: V, *, template: bool = False) -> None:
    if not isinstance(spec, dict):
        v.required(path)
        return
    volumes: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        vp = f"{path}.volumes[{i}]"
        n = vol.get("name")
        if not n:
            v.required(f"{vp}.name")
            continue
        for m in dns1123_label(n):
            v.invalid(f"{vp}.name", n, m)
        if n in volumes:
            v.add(errors.duplicate(f"{vp}.name", n))
        volumes.add(n)
        sources = [k for k in vol if k != "name"]
        if not sources:
            v.required(vp, "must specify a volume type")
        elif len(sources) > 1:
            v.forbidden(f"{vp}.{sources[1]}", "may not specify more than 1 volume type")
    containers = spec.get("containers")
    if not containers:
        v.required(f"{path}.containers")
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            cp = f"{path}.{field}[{i}]"
            _validate_container(c, cp, volumes, v)
            n = c.get("name")
            if n:
                if n in names:
                    v.add(errors.duplicate(f"{cp}.name", n))
                names.add(n)
            if field == "containers" and c.get("restartPolicy") is not None:
                v.forbidden(f"{cp}.restartPolicy", "may not be set for non-init containers")
    v.enum(f"{path}.restartPolicy", spec.get("restartPolicy"), ["Always", "OnFailure", "Never"])
    v.enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"), ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"])
    tg = spec.get("terminationGracePeriodSeconds")
    if isinstance(tg, int) and tg < 0:
        v.invalid(f"{path}.terminationGracePeriodSeconds", tg, "must be greater than or equal to 0")
    ad = spec.get("activeDeadlineSeconds")
    if isinstance(ad, int) and ad <= 0:
        v.invalid(f"{path}.activeDeadlineSeconds", ad, "must be between 1 and 2147483647, inclusive")
    v.labels(f"{path}.nodeSelector", spec.get("nodeSelector"))
    nn = spec.get("nodeName")
    if nn:
        for m in dns1123_subdomain(nn):
            v.invalid(f"{path}.nodeName", nn, m)
    for i, t in enumerate(spec.get("tolerations") or []):
        tp = f"{path}.tolerations[{i}]"
        op = t.get("operator") or "Equal"
        v.enum(f"{tp}.operator", op, ["Equal", "Exists"])
        if op == "Exists" and t.get("value"):
            v.invalid(f"{tp}.operator", t.get("value"), "value must be empty when `operator` is 'Exists'")
        if not t.get("key") and op != "Exists":
            v.invalid(f"{tp}.operator", op, "operator must be Exists when `key` is empty, which means \"match all "
                                            "values and all keys\"")
        if t.get("effect"):
            v.enum(f"{tp}.effect", t.get("effect"), ["NoExecute", "NoSchedule", "PreferNoSchedule"])
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            v.invalid(f"{tp}.effect", t.get("effect"), "effect must be 'NoExecute' when `tolerationSeconds` is set")
    hn = spec.get("hostname")
    if hn:
        for m in dns1123_label(hn):
            v.invalid(f"{path}.hostname", hn, m)


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def _pod_spec_masked(spec: dict[str, Any]) -> dict[str, Any]:
    s = json.loads(json.dumps(spec))
    for f in _POD_MUTABLE:
        s.pop(f, None)
    for field in ("containers", "initContainers"):
        for c in s.get(field) or []:
            c.pop("image", None)
    return s


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    validate_pod_spec(obj.get("spec"), "spec", v)
    if old is not None and isinstance(obj.get("spec"), dict):
        if _pod_spec_masked(obj["spec"]) != _pod_spec_masked(old.get("spec") or {}):
            v.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                                "(allow it to be set to 1 if it was previously negative)")
    return v.causes


def validate_pod_status(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    st = obj.get("status") or {}
    v.enum("status.phase", st.get("phase"), ["Pending", "Running", "Succeeded", "Failed", "Unknown"])
    if old is not None:
        oldphase = (old.get("status") or {}).get("phase")
        if oldphase in ("Succeeded", "Failed") and st.get("phase") != oldphase:
            v.forbidden("status.phase", f"cannot transition from terminal phase {oldphase} to {st.get('phase')}")
    for f in ("podIP", "hostIP"):
        ip = st.get(f)
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                v.invalid(f"status.{f}", ip, "must be a valid IP address")
    for i, c in enumerate(st.get("conditions") or []):
        v.enum(f"status.conditions[{i}].status", c.get("status"), ["True", "False", "Unknown"])
    return v.causes


# ------------------------------------------------------- workloads (apps/v1)

def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strat = spec.setdefault("strategy", {})
    strat.setdefault("type", "RollingUpdate")
    if strat["type"] == "RollingUpdate":
        ru = strat.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    tmpl = spec.setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}), template=True)


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    tmpl = spec.setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}), template=True)


def _selector_repr(sel: Any) -> str:
    return json.dumps(sel, separators=(",", ":"), sort_keys=True)


def _validate_int_or_percent(path: str, val: Any, v: V) -> float | None:
    if val is None:
        return None
    if isinstance(val, int):
        if val < 0:
            v.invalid(path, val, "must be greater than or equal to 0")
        return float(val)
    if isinstance(val, str):
        if not PERCENT_RE.match(val):
            v.invalid(path, val, "a valid percent string must be a numeric string followed by an ending '%' "
                                 "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
            return None
        return float(val[:-1]) / 100.0
    return None


def _validate_workload(obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> V:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        v.required("spec")
        return v
    v.non_negative("spec.replicas", spec.get("replicas"))
    v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    sel = spec.get("selector")
    tmpl = spec.get("template") or {}
    tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not sel:
        v.required("spec.selector")
    elif not sel.get("matchLabels") and not sel.get("matchExpressions"):
        v.invalid("spec.selector", sel, f"empty selector is invalid for {kind.lower()}")
    else:
        v.labels("spec.selector.matchLabels", sel.get("matchLabels"))
        for i, e in enumerate(sel.get("matchExpressions") or []):
            ep = f"spec.selector.matchExpressions[{i}]"
            v.enum(f"{ep}.operator", e.get("operator"), ["In", "NotIn", "Exists", "DoesNotExist"])
            if e.get("operator") in ("In", "NotIn") and not e.get("values"):
                v.required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            if e.get("operator") in ("Exists", "DoesNotExist") and e.get("values"):
                v.forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        try:
            selector = from_label_selector_object(sel)
            if not selector.matches(tlabels):
                v.invalid("spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`")
        except errors.APIError:
            pass
    if not spec.get("template"):
        v.required("spec.template")
    else:
        v.labels("spec.template.metadata.labels", tlabels)
        validate_pod_spec(tmpl.get("spec"), "spec.template.spec", v, template=True)
        rp = (tmpl.get("spec") or {}).get("restartPolicy")
        if rp is not None and rp != "Always":
            v.unsupported("spec.template.spec.restartPolicy", rp, ["Always"])
        if (tmpl.get("spec") or {}).get("activeDeadlineSeconds") is not None:
            v.forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not "
                                                                    "Supported")
    if old is not None and sel is not None and (old.get("spec") or {}).get("selector") != sel:
        v.invalid("spec.selector", sel, "field is immutable")
    return v


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = _validate_workload(obj, old, "Deployment")
    spec = obj.get("spec") or {}
    strat = spec.get("strategy") or {}
    st = strat.get("type")
    v.enum("spec.strategy.type", st, ["Recreate", "RollingUpdate"])
    if st == "Recreate" and strat.get("rollingUpdate") is not None:
        v.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    if st == "RollingUpdate":
        ru = strat.get("rollingUpdate") or {}
        mu = _validate_int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"), v)
        ms = _validate_int_or_percent("spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"), v)
        if mu is not None and isinstance(ru.get("maxUnavailable"), str) and mu > 1:
            v.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                      "must not be greater than 100%")
        if mu == 0 and ms == 0:
            v.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                      "may not be 0 when `maxSurge` is 0")
    v.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int):
        if pds <= 0:
            v.invalid("spec.progressDeadlineSeconds", pds, "must be greater than 0")
        elif pds <= (spec.get("minReadySeconds") or 0):
            v.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")
    return v.causes


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _validate_workload(obj, old, "ReplicaSet").causes


def validate_workload_status(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    st = obj.get("status") or {}
    for f in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "fullyLabeledReplicas",
              "observedGeneration", "unavailableReplicas", "terminatingReplicas"):
        v.non_negative(f"status.{f}", st.get(f))
    return v.causes


def validate_scale(obj: dict[str, Any]) -> list[Cause]:
    v = V()
    v.non_negative("spec.replicas", (obj.get("spec") or {}).get("replicas"))
    return v.causes


# -------------------------------------------------------------- services

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        if p.get("targetPort") is None and isinstance(p.get("port"), int):
            p["targetPort"] = p["port"]
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def validate_service(obj: dict[str, Any], old: dict[str, Any] | None,
                     node_ports: tuple[int, int] = (30000, 32767)) -> list[Cause]:
    v = V()
    validate_metadata(obj, "dns1035", True, v)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        v.required("spec")
        return v.causes
    typ = spec.get("type")
    v.enum("spec.type", typ, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if typ == "ExternalName":
        en = spec.get("externalName")
        if not en:
            v.required("spec.externalName")
        else:
            for m in dns1123_subdomain(en.rstrip(".")):
                v.invalid("spec.externalName", en, m)
    elif not ports and not headless:
        v.required("spec.ports")
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        n = p.get("name")
        if len(ports) > 1 and not n:
            v.required(f"{pp}.name")
        if n:
            for m in dns1123_label(n):
                v.invalid(f"{pp}.name", n, m)
            if n in names:
                v.add(errors.duplicate(f"{pp}.name", n))
            names.add(n)
        if p.get("port") is None:
            v.required(f"{pp}.port")
        else:
            v.port(f"{pp}.port", p.get("port"))
        v.enum(f"{pp}.protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
        tp = p.get("targetPort")
        if isinstance(tp, int):
            v.port(f"{pp}.targetPort", tp)
        elif isinstance(tp, str):
            if not tp or len(tp) > 15 or not IANA_SVC_NAME_RE.match(tp) or not re.search("[a-z]", tp):
                v.invalid(f"{pp}.targetPort", tp, "must contain only alpha-numeric characters (a-z, 0-9), and "
                                                  "hyphens (-), at most 15 characters, and at least one letter")
        np_ = p.get("nodePort")
        if np_ not in (None, 0):
            if typ not in ("NodePort", "LoadBalancer"):
                v.forbidden(f"{pp}.nodePort", "may not be used when `type` is 'ClusterIP'")
            elif isinstance(np_, int) and not node_ports[0] <= np_ <= node_ports[1]:
                v.invalid(f"{pp}.nodePort", np_, f"provided port is not in the valid range. The range of valid "
                                                 f"ports is {node_ports[0]}-{node_ports[1]}")
        key = (p.get("port"), p.get("protocol"))
        if key in seen:
            v.add(errors.duplicate(pp, {"port": p.get("port"), "protocol": p.get("protocol")}))
        seen.add(key)
    v.labels("spec.selector", spec.get("selector"))
    v.enum("spec.sessionAffinity", spec.get("sessionAffinity"), ["ClientIP", "None"])
    v.enum("spec.externalTrafficPolicy", spec.get("externalTrafficPolicy"), ["Cluster", "Local"])
    v.enum("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"), ["Cluster", "Local"])
    cip = spec.get("clusterIP")
    if cip and cip != "None":
        try:
            ipaddress.ip_address(cip)
        except ValueError:
            v.invalid("spec.clusterIPs[0]", cip, "must be empty, 'None', or a valid IP address")
    if old is not None and typ != "ExternalName":
        oldip = (old.get("spec") or {}).get("clusterIP")
        if oldip and cip != oldip:
            v.invalid("spec.clusterIPs[0]", cip, "may not change once set")
    return v.causes


# ------------------------------------------------------ configmaps, secrets

def _validate_config_keys(field: str, data: Any, v: V) -> int:
    size = 0
    for k, val in (data or {}).items():
        if len(k) > 253 or not CONFIG_KEY_RE.match(k) or k in (".", ".."):
            v.invalid(f"{field}[{k}]", k, "a valid config key must consist of alphanumeric characters, '-', '_' or "
                                          "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                                          "validation is '[-._a-zA-Z0-9]+')")
        size += len(val or "")
    return size


def validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    size = _validate_config_keys("data", obj.get("data"), v)
    size += _validate_config_keys("binaryData", obj.get("binaryData"), v)
    for k in (obj.get("binaryData") or {}):
        if k in (obj.get("data") or {}):
            v.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
        try:
            base64.b64decode(obj["binaryData"][k], validate=True)
        except (ValueError, TypeError):
            v.invalid(f"binaryData[{k}]", "<value omitted>", "illegal base64 data")
    if size > MAX_CONFIG_SIZE:
        v.add(errors.too_long("data", MAX_CONFIG_SIZE))
    if old is not None and old.get("immutable"):
        if obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData"):
            v.forbidden("data", "field is immutable when `immutable` is set")
        if not obj.get("immutable"):
            v.forbidden("immutable", "field is immutable when `immutable` is set")
    return v.causes


def default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    sd = obj.pop("stringData", None)
    if sd:
        data = obj.setdefault("data", {})
        for k, val in sd.items():
            data[k] = base64.b64encode(str(val).encode()).decode()


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    data = obj.get("data") or {}
    _validate_config_keys("data", data, v)
    size = 0
    for k, val in data.items():
        try:
            size += len(base64.b64decode(val, validate=True))
        except (ValueError, TypeError):
            v.invalid(f"data[{k}]", "<secret contents redacted>", "illegal base64 data")
    if size > MAX_CONFIG_SIZE:
        v.add(errors.too_long("data", MAX_CONFIG_SIZE))
    typ = obj.get("type")
    if typ == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                v.required(f"data[{k}]")
    if typ == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        v.required("data[.dockerconfigjson]")
    if old is not None:
        if typ != old.get("type"):
            v.invalid("type", typ, "field is immutable")
        if old.get("immutable") and (data != (old.get("data") or {}) or not obj.get("immutable")):
            v.forbidden("data", "field is immutable when `immutable` is set")
    return v.causes


# ----------------------------------------------------- namespaces, nodes

def default_namespace(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    md = obj.setdefault("metadata", {})
    if md.get("name"):
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]


def validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "label", False, v)
    for i, f in enumerate((obj.get("spec") or {}).get("finalizers") or []):
        if "/" not in f and f != "kubernetes":
            v.invalid(f"spec.finalizers[{i}]", f, "name is neither a standard finalizer name nor is it fully "
                                                  "qualified")
    return v.causes


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", False, v)
    spec = obj.get("spec") or {}
    for f in ("podCIDR",):
        c = spec.get(f)
        if c:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                v.invalid(f"spec.{f}", c, "must be a valid CIDR")
    for i, t in enumerate(spec.get("taints") or []):
        tp = f"spec.taints[{i}]"
        if not t.get("key"):
            v.required(f"{tp}.key")
        if not t.get("effect"):
            v.required(f"{tp}.effect")
        else:
            v.enum(f"{tp}.effect", t.get("effect"), ["NoExecute", "NoSchedule", "PreferNoSchedule"])
    st = obj.get("status") or {}
    for k in ("capacity", "allocatable"):
        for name, q in (st.get(k) or {}).items():
            try:
                if parse_quantity(q) < 0:
                    v.invalid(f"status.{k}[{name}]", q, "must be greater than or equal to 0")
            except QuantityError as exc:
                v.invalid(f"status.{k}[{name}]", q, str(exc))
    if old is not None:
        oc = (old.get("spec") or {}).get("podCIDR")
        if oc and spec.get("podCIDR") != oc:
            v.forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid")
    return v.causes


# ------------------------------------------------ endpoints, events, leases

def validate_endpoints(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    for i, ss in enumerate(obj.get("subsets") or []):
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(ss.get(kind) or []):
                ap = f"subsets[{i}].{kind}[{j}].ip"
                if not a.get("ip"):
                    v.required(ap)
                else:
                    try:
                        ipaddress.ip_address(a["ip"])
                    except ValueError:
                        v.invalid(ap, a["ip"], "must be a valid IP address")
        for j, p in enumerate(ss.get("ports") or []):
            v.port(f"subsets[{i}].ports[{j}].port", p.get("port"), allow_zero=False)
            v.enum(f"subsets[{i}].ports[{j}].protocol", p.get("protocol"), ["SCTP", "TCP", "UDP"])
    return v.causes


def default_endpoints(obj: dict[str, Any]) -> None:
    for ss in obj.get("subsets") or []:
        for p in ss.get("ports") or []:
            p.setdefault("protocol", "TCP")


def validate_event(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    io = obj.get("involvedObject") or {}
    ns = (obj.get("metadata") or {}).get("namespace")
    ions = io.get("namespace")
    if ions and ns and ions != ns:
        v.invalid("involvedObject.namespace", ions, "does not match event.namespace")
    if len(obj.get("message") or "") > 4096:
        v.add(errors.too_long("message", 4096))
    v.enum("type", obj.get("type") or None, ["Normal", "Warning"])
    return v.causes


def default_event(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Normal")
    if obj.get("firstTimestamp"):
        obj.setdefault("count", 1)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


def validate_lease(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    v = V()
    validate_metadata(obj, "subdomain", True, v)
    spec = obj.get("spec") or {}
    lds = spec.get("leaseDurationSeconds")
    if isinstance(lds, int) and lds <= 0:
        v.invalid("spec.leaseDurationSeconds", lds, "must be greater than 0")
    v.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
    return v.causes
