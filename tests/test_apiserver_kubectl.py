"""The real kubectl 1.37 against the API server over TLS: get (table), get -w,
create -f, apply -f (create, then update), delete, describe, scale, logs
(a clear error until kubelets serve logs), and client-side behaviour that
depends on discovery and OpenAPI (validation, strategic merge patches)."""

from __future__ import annotations

import json
import os
import select
import signal
import time

import pytest
from apiserver_fixtures import Env, api  # noqa: F401  (module-scoped fixture)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - name: OLD
          value: "1"
        resources:
          limits: {cpu: 500m, memory: 128Mi}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: kc}}
spec:
  {extra}containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
"""


def write(api: Env, name: str, text: str) -> str:
    path = api.workdir / name
    path.write_text(text)
    return str(path)


def test_get_table_has_server_side_columns(api: Env) -> None:
    api.kubectl("create", "-f", write(api, "p-table.yaml", POD.format(name="table-pod", extra="")))
    out = api.kubectl("get", "pods").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(line for line in out if line.startswith("table-pod"))
    assert row.split()[:4] == ["table-pod", "0/1", "Pending", "0"]
    wide = api.kubectl("get", "pods", "-o", "wide").stdout.splitlines()[0].split()
    assert "NODE" in wide and "IP" in wide
    ns = api.kubectl("get", "namespaces").stdout
    for n in ("default", "kube-system", "kube-node-lease", "kube-public"):
        assert n in ns
    svc = api.kubectl("get", "svc", "kubernetes").stdout.splitlines()
    assert svc[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    assert "443/TCP" in svc[1]
    # Selectors go to the server.
    assert "table-pod" in api.kubectl("get", "pods", "-l", "app in (kc,zz)").stdout
    assert "table-pod" not in api.kubectl("get", "pods", "-l", "app!=kc").stdout
    assert "table-pod" in api.kubectl("get", "pods", "--field-selector", "status.phase=Pending").stdout
    api.kubectl("delete", "pod", "table-pod", "--wait=false")


def test_create_apply_update_scale_describe_delete(api: Env) -> None:
    path = write(api, "deploy.yaml", DEPLOYMENT)
    out = api.kubectl("apply", "-f", path).stdout
    assert "deployment.apps/web created" in out
    table = api.kubectl("get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "0/2", "0", "0"]

    # Update the same file: replicas, an env var renamed (the old one must go), a second container port.
    changed = (
        DEPLOYMENT.replace("replicas: 2", "replicas: 3")
        .replace("name: OLD", "name: NEW")
        .replace("        - containerPort: 80\n", "        - containerPort: 80\n        - containerPort: 443\n")
    )
    out = api.kubectl("apply", "-f", write(api, "deploy.yaml", changed)).stdout
    assert "deployment.apps/web configured" in out
    d = json.loads(api.kubectl("get", "deployment", "web", "-o", "json").stdout)
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert d["spec"]["replicas"] == 3
    assert [e["name"] for e in c["env"]] == ["NEW"]
    assert [p["containerPort"] for p in c["ports"]] == [80, 443]
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": "128Mi"}
    assert d["metadata"]["generation"] == 2
    # Defaults were applied.
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert d["spec"]["revisionHistoryLimit"] == 10 and d["spec"]["progressDeadlineSeconds"] == 600
    assert c["imagePullPolicy"] == "IfNotPresent"
    # Re-applying the same file changes nothing.
    assert "unchanged" in api.kubectl("apply", "-f", write(api, "deploy.yaml", changed)).stdout

    out = api.kubectl("scale", "deployment", "web", "--replicas=5").stdout
    assert "scaled" in out
    d = json.loads(api.kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 3

    desc = api.kubectl("describe", "deployment", "web").stdout
    assert "Name:                   web" in desc
    assert "5 desired" in desc
    assert "RollingUpdate" in desc and "nginx:1.25" in desc

    out = api.kubectl("delete", "-f", path).stdout
    assert 'deployment.apps "web" deleted' in out
    p = api.kubectl("get", "deployment", "web", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr


def test_create_rejects_unknown_fields_and_invalid_objects(api: Env) -> None:
    bad = POD.format(name="strict-pod", extra="").replace(
        "    image: busybox:1.36\n", "    image: busybox:1.36\n    imagee: typo\n"
    )
    p = api.kubectl("create", "-f", write(api, "bad.yaml", bad), check=False)
    assert p.returncode != 0
    assert 'unknown field "spec.containers[0].imagee"' in p.stderr
    invalid = POD.format(name="Invalid_Name", extra="")
    p = api.kubectl("create", "-f", write(api, "inv.yaml", invalid), check=False)
    assert p.returncode != 0 and "is invalid" in p.stderr and "metadata.name" in p.stderr
    assert api.kubectl("get", "pod", "strict-pod", check=False).returncode != 0


def test_describe_pod_and_logs_error_without_kubelet(api: Env) -> None:
    api.kubectl("create", "-f", write(api, "p-logs.yaml", POD.format(name="logs-pod", extra="nodeName: n1\n  ")))
    desc = api.kubectl("describe", "pod", "logs-pod").stdout
    assert "Node:         n1" in desc and "busybox:1.36" in desc and "QoS Class:        BestEffort" in desc
    p = api.kubectl("logs", "logs-pod", check=False)
    assert p.returncode != 0
    assert "ServiceUnavailable" in p.stderr and 'no log source for node "n1"' in p.stderr
    # A bound pod is deleted gracefully: it stays Terminating until its kubelet confirms (or a forced delete).
    api.kubectl("delete", "pod", "logs-pod", "--wait=false")
    pod = json.loads(api.kubectl("get", "pod", "logs-pod", "-o", "json").stdout)
    assert pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "Terminating" in api.kubectl("get", "pod", "logs-pod").stdout
    api.kubectl("delete", "pod", "logs-pod", "--grace-period=0", "--force")
    assert api.kubectl("get", "pod", "logs-pod", check=False).returncode != 0


def _read_lines(proc, want: int, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    buf = ""
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    while len(lines) < want and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            chunk = os.read(fd, 65536).decode()
            if not chunk:
                break
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                lines.append(line)
    return lines


def test_get_watch_streams_changes(api: Env) -> None:
    api.kubectl(
        "create", "-f", write(api, "ns-watched.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: watched\n")
    )
    proc = api.kubectl_popen("get", "configmaps", "-n", "watched", "-w", "--output-watch-events")
    try:
        time.sleep(1.0)  # let kubectl list and start watching
        api.kubectl(
            "create",
            "-n",
            "watched",
            "-f",
            write(api, "cm-w1.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w1\ndata:\n  a: '1'\n"),
        )
        api.kubectl("label", "configmap", "w1", "-n", "watched", "x=y")
        api.kubectl("delete", "configmap", "w1", "-n", "watched")
        lines = _read_lines(proc, 4, 20)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert lines[0].split()[:3] == ["EVENT", "NAME", "DATA"], lines
    events = [line.split()[:2] for line in lines[1:]]
    assert events == [["ADDED", "w1"], ["MODIFIED", "w1"], ["DELETED", "w1"]], lines


def test_server_side_apply(api: Env) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: '2'\n"
    out = api.kubectl("apply", "--server-side", "-f", write(api, "ssa.yaml", cm)).stdout
    assert "serverside-applied" in out
    cm2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '10'\n"
    api.kubectl("apply", "--server-side", "-f", write(api, "ssa.yaml", cm2))
    got = json.loads(api.kubectl("get", "configmap", "ssa", "-o", "json", "--show-managed-fields").stdout)
    assert got["data"] == {"a": "10"}  # b was owned by this manager and is no longer applied
    assert any(m["manager"] == "kubectl" and m["operation"] == "Apply" for m in got["metadata"]["managedFields"])


def test_viewer_kubeconfig_can_read_not_write(api: Env) -> None:
    assert "kube-system" in api.kubectl("get", "ns", user="viewer").stdout
    p = api.kubectl(
        "create",
        "-f",
        write(api, "cm-nope.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nope\n"),
        user="viewer",
        check=False,
    )
    assert p.returncode != 0
    assert 'User "viewer" cannot create resource "configmaps"' in p.stderr


@pytest.mark.parametrize("what", ["explain"])
def test_explain_uses_openapi_v3(api: Env, what: str) -> None:
    out = api.kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in out


def test_logs_are_proxied_to_the_kubelet_endpoint_of_the_node(api: Env) -> None:
    """The contract for kubelets: a Node with status.daemonEndpoints.kubeletEndpoint.Port and an InternalIP
    gets ``GET http://<ip>:<port>/containerLogs/<ns>/<pod>/<container>?<log options>`` proxied to it."""
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = b"hello from main\nsecond line\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "logs-node"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": srv.server_address[1]}},
            },
        }
        assert api.request("POST", "/api/v1/nodes", node).status == 201
        api.kubectl(
            "create", "-f", write(api, "p-logs2.yaml", POD.format(name="logs2", extra="nodeName: logs-node\n  "))
        )
        out = api.kubectl("logs", "logs2", "--tail=5").stdout
        assert out == "hello from main\nsecond line\n"
        assert seen[0].startswith("/containerLogs/default/logs2/main?") and "tailLines=5" in seen[0]
        api.kubectl("delete", "pod", "logs2", "--grace-period=0", "--force")
    finally:
        srv.shutdown()


