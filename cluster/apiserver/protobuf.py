"""Decoding of Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

kubectl's typed clients send protobuf: ``kubectl create namespace|configmap|
secret|deployment|service``, and the Eviction/DeleteOptions bodies of
``kubectl drain``. The envelope is the magic ``k8s\\x00`` followed by a
``runtime.Unknown`` (typeMeta, raw, contentEncoding, contentType) whose
``raw`` is the object's own message. ``decode(body)`` returns the object as
the JSON dict the rest of the server works with.

The field numbers come from Kubernetes' ``generated.proto`` files (they never
change once assigned) and cover the kinds above and the types they contain
as kubectl's generators fill them. A field number not in the table is
reported (415, naming the message and the number) rather than silently
dropped; JSON and YAML bodies have no such limit. Responses are always JSON
(clients list it in Accept).

Concurrency: pure functions, no shared state.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


# message -> {field number: (json name, type, label)}; label: "opt" | "rep" | "map:<value type>"
S, B, I32, I64, BOOL = "string", "bytes", "int32", "int64", "bool"
MESSAGES: dict[str, dict[int, tuple[str, str, str]]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta", "opt"),
        2: ("raw", B, "opt"),
        3: ("contentEncoding", S, "opt"),
        4: ("contentType", S, "opt"),
    },
    "TypeMeta": {1: ("apiVersion", S, "opt"), 2: ("kind", S, "opt")},
    "ObjectMeta": {
        1: ("name", S, "opt"),
        2: ("generateName", S, "opt"),
        3: ("namespace", S, "opt"),
        4: ("selfLink", S, "opt"),
        5: ("uid", S, "opt"),
        6: ("resourceVersion", S, "opt"),
        7: ("generation", I64, "opt"),
        8: ("creationTimestamp", "Time", "opt"),
        9: ("deletionTimestamp", "Time", "opt"),
        10: ("deletionGracePeriodSeconds", I64, "opt"),
        11: ("labels", S, "map:string"),
        12: ("annotations", S, "map:string"),
        13: ("ownerReferences", "OwnerReference", "rep"),
        14: ("finalizers", S, "rep"),
    },
    "OwnerReference": {
        1: ("kind", S, "opt"),
        3: ("name", S, "opt"),
        4: ("uid", S, "opt"),
        5: ("apiVersion", S, "opt"),
        6: ("controller", BOOL, "opt"),
        7: ("blockOwnerDeletion", BOOL, "opt"),
    },
    "LabelSelector": {1: ("matchLabels", S, "map:string"), 2: ("matchExpressions", "LabelSelectorRequirement", "rep")},
    "LabelSelectorRequirement": {1: ("key", S, "opt"), 2: ("operator", S, "opt"), 3: ("values", S, "rep")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", I64, "opt"),
        2: ("preconditions", "Preconditions", "opt"),
        3: ("orphanDependents", BOOL, "opt"),
        4: ("propagationPolicy", S, "opt"),
        5: ("dryRun", S, "rep"),
        6: ("ignoreStoreReadErrorWithClusterBreakingPotential", BOOL, "opt"),
    },
    "Preconditions": {1: ("uid", S, "opt"), 2: ("resourceVersion", S, "opt")},
    "Eviction": {1: ("metadata", "ObjectMeta", "opt"), 2: ("deleteOptions", "DeleteOptions", "opt")},
    "Namespace": {
        1: ("metadata", "ObjectMeta", "opt"),
        2: ("spec", "NamespaceSpec", "opt"),
        3: ("status", "NamespaceStatus", "opt"),
    },
    "NamespaceSpec": {1: ("finalizers", S, "rep")},
    "NamespaceStatus": {1: ("phase", S, "opt")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", "opt"),
        2: ("data", S, "map:string"),
        3: ("binaryData", S, "map:bytes"),
        4: ("immutable", BOOL, "opt"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", "opt"),
        2: ("data", S, "map:bytes"),
        3: ("type", S, "opt"),
        4: ("stringData", S, "map:string"),
        5: ("immutable", BOOL, "opt"),
    },
    "Service": {
        1: ("metadata", "ObjectMeta", "opt"),
        2: ("spec", "ServiceSpec", "opt"),
        3: ("status", "ServiceStatus", "opt"),
    },
    "ServiceSpec": {
        1: ("ports", "ServicePort", "rep"),
        2: ("selector", S, "map:string"),
        3: ("clusterIP", S, "opt"),
        4: ("type", S, "opt"),
        5: ("externalIPs", S, "rep"),
        7: ("sessionAffinity", S, "opt"),
        8: ("loadBalancerIP", S, "opt"),
        9: ("loadBalancerSourceRanges", S, "rep"),
        10: ("externalName", S, "opt"),
        11: ("externalTrafficPolicy", S, "opt"),
        12: ("healthCheckNodePort", I32, "opt"),
        13: ("publishNotReadyAddresses", BOOL, "opt"),
        17: ("ipFamilyPolicy", S, "opt"),
        18: ("clusterIPs", S, "rep"),
        19: ("ipFamilies", S, "rep"),
        20: ("allocateLoadBalancerNodePorts", BOOL, "opt"),
        21: ("loadBalancerClass", S, "opt"),
        22: ("internalTrafficPolicy", S, "opt"),
        23: ("trafficDistribution", S, "opt"),
    },
    "ServicePort": {
        1: ("name", S, "opt"),
        2: ("protocol", S, "opt"),
        3: ("port", I32, "opt"),
        4: ("targetPort", "IntOrString", "opt"),
        5: ("nodePort", I32, "opt"),
        6: ("appProtocol", S, "opt"),
    },
    "ServiceStatus": {1: ("loadBalancer", "LoadBalancerStatus", "opt")},
    "LoadBalancerStatus": {},
    "Deployment": {
        1: ("metadata", "ObjectMeta", "opt"),
        2: ("spec", "DeploymentSpec", "opt"),
        3: ("status", "DeploymentStatus", "opt"),
    },
    "DeploymentSpec": {
        1: ("replicas", I32, "opt"),
        2: ("selector", "LabelSelector", "opt"),
        3: ("template", "PodTemplateSpec", "opt"),
        4: ("strategy", "DeploymentStrategy", "opt"),
        5: ("minReadySeconds", I32, "opt"),
        6: ("revisionHistoryLimit", I32, "opt"),
        7: ("paused", BOOL, "opt"),
        9: ("progressDeadlineSeconds", I32, "opt"),
    },
    "DeploymentStrategy": {1: ("type", S, "opt"), 2: ("rollingUpdate", "RollingUpdateDeployment", "opt")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString", "opt"), 2: ("maxSurge", "IntOrString", "opt")},
    "DeploymentStatus": {
        1: ("observedGeneration", I64, "opt"),
        2: ("replicas", I32, "opt"),
        3: ("updatedReplicas", I32, "opt"),
        4: ("availableReplicas", I32, "opt"),
        5: ("unavailableReplicas", I32, "opt"),
        7: ("readyReplicas", I32, "opt"),
        8: ("collisionCount", I32, "opt"),
        9: ("terminatingReplicas", I32, "opt"),
    },
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", "opt"), 2: ("spec", "PodSpec", "opt")},
    "PodSpec": {
        2: ("containers", "Container", "rep"),
        3: ("restartPolicy", S, "opt"),
        4: ("terminationGracePeriodSeconds", I64, "opt"),
        5: ("activeDeadlineSeconds", I64, "opt"),
        6: ("dnsPolicy", S, "opt"),
        7: ("nodeSelector", S, "map:string"),
        8: ("serviceAccountName", S, "opt"),
        9: ("serviceAccount", S, "opt"),
        10: ("nodeName", S, "opt"),
        11: ("hostNetwork", BOOL, "opt"),
        12: ("hostPID", BOOL, "opt"),
        13: ("hostIPC", BOOL, "opt"),
        16: ("hostname", S, "opt"),
        17: ("subdomain", S, "opt"),
        19: ("schedulerName", S, "opt"),
        20: ("initContainers", "Container", "rep"),
        21: ("automountServiceAccountToken", BOOL, "opt"),
        24: ("priorityClassName", S, "opt"),
        25: ("priority", I32, "opt"),
        27: ("shareProcessNamespace", BOOL, "opt"),
        29: ("runtimeClassName", S, "opt"),
        30: ("enableServiceLinks", BOOL, "opt"),
        31: ("preemptionPolicy", S, "opt"),
        35: ("setHostnameAsFQDN", BOOL, "opt"),
        37: ("hostUsers", BOOL, "opt"),
    },
    "Container": {
        1: ("name", S, "opt"),
        2: ("image", S, "opt"),
        3: ("command", S, "rep"),
        4: ("args", S, "rep"),
        5: ("workingDir", S, "opt"),
        6: ("ports", "ContainerPort", "rep"),
        7: ("env", "EnvVar", "rep"),
        8: ("resources", "ResourceRequirements", "opt"),
        13: ("terminationMessagePath", S, "opt"),
        14: ("imagePullPolicy", S, "opt"),
        16: ("stdin", BOOL, "opt"),
        17: ("stdinOnce", BOOL, "opt"),
        18: ("tty", BOOL, "opt"),
        20: ("terminationMessagePolicy", S, "opt"),
    },
    "ContainerPort": {
        1: ("name", S, "opt"),
        2: ("hostPort", I32, "opt"),
        3: ("containerPort", I32, "opt"),
        4: ("protocol", S, "opt"),
        5: ("hostIP", S, "opt"),
    },
    "EnvVar": {1: ("name", S, "opt"), 2: ("value", S, "opt")},
    "ResourceRequirements": {1: ("limits", S, "map:Quantity"), 2: ("requests", S, "map:Quantity")},
}

# Go pointer fields, where a zero value on the wire was set on purpose. Every other scalar is a plain Go
# field that gogo-protobuf always writes, so its zero value means "unset" and is dropped (as omitempty does
# in JSON).
KEEP_ZERO = {
    ("DeploymentSpec", "replicas"),
    ("DeploymentSpec", "revisionHistoryLimit"),
    ("DeploymentSpec", "progressDeadlineSeconds"),
    ("PodSpec", "terminationGracePeriodSeconds"),
    ("PodSpec", "activeDeadlineSeconds"),
    ("PodSpec", "automountServiceAccountToken"),
    ("PodSpec", "priority"),
    ("PodSpec", "shareProcessNamespace"),
    ("PodSpec", "enableServiceLinks"),
    ("PodSpec", "setHostnameAsFQDN"),
    ("PodSpec", "hostUsers"),
    ("ObjectMeta", "deletionGracePeriodSeconds"),
    ("DeleteOptions", "gracePeriodSeconds"),
    ("DeleteOptions", "orphanDependents"),
    ("ConfigMap", "immutable"),
    ("Secret", "immutable"),
    ("OwnerReference", "controller"),
    ("OwnerReference", "blockOwnerDeletion"),
    ("ServiceSpec", "allocateLoadBalancerNodePorts"),
}

KINDS = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("policy/v1", "Eviction"): "Eviction",
    ("v1", "DeleteOptions"): "DeleteOptions",
    ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions",
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ProtobufError("truncated length-delimited field")
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = int.from_bytes(buf[i : i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(buf[i : i + 4], "little"), i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(buf: bytes) -> str | None:
    secs = 0
    for num, _, v in _fields(buf):
        if num == 1:
            secs = _signed(v)
    if secs == 0:
        return None  # the zero time: unset
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(buf: bytes) -> int | str:
    typ, ival, sval = 0, 0, ""
    for num, _, v in _fields(buf):
        if num == 1:
            typ = v
        elif num == 2:
            ival = _signed(v)
        elif num == 3:
            sval = v.decode()
    return sval if typ == 1 else ival


def _quantity(buf: bytes) -> str:
    for num, _, v in _fields(buf):
        if num == 1:
            return v.decode()
    return "0"


def _scalar(typ: str, wt: int, v: Any, where: str) -> Any:
    if typ == S:
        return v.decode()
    if typ == B:
        return base64.b64encode(v).decode()
    if typ in (I32, I64):
        return _signed(v)
    if typ == BOOL:
        return bool(v)
    if typ == "Time":
        return _time(v)
    if typ == "Quantity":
        return _quantity(v)
    if typ == "IntOrString":
        return _int_or_string(v)
    if typ in MESSAGES:
        return decode_message(v, typ)
    raise ProtobufError(f"{where}: unsupported type {typ}")


def decode_message(buf: bytes, msg: str) -> dict[str, Any]:
    spec = MESSAGES[msg]
    out: dict[str, Any] = {}
    for num, wt, v in _fields(buf):
        f = spec.get(num)
        if f is None:
            raise ProtobufError(f"field {num} of {msg} is not supported in protobuf request bodies")
        name, typ, label = f
        if label == "opt":
            val = _scalar(typ, wt, v, f"{msg}.{name}")
            if val is None or (val in ("", 0, False) and not isinstance(val, dict) and (msg, name) not in KEEP_ZERO):
                continue
            out[name] = val
        elif label == "rep":
            if wt == 2 and typ in (I32, I64, BOOL):  # packed
                vals, i = [], 0
                while i < len(v):
                    x, i = _varint(v, i)
                    vals.append(_scalar(typ, 0, x, name))
                out.setdefault(name, []).extend(vals)
            else:
                out.setdefault(name, []).append(_scalar(typ, wt, v, f"{msg}.{name}"))
        else:
            vtype = label.split(":", 1)[1]
            key, val = "", None
            for n2, w2, v2 in _fields(v):
                if n2 == 1:
                    key = v2.decode()
                elif n2 == 2:
                    val = _scalar(vtype, w2, v2, f"{msg}.{name}[{key}]")
            out.setdefault(name, {})[key] = "" if val is None and vtype in (S, B, "Quantity") else val
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body (with the ``k8s\\x00`` envelope) as a JSON-style dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    env = decode_message(body[len(MAGIC) :], "Unknown")
    tm = env.get("typeMeta") or {}
    av, kind = tm.get("apiVersion", ""), tm.get("kind", "")
    if env.get("contentEncoding"):
        raise ProtobufError(f"content encoding {env['contentEncoding']!r} is not supported")
    msg = KINDS.get((av, kind))
    if msg is None:
        raise ProtobufError(f"{kind or 'this kind'} ({av or '?'}) is not supported in protobuf request bodies")
    raw = base64.b64decode(env.get("raw", ""))
    obj = decode_message(raw, msg)
    obj["apiVersion"] = av
    obj["kind"] = kind
    return obj
