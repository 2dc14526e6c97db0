"""How a container instance is launched: its image, environment, command line, files and ``ContainerSpec``.

``resolve_image`` looks the image up in the built-in catalog
(``cluster.images``); ``build_launch`` builds the environment (the kubelet's
base variables, then the container's ``env``/``envFrom`` with ``$(VAR)``
expansion, which may read ConfigMaps and Secrets through the API) and the
command line (``command`` replaces the image's entrypoint, ``args`` its
arguments) - ``EnvError`` when it cannot (CreateContainerConfigError); then
``container_spec`` and the per-container directories and log files
(``<pod dir>/logs/<container>/<restart count>.log``; the current and the
previous instance's logs are kept, older ones pruned).

Concurrency: plain functions; ``build_launch`` awaits the API for
ConfigMap/Secret lookups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .. import images
from ..api.quantity import int_value, milli_value
from ..runtime.interface import ContainerSpec
from .envvars import EnvError, Lookup, build_env, expand

BUILTIN_ORIGIN = "raykube built-in catalog"


@dataclass(frozen=True)
class PodContext:
    """What a container's environment needs to know about its pod and node."""

    pod: dict[str, Any]
    pod_ip: str | None
    node_name: str
    node_ip: str

    @property
    def meta(self) -> dict[str, Any]:
        return self.pod.get("metadata") or {}


def resolve_image(image: str) -> tuple[images.Image, str]:
    """(image, imageID); ``images.ImageNotFound`` for an image outside the catalog."""
    img = images.resolve(image)
    return img, f"raykube-builtin://{img.name}@{img.digest}"


def named_ports(spec: dict[str, Any]) -> dict[str, int]:
    """The container's named ports (probes and hooks may name them)."""
    return {p["name"]: p["containerPort"] for p in spec.get("ports") or [] if p.get("name") and p.get("containerPort")}


def pod_for_env(ctx: PodContext) -> dict[str, Any]:
    """The pod as ``fieldRef``s see it: with the IPs it is getting now."""
    pod = dict(ctx.pod)
    st = dict(pod.get("status") or {})
    st["podIP"] = ctx.pod_ip
    st["podIPs"] = [{"ip": ctx.pod_ip}] if ctx.pod_ip else []
    st["hostIP"] = ctx.node_ip
    st["hostIPs"] = [{"ip": ctx.node_ip}]
    pod["status"] = st
    return pod


def base_env(ctx: PodContext, spec: dict[str, Any], img: images.Image, workdir: str) -> dict[str, str]:
    """The variables every container gets before its own ``env``."""
    name = ctx.meta.get("name", "")
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": workdir,
        "HOSTNAME": name,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "POD_NAME": name,
        "POD_NAMESPACE": ctx.meta.get("namespace") or "default",
        "POD_UID": ctx.meta.get("uid", ""),
        "POD_IP": ctx.pod_ip or "",
        "NODE_NAME": ctx.node_name,
        "HOST_IP": ctx.node_ip,
    }
    if img.module:
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = images.SOURCE_ROOT
        ports = [p.get("containerPort") for p in spec.get("ports") or [] if p.get("containerPort")]
        if ports:
            env["PORT"] = str(ports[0])
    return env


async def build_launch(
    ctx: PodContext,
    spec: dict[str, Any],
    img: images.Image,
    workdir: str,
    allocatable: dict[str, str],
    lookup: Lookup | None,
) -> tuple[dict[str, str], list[str]]:
    """(env, argv) of the container; ``EnvError`` when they cannot be built."""
    env = await build_env(pod_for_env(ctx), spec, base_env(ctx, spec, img, workdir), allocatable, lookup)
    cmd = [expand(str(x), env) for x in spec.get("command") or []]
    args = [expand(str(x), env) for x in spec.get("args") or []]
    argv = (cmd + args) if cmd else img.entrypoint() + args
    if not argv:
        raise EnvError(
            f'no command specified: image "{spec.get("image") or ""}" runs the container\'s command '
            f"and args on the host, and the container has neither"
        )
    return env, argv


def container_spec(
    *,
    instance_id: str,
    pod_key: str,
    pod_uid: str,
    spec: dict[str, Any],
    argv: list[str],
    env: dict[str, str],
    workdir: str,
    log_path: str,
    nice: int,
) -> ContainerSpec:
    """The runtime's ``ContainerSpec``: the spec's ``workingDir`` if it exists on the host, limits from
    ``resources``."""
    res = spec.get("resources") or {}
    lim, req = res.get("limits") or {}, res.get("requests") or {}
    wd = spec.get("workingDir")
    return ContainerSpec(
        id=instance_id,
        pod_key=pod_key,
        pod_uid=pod_uid,
        name=spec.get("name", ""),
        argv=argv,
        env=env,
        cwd=wd if wd and os.path.isdir(wd) else workdir,
        log_path=log_path,
        memory_limit=int_value(lim.get("memory")),
        cpu_limit_millis=milli_value(lim.get("cpu")),
        cpu_request_millis=milli_value(req.get("cpu")),
        nice=nice,
    )


def prune_logs(log_dir: str, keep: set[str | None]) -> None:
    try:
        for f in os.listdir(log_dir):
            p = os.path.join(log_dir, f)
            if p not in keep:
                os.unlink(p)
    except OSError:
        pass


def log_tail(path: str | None, max_bytes: int = 2048, max_lines: int = 80) -> str:
    """Kubernetes' FallbackToLogsOnError: the last 80 lines / 2 KiB of the container's log."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-max_lines:])
