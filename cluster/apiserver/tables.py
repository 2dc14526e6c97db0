"""Server-side printing: ``meta.k8s.io/v1 Table`` for ``kubectl get``.

``COLUMNS[plural]`` lists (name, type, format, description, priority, cell
function); priority-1 columns appear with ``-o wide``. The cell functions
mirror kube-apiserver's printers (pod status reasons such as
``ContainerCreating``/``CrashLoopBackOff``/``Terminating``, ``1/1`` ready
counts, restarts with "(5m ago)", service ports ``80/TCP``, ages like
``5m3s``). ``to_table`` builds the Table; rows carry the object (full,
metadata-only as ``PartialObjectMetadata``, or none) as ``includeObject``
asks. Pure functions.

Concurrency: pure functions; watch coroutines share the (read-only) event
objects they render.
"""

from __future__ import annotations

from typing import Any, Callable

from ..api.timestamps import parse_time
from .selector import from_label_selector_object

Cell = Callable[[dict[str, Any], float], Any]


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    m = s // 60
    if m < 10:
        sec = s % 60
        return f"{m}m" if sec == 0 else f"{m}m{sec}s"
    if m < 60 * 3:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        mm = (s % 3600) // 60
        return f"{h}h" if mm == 0 else f"{h}h{mm}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        hh = h % 24
        return f"{h // 24}d" if hh == 0 else f"{h // 24}d{hh}h"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return f"{h // 24 // 365}y" if dy == 0 else f"{h // 24 // 365}y{dy}d"
    return f"{h // 24 // 365}y"


def age(obj: dict[str, Any], now: float) -> str:
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if t is None else human_duration(now - t)


def name(obj: dict[str, Any], now: float) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _since(ts: str | None, now: float) -> str:
    t = parse_time(ts)
    return "<unknown>" if t is None else human_duration(now - t)


# ------------------------------------------------------------------ pods


def _pod_status(pod: dict[str, Any], now: float) -> tuple[str, int, int, int, str | None]:
    """(reason, ready, total, restarts, last restart time) like kubectl's printPod."""
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = 0
    restarts = 0
    last_restart: str | None = None
    reason = st.get("reason") or st.get("phase") or "Pending"
    init_statuses = st.get("initContainerStatuses") or []
    initializing = False
    for i, c in enumerate(init_statuses):
        restarts += c.get("restartCount", 0)
        term = (c.get("state") or {}).get("terminated")
        wait = (c.get("state") or {}).get("waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if term is not None:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
            initializing = True
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
            initializing = True
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
            initializing = True
        break
    if not initializing:
        has_running = False
        for c in reversed(st.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            lt = ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if lt and (last_restart is None or lt > last_restart):
                last_restart = lt
            state = c.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated") is not None:
                t = state["terminated"]
                reason = t.get("reason") or (
                    f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode')}"
                )
            elif state.get("running") is not None and c.get("ready"):
                has_running = True
                ready += 1
            elif state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = (
                "Running"
                if any(
                    cond.get("type") == "Ready" and cond.get("status") == "True" for cond in st.get("conditions") or []
                )
                else "NotReady"
            )
    md = pod.get("metadata") or {}
    if md.get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts, last_restart


def pod_ready(pod: dict[str, Any], now: float) -> str:
    _, r, t, _, _ = _pod_status(pod, now)
    return f"{r}/{t}"


def pod_phase(pod: dict[str, Any], now: float) -> str:
    return _pod_status(pod, now)[0]


def pod_restarts(pod: dict[str, Any], now: float) -> Any:
    _, _, _, n, last = _pod_status(pod, now)
    if last:
        return f"{n} ({_since(last, now)} ago)"
    return n


def _status(path: str, default: Any = "<none>") -> Cell:
    parts = path.split(".")

    def cell(obj: dict[str, Any], now: float) -> Any:
        cur: Any = obj
        for p in parts:
            if not isinstance(cur, dict):
                return default
            cur = cur.get(p)
        return default if cur in (None, "") else cur

    return cell


def _int(path: str) -> Cell:
    return _status(path, 0)


# ------------------------------------------------------------- workloads


def deploy_ready(d: dict[str, Any], now: float) -> str:
    st = d.get("status") or {}
    return f"{st.get('readyReplicas', 0)}/{(d.get('spec') or {}).get('replicas', 0)}"


def _containers(obj: dict[str, Any], now: float) -> str:
    cs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs)


def _images(obj: dict[str, Any], now: float) -> str:
    cs = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("image", "") for c in cs)


