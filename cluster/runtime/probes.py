"""Probe handlers: exec, httpGet and tcpSocket, as the kubelet runs them.

``run_probe(handler, ctx, timeout)`` -> ``(ok, message)``. ``handler`` is the
probe object (or a lifecycle hook: the same ``exec``/``httpGet``/``tcpSocket``
shape); ``ctx`` says where the container lives:

- ``exec``: ``command`` runs in the container's environment and working
  directory, in its own process group, killed at the timeout; exit 0 passes.
- ``httpGet``: ``scheme://host:port/path`` with ``httpHeaders``; ``host``
  defaults to the pod IP, ``port`` may be a named container port; a status
  in [200, 400) passes (redirects are followed).
- ``tcpSocket``: a TCP connect to ``host`` (default the pod IP) and ``port``.
- ``grpc`` is not supported and fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class ProbeContext:
    pod_ip: str
    env: dict[str, str]
    cwd: str
    ports: dict[str, int] = field(default_factory=dict)  # named container ports
    session: aiohttp.ClientSession | None = None


def resolve_port(port: Any, ctx: ProbeContext) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        if port in ctx.ports:
            return ctx.ports[port]
    raise ValueError(f"port {port!r} is neither a number nor a named container port ({sorted(ctx.ports)})")


_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE


async def run_probe(handler: dict[str, Any], ctx: ProbeContext, timeout: float) -> tuple[bool, str]:
    try:
        if "exec" in handler:
            return await _exec(handler["exec"] or {}, ctx, timeout)
        if "httpGet" in handler:
            return await _http(handler["httpGet"] or {}, ctx, timeout)
        if "tcpSocket" in handler:
            return await _tcp(handler["tcpSocket"] or {}, ctx, timeout)
        if "grpc" in handler:
            return False, "grpc probes are not supported by raykube"
        return False, "probe has no handler (exec, httpGet or tcpSocket)"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a probe failure is a result, never a crash
        return False, f"probe error: {exc}"


async def _exec(spec: dict[str, Any], ctx: ProbeContext, timeout: float) -> tuple[bool, str]:
    cmd = [str(c) for c in spec.get("command") or []]
    if not cmd:
        return False, "exec probe has no command"
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=ctx.env,
        cwd=ctx.cwd if os.path.isdir(ctx.cwd) else None,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        await proc.wait()
        return False, f"command {cmd!r} timed out after {timeout:g}s"
    finally:
        try:  # leftovers of the probe's process group
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    text = (out or b"").decode(errors="replace").strip()[-500:]
    if proc.returncode == 0:
        return True, text
    return False, f"command {cmd!r} exited with {proc.returncode}: {text}"


async def _http(spec: dict[str, Any], ctx: ProbeContext, timeout: float) -> tuple[bool, str]:
    scheme = str(spec.get("scheme") or "HTTP").lower()
    host = spec.get("host") or ctx.pod_ip
    port = resolve_port(spec.get("port"), ctx)
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {h.get("name"): h.get("value", "") for h in spec.get("httpHeaders") or [] if h.get("name")}
    headers.setdefault("User-Agent", "kube-probe/1.30")
    own = ctx.session is None
    session = ctx.session or aiohttp.ClientSession()
    try:
        async with session.get(
            url,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            ssl=_NO_VERIFY if scheme == "https" else None,
        ) as resp:
            body = (await resp.content.read(1024)).decode(errors="replace").strip()
            if 200 <= resp.status < 400:
                return True, body
            return False, f"HTTP probe failed with statuscode: {resp.status}"
    except asyncio.TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (timeout {timeout:g}s)'
    except aiohttp.ClientError as exc:
        return False, f'Get "{url}": {exc}'
    finally:
        if own:
            await session.close()


async def _tcp(spec: dict[str, Any], ctx: ProbeContext, timeout: float) -> tuple[bool, str]:
    host = spec.get("host") or ctx.pod_ip
    port = resolve_port(spec.get("port"), ctx)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: {exc.strerror or exc}"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True, ""