def test_events_and_describe_show_them(api: Env) -> None:
    api.kubectl("create", "-f", write(api, "p-ev.yaml", POD.format(name="ev-pod", extra="")))
    uid = json.loads(api.kubectl("get", "pod", "ev-pod", "-o", "json").stdout)["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "ev-pod.1"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "ev-pod", "uid": uid, "apiVersion": "v1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/ev-pod to n1",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "lastTimestamp": "2024-01-01T00:00:00Z",
        "count": 1,
    }
    r = api.request("POST", "/api/v1/namespaces/default/events", event, user="scheduler")
    assert r.status == 201, r.body
    table = api.kubectl("get", "events").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("pod/ev-pod" in line and "Scheduled" in line for line in table)
    desc = api.kubectl("describe", "pod", "ev-pod").stdout
    assert "Successfully assigned default/ev-pod to n1" in desc
    api.kubectl("delete", "pod", "ev-pod")


def test_typed_create_commands_send_protobuf(api: Env) -> None:
    """kubectl's generators (create namespace/configmap/secret/deployment/service) send protobuf bodies."""
    api.kubectl("create", "namespace", "typed")
    assert "Active" in api.kubectl("get", "namespace", "typed").stdout
    api.kubectl("-n", "typed", "create", "configmap", "cm", "--from-literal=a=1", "--from-literal=b=2")
    assert json.loads(api.kubectl("-n", "typed", "get", "cm", "cm", "-o", "json").stdout)["data"] == {
        "a": "1",
        "b": "2",
    }
    api.kubectl("-n", "typed", "create", "secret", "generic", "sec", "--from-literal=pw=hunter2")
    sec = json.loads(api.kubectl("-n", "typed", "get", "secret", "sec", "-o", "json").stdout)
    assert sec["type"] == "Opaque" and sec["data"] == {"pw": "aHVudGVyMg=="}
    api.kubectl("-n", "typed", "create", "deployment", "dep", "--image=nginx:1.25", "--replicas=2", "--port=80")
    d = json.loads(api.kubectl("-n", "typed", "get", "deployment", "dep", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 2 and d["spec"]["selector"] == {"matchLabels": {"app": "dep"}}
    assert d["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    api.kubectl("-n", "typed", "create", "service", "nodeport", "svc", "--tcp=80:8080")
    s = json.loads(api.kubectl("-n", "typed", "get", "service", "svc", "-o", "json").stdout)
    assert s["spec"]["type"] == "NodePort" and s["spec"]["ports"][0]["targetPort"] == 8080
    assert s["spec"]["clusterIP"].startswith("127.96.")