def _selector(obj: dict[str, Any], now: float) -> str:
    sel = (obj.get("spec") or {}).get("selector")
    if not sel:
        return "<none>"
    s = str(from_label_selector_object(sel))
    return s or "<none>"


# -------------------------------------------------------------- services


def svc_external_ip(svc: dict[str, Any], now: float) -> str:
    spec = svc.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    ext = spec.get("externalIPs") or []
    if typ == "ExternalName":
        return spec.get("externalName") or "<none>"
    if typ == "LoadBalancer":
        ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ips = [i.get("ip") or i.get("hostname") for i in ing] + ext
        return ",".join(x for x in ips if x) or "<pending>"
    return ",".join(ext) or "<none>"


def svc_ports(svc: dict[str, Any], now: float) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def svc_selector(svc: dict[str, Any], now: float) -> str:
    sel = (svc.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"


def svc_cluster_ip(svc: dict[str, Any], now: float) -> str:
    return (svc.get("spec") or {}).get("clusterIP") or "<none>"


def endpoints_list(ep: dict[str, Any], now: float) -> str:
    out = []
    for ss in ep.get("subsets") or []:
        ports = ss.get("ports") or []
        for a in ss.get("addresses") or []:
            if ports:
                out += [f"{a.get('ip')}:{p.get('port')}" for p in ports]
            else:
                out.append(a.get("ip", ""))
    if not out:
        return "<none>"
    if len(out) > 3:
        return ",".join(out[:3]) + f" + {len(out) - 3} more..."
    return ",".join(out)


# ---------------------------------------------------------------- nodes


def node_status(node: dict[str, Any], now: float) -> str:
    conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
    ready = conds.get("Ready")
    out = ["Ready" if ready == "True" else "NotReady" if ready in ("False",) else "Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        out.append("SchedulingDisabled")
    return ",".join(out)


def node_roles(node: dict[str, Any], now: float) -> str:
    roles = []
    for k in (node.get("metadata") or {}).get("labels") or {}:
        if k.startswith("node-role.kubernetes.io/"):
            roles.append(k.split("/", 1)[1])
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_addr(kind: str) -> Cell:
    def cell(node: dict[str, Any], now: float) -> str:
        for a in (node.get("status") or {}).get("addresses") or []:
            if a.get("type") == kind:
                return a.get("address", "<none>")
        return "<none>"

    return cell


# ------------------------------------------------------------- the rest


def data_count(obj: dict[str, Any], now: float) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def ns_status(ns: dict[str, Any], now: float) -> str:
    return (ns.get("status") or {}).get("phase") or "Active"


def event_last_seen(ev: dict[str, Any], now: float) -> str:
    ts = ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp")
    return _since(ts, now)


def event_object(ev: dict[str, Any], now: float) -> str:
    io = ev.get("involvedObject") or {}
    return f"{(io.get('kind') or '').lower()}/{io.get('name', '')}"


def lease_holder(lease: dict[str, Any], now: float) -> str:
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def _secret_data(obj: dict[str, Any], now: float) -> int:
    return len(obj.get("data") or {})


Column = tuple[str, str, str, str, int, Cell]

_AGE: Column = (
    "Age",
    "string",
    "",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
    0,
    age,
)
_NAME: Column = ("Name", "string", "name", "Name must be unique within a namespace.", 0, name)

COLUMNS: dict[str, list[Column]] = {
    "pods": [
        _NAME,
        ("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0, pod_ready),
        ("Status", "string", "", "The aggregate status of the containers in this pod.", 0, pod_phase),
        (
            "Restarts",
            "string",
            "",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
            0,
            pod_restarts,
        ),
        _AGE,
        ("IP", "string", "", "IP address allocated to the pod.", 1, _status("status.podIP")),
        ("Node", "string", "", "Name of the Node this pod is assigned to.", 1, _status("spec.nodeName")),
        ("Nominated Node", "string", "", "Nominated node name, if any.", 1, _status("status.nominatedNodeName")),
        ("Readiness Gates", "string", "", "Readiness gates.", 1, lambda o, n: "<none>"),
    ],
    "deployments": [
        _NAME,
        ("Ready", "string", "", "Number of the pod with ready state", 0, deploy_ready),
        (
            "Up-to-date",
            "string",
            "",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            0,
            _int("status.updatedReplicas"),
        ),
        (
            "Available",
            "string",
            "",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            0,
            _int("status.availableReplicas"),
        ),
        _AGE,
        ("Containers", "string", "", "Names of each container in the template.", 1, _containers),
        ("Images", "string", "", "Images referenced by each container in the template.", 1, _images),
        ("Selector", "string", "", "Label selector for pods.", 1, _selector),
    ],
    "replicasets": [
        _NAME,
        ("Desired", "integer", "", "Number of desired pods.", 0, _int("spec.replicas")),
        ("Current", "integer", "", "Number of actual replicas observed.", 0, _int("status.replicas")),
        ("Ready", "integer", "", "Number of ready replicas.", 0, _int("status.readyReplicas")),
        _AGE,
        ("Containers", "string", "", "Names of each container in the template.", 1, _containers),
        ("Images", "string", "", "Images referenced by each container in the template.", 1, _images),
        ("Selector", "string", "", "Label selector for pods.", 1, _selector),
    ],
    "services": [
        _NAME,
        ("Type", "string", "", "The type of service.", 0, _status("spec.type", "ClusterIP")),
        ("Cluster-IP", "string", "", "The cluster IP address of the service.", 0, svc_cluster_ip),
        ("External-IP", "string", "", "External IP addresses of the service.", 0, svc_external_ip),
        ("Port(s)", "string", "", "The ports exposed by the service.", 0, svc_ports),
        _AGE,
        (
            "Selector",
            "string",
            "",
            "Route service traffic to pods with label keys and values matching this selector.",
            1,
            svc_selector,
        ),
    ],
    "endpoints": [_NAME, ("Endpoints", "string", "", "Endpoints of the service.", 0, endpoints_list), _AGE],
    "namespaces": [_NAME, ("Status", "string", "", "The status of the namespace.", 0, ns_status), _AGE],
    "nodes": [
        _NAME,
        ("Status", "string", "", "The status of the node.", 0, node_status),
        ("Roles", "string", "", "The roles of the node.", 0, node_roles),
        _AGE,
        ("Version", "string", "", "Kubelet version.", 0, _status("status.nodeInfo.kubeletVersion", "")),
        ("Internal-IP", "string", "", "Internal IP of the node.", 1, _node_addr("InternalIP")),
        ("External-IP", "string", "", "External IP of the node.", 1, _node_addr("ExternalIP")),
        ("OS-Image", "string", "", "OS image.", 1, _status("status.nodeInfo.osImage", "<unknown>")),
        ("Kernel-Version", "string", "", "Kernel version.", 1, _status("status.nodeInfo.kernelVersion", "<unknown>")),
        (
            "Container-Runtime",
            "string",
            "",
            "Container runtime.",
            1,
            _status("status.nodeInfo.containerRuntimeVersion", "<unknown>"),
        ),
    ],
    "configmaps": [_NAME, ("Data", "integer", "", "Number of data entries.", 0, data_count), _AGE],
    "secrets": [
        _NAME,
        ("Type", "string", "", "The type of the secret.", 0, _status("type", "Opaque")),
        ("Data", "integer", "", "Number of data entries.", 0, _secret_data),
        _AGE,
    ],
    "events": [
        ("Last Seen", "string", "", "Time since the event was last seen.", 0, event_last_seen),
        ("Type", "string", "", "Type of this event (Normal, Warning).", 0, _status("type", "")),
        ("Reason", "string", "", "Why the action was taken.", 0, _status("reason", "")),
        ("Object", "string", "", "The object this event is about.", 0, event_object),
        ("Message", "string", "", "A human-readable description of the event.", 0, _status("message", "")),
    ],
    "leases": [_NAME, ("Holder", "string", "", "The holder of the lease.", 0, lease_holder), _AGE],
}


def columns_for(plural: str) -> list[Column]:
    return COLUMNS.get(plural, [_NAME, _AGE])


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def row(obj: dict[str, Any], plural: str, now: float, include: str = "Metadata") -> dict[str, Any]:
    cols = columns_for(plural)
    r: dict[str, Any] = {"cells": [c[5](obj, now) for c in cols]}
    if include == "Object":
        r["object"] = obj
    elif include != "None":
        r["object"] = _partial(obj)
    return r


def column_definitions(plural: str) -> list[dict[str, Any]]:
    return [
        {"name": c[0], "type": c[1], "format": c[2], "description": c[3], "priority": c[4]} for c in columns_for(plural)
    ]


def to_table(
    objs: list[dict[str, Any]],
    plural: str,
    list_meta: dict[str, Any],
    now: float,
    include: str = "Metadata",
    no_headers: bool = False,
) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [] if no_headers else column_definitions(plural),
        "rows": [row(o, plural, now, include) for o in objs],
    }
