"""Kubeconfig files: write them for ``raykube up``, read them for ``cluster.client``.

A raykube kubeconfig is self-contained: the CA is embedded
(``certificate-authority-data``) and the user is a bearer token, so the file
can be copied anywhere kubectl or the ``kubernetes`` Python client runs.
Cluster and context are named ``raykube`` (``raykube-viewer`` for the viewer
file) so several files can be merged with ``KUBECONFIG=a:b``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class KubeConfig:
    """The parts of one kubeconfig context that a client needs."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None  # PEM
    ca_file: str | None = None
    insecure: bool = False
    context: str = ""
    user: str = ""
    namespace: str = "default"


def build(
    server: str, ca_pem: bytes, user: str, token: str, *, name: str = "raykube", namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": f"{name}-{user}", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{user}", "namespace": namespace}}],
        "current-context": name,
    }


def write(path: str, server: str, ca_pem: bytes, user: str, token: str, *, name: str = "raykube") -> str:
    """Write a kubeconfig (mode 0600, atomically) and return its path."""
    doc = build(server, ca_pem, user, token, name=name)
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    os.replace(tmp, path)
    return path


def _named(items: list[dict[str, Any]] | None, name: str, what: str, path: str) -> dict[str, Any]:
    for it in items or []:
        if it.get("name") == name:
            return it.get(what) or {}
    raise ValueError(f"{path}: no {what} named {name!r}")


def load(path: str | None = None, context: str | None = None) -> KubeConfig:
    """Read one context of a kubeconfig (default: ``$KUBECONFIG``'s first file, then ``~/.kube/config``)."""
    if path is None:
        env = os.environ.get("KUBECONFIG", "")
        path = next((p for p in env.split(os.pathsep) if p), os.path.expanduser("~/.kube/config"))
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ValueError(f"{path}: no current-context and no context given")
    ctx = _named(doc.get("contexts"), ctx_name, "context", path)
    cluster = _named(doc.get("clusters"), ctx["cluster"], "cluster", path)
    user = _named(doc.get("users"), ctx["user"], "user", path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))

    def rel(p: str | None) -> str | None:
        return None if p is None else (p if os.path.isabs(p) else os.path.join(base, p))

    token = user.get("token")
    if token is None and user.get("tokenFile"):
        with open(rel(user["tokenFile"]) or "") as f:
            token = f.read().strip()
    ca_data = cluster.get("certificate-authority-data")
    return KubeConfig(
        server=cluster["server"].rstrip("/"),
        token=token,
        ca_data=base64.b64decode(ca_data) if ca_data else None,
        ca_file=rel(cluster.get("certificate-authority")),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        context=ctx_name,
        user=ctx.get("user", ""),
        namespace=ctx.get("namespace") or "default",
    )
