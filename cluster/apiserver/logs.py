"""``pods/log``: a container's log, from a registered log source or proxied from the pod's kubelet.

The container defaults to the pod's only one; the pod must be bound to a
node. A log source registered for the node (``register``: in-process
kubelets, tests) answers first; otherwise the request goes to the kubelet's
``/containerLogs/<ns>/<pod>/<container>`` at the address and port its Node
status publishes (``daemonEndpoints.kubeletEndpoint``), with the query's
log options, and the answer streams back as it comes (``follow``).

Concurrency: coroutines on the API server's loop; one ``ClientSession``
(made on first use) is shared by every proxied request.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from . import errors
from .errors import APIError
from .negotiation import json_response
from .registry import Registry
from .resources import served

# A log source: (namespace, pod, container, params) -> bytes | str | async iterator of bytes (or an awaitable of
# one of those). params: follow, tailLines, sinceSeconds, timestamps, previous, limitBytes (strings).
LogSource = Callable[[str, str, str, dict[str, str]], Any]
LOG_PARAMS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes")
PODS = served("pods")
NODES = served("nodes")


class PodLogs:
    def __init__(self) -> None:
        self.sources: dict[str, LogSource] = {}
        self._http: ClientSession | None = None

    def register(self, node_name: str, source: LogSource | None) -> None:
        """Serve the logs of pods on ``node_name`` from ``source`` (None unregisters)."""
        if source is None:
            self.sources.pop(node_name, None)
        else:
            self.sources[node_name] = source

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def serve(self, request: web.Request, registry: Registry, ns: str, name: str) -> web.StreamResponse:
        pod = await registry.get(PODS, ns, name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        all_names = names + [c.get("name") for c in spec.get("initContainers") or []]
        container = request.query.get("container")
        if not container:
            if len(names) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(str(n) for n in names)}]"
                )
            container = names[0]
        elif container not in all_names:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        node = spec.get("nodeName")
        if not node:
            raise errors.bad_request(f'pod "{name}" does not have a host assigned')
        params = {k: v for k, v in request.query.items() if k in LOG_PARAMS}
        source = self.sources.get(node)
        if source is not None:
            return await self._stream(request, source(ns, name, container, params))
        url = await self._kubelet_log_url(registry, node, ns, name, container)
        if url is None:
            raise errors.unavailable(
                f'no log source for node "{node}": its kubelet has not registered a log '
                f"endpoint (Node status.daemonEndpoints.kubeletEndpoint.Port is unset and no "
                f"log source is registered with the API server), so logs of pod {ns}/{name} "
                f"cannot be read yet"
            )
        return await self._proxy(request, url, params, node)

    @staticmethod
    async def _kubelet_log_url(registry: Registry, node: str, ns: str, pod: str, container: str) -> str | None:
        try:
            n = await registry.get(NODES, None, node)
        except APIError as exc:
            if exc.code == 404:
                return None
            raise
        st = n.get("status") or {}
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not port:
            return None
        addr = (
            next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
            or "127.0.0.1"
        )
        scheme = ((n.get("metadata") or {}).get("annotations") or {}).get("raykube.io/kubelet-scheme", "http")
        host = f"[{addr}]" if ":" in addr else addr
        return f"{scheme}://{host}:{port}/containerLogs/{ns}/{pod}/{container}"

    async def _proxy(self, request: web.Request, url: str, params: dict[str, str], node: str) -> web.StreamResponse:
        if self._http is None:
            self._http = ClientSession(
                connector=TCPConnector(ssl=False), timeout=ClientTimeout(total=None, sock_connect=5)
            )
        try:
            upstream = await self._http.get(url, params=params)
        except Exception as exc:
            raise errors.unavailable(f'the kubelet of node "{node}" is not reachable at {url}: {exc}') from None
        async with upstream:
            if upstream.status != 200:
                text = await upstream.text()
                if upstream.headers.get("Content-Type", "").startswith("application/json"):
                    try:
                        st = json.loads(text)
                        if st.get("kind") == "Status":
                            return json_response(st, upstream.status)
                    except ValueError:
                        pass
                raise errors.APIError(
                    upstream.status if upstream.status >= 400 else 502,
                    "InternalError",
                    f"kubelet of node {node}: {text.strip()[:500]}",
                )
            resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (ConnectionResetError, ConnectionError):
                pass
            await resp.write_eof()
            return resp

    @staticmethod
    async def _stream(request: web.Request, result: Any) -> web.StreamResponse:
        if isinstance(result, Awaitable) and not hasattr(result, "__aiter__"):
            result = await result
        if isinstance(result, str):
            result = result.encode()
        if isinstance(result, (bytes, bytearray)):
            resp = web.Response(body=bytes(result))
            resp.content_type = "text/plain"
            return resp
        resp2 = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await resp2.prepare(request)
        try:
            async for chunk in _aiter(result):
                await resp2.write(chunk.encode() if isinstance(chunk, str) else chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        await resp2.write_eof()
        return resp2


async def _aiter(it: Any) -> AsyncIterator[Any]:
    if hasattr(it, "__aiter__"):
        async for x in it:
            yield x
    else:
        for x in it:
            yield x
