"""The kubelet's HTTP server (aiohttp), on the node's InternalIP.

- ``GET /containerLogs/<ns>/<pod>/<container>`` with ``tailLines``,
  ``follow``, ``previous``, ``limitBytes`` - what the API server proxies for
  ``pods/log`` (``kubectl logs``). Logs are the container's raw stdout and
  stderr (no timestamps: ``timestamps`` and ``sinceSeconds`` are ignored).
  ``follow`` streams until the container instance exits or the client goes.
- ``GET /healthz`` -> ``ok``.
- ``GET /pods`` -> a ``PodList`` of the pods this kubelet runs (as the real
  kubelet's read-only endpoint).
- ``GET /runtime`` -> JSON: node, limits mechanism, and for every pod the
  containers with their PID / process group / cgroup / log paths (what
  tests and operators use to find a container's processes).

No authentication: it listens on a loopback address only.

Concurrency: aiohttp handlers on the kubelet's asyncio loop; a ``follow``
stream polls the log file every 0.1 s.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .kubelet import Kubelet


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def _tail(path: str, lines: int) -> int:
    """Offset where the last ``lines`` lines of the file start."""
    if lines <= 0:
        return os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = pos = f.tell()
        count = 0
        chunk = 8192
        # A trailing newline ends the last line, it doesn't start a new one.
        skip_last = True
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step)
            for i in range(len(data) - 1, -1, -1):
                if data[i] == 0x0A:
                    if skip_last and pos + i == end - 1:
                        continue
                    count += 1
                    if count == lines:
                        return pos + i + 1
            skip_last = False
        return 0


class KubeletServer:
    def __init__(self, kubelet: "Kubelet") -> None:
        self.kl = kubelet
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/pods", self._pods)
        app.router.add_get("/runtime", self._runtime)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        socks = getattr(server, "sockets", None) or []
        self.port = socks[0].getsockname()[1] if socks else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _pods(self, request: web.Request) -> web.Response:
        items = [w.pod for w in self.kl.workers.values()]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def _runtime(self, request: web.Request) -> web.Response:
        return web.json_response(self.kl.runtime_info())

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        worker = self.kl.find_worker(ns, pod)
        if worker is None:
            return _status(
                404, "NotFound", f'pod "{pod}" in namespace "{ns}" is not running on node "{self.kl.config.name}"'
            )
        current, previous, running = worker.log_paths(container)
        if current is None and previous is None and worker.state.find(container) is None:
            return _status(404, "NotFound", f'container "{container}" not found in pod "{pod}"')
        want_prev = q.get("previous", "").lower() in ("true", "1")
        path = previous if want_prev else current
        if want_prev and path is None:
            return _status(400, "BadRequest", f'previous terminated container "{container}" in pod "{pod}" not found')
        if path is None or not os.path.exists(path):
            c = worker.state.find(container)
            reason = c.waiting[0] if c and c.waiting else "ContainerCreating"
            return _status(400, "BadRequest", f'container "{container}" in pod "{pod}" is waiting to start: {reason}')
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") else -1
        except ValueError:
            return _status(400, "BadRequest", "tailLines must be an integer")
        try:
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        except ValueError:
            return _status(400, "BadRequest", "limitBytes must be an integer")
        follow = q.get("follow", "").lower() in ("true", "1") and not want_prev
        offset = _tail(path, tail) if tail >= 0 else 0
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        sent = 0
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                while True:
                    data = f.read(65536)
                    if data:
                        if limit is not None:
                            data = data[: max(0, limit - sent)]
                        if data:
                            await resp.write(data)
                            sent += len(data)
                        if limit is not None and sent >= limit:
                            break
                        continue
                    if not follow:
                        break
                    cur, _, running = worker.log_paths(container)
                    if cur != path or not running or worker.done:
                        data = f.read()
                        if data:
                            await resp.write(data[: None if limit is None else max(0, limit - sent)])
                        break
                    await asyncio.sleep(0.1)
        except (ConnectionResetError, ConnectionError):
            return resp
        await resp.write_eof()
        return resp

    def describe(self) -> dict[str, Any]:
        return {"port": self.port}
