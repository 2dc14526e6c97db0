"""Pod spec defaulting and validation, for pods and for the pod templates of workloads.

``default_pod_spec`` fills a pod spec's defaults (restartPolicy Always,
dnsPolicy ClusterFirst, terminationGracePeriodSeconds 30, imagePullPolicy
from the image tag, probe timings, ...); ``template=True`` is the template
flavour (no request-from-limit copy, no priority or tolerations).
``validate_pod_spec`` checks one (containers, ports, env, resources, volume
mounts, probes, tolerations). Every kind that carries a pod template (today
Deployments and ReplicaSets) uses these.

Concurrency: pure functions; defaulting mutates only the spec it is given,
which belongs to one request.
"""

from __future__ import annotations

import re
from typing import Any

from ...api.quantity import QuantityError, parse_quantity
from .. import errors
from ..errors import Cause
from ..validation import IANA_SVC_NAME_RE, V, dns1123_label, dns1123_subdomain


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
            v.invalid(
                f"{path}.requests",
                (res.get("requests") or {}).get(name),
                f"must be less than or equal to {name} limit of {(res.get('limits') or {}).get(name)}",
            )


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
                v.invalid(
                    f"{path}.{h}.port", port, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
                )


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
                v.invalid(
                    f"{pp}.name",
                    pn,
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens "
                    "(-), at most 15 characters, and at least one letter",
                )
            if pn in port_names:
                v.add(errors.duplicate(f"{pp}.name", pn))
            port_names.add(pn)
    for i, e in enumerate(c.get("env") or []):
        ep = f"{path}.env[{i}]"
        en = e.get("name")
        if not en:
            v.required(f"{ep}.name")
        elif "=" in en or any(ord(ch) < 32 or ord(ch) > 126 for ch in en):
            v.invalid(
                f"{ep}.name",
                en,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            )
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
            v.invalid(
                f"{tp}.operator",
                op,
                'operator must be Exists when `key` is empty, which means "match all values and all keys"',
            )
        if t.get("effect"):
            v.enum(f"{tp}.effect", t.get("effect"), ["NoExecute", "NoSchedule", "PreferNoSchedule"])
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            v.invalid(f"{tp}.effect", t.get("effect"), "effect must be 'NoExecute' when `tolerationSeconds` is set")
    hn = spec.get("hostname")
    if hn:
        for m in dns1123_label(hn):
            v.invalid(f"{path}.hostname", hn, m)
