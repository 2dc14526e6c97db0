"""A minimal async KV interface, so one benchmark harness drives raftstore and etcd alike.

    backend = make_backend(spec, pool=16)    # spec: a picklable dict (see below)
    await backend.start()
    rev = await backend.put(b"k", b"v")
    value = await backend.get(b"k")          # linearizable; None if absent
    w = await backend.watch(b"/prefix/")     # returns once the watch is established
    async for ev in w: ...                   # WatchEvent(type, key, value, revision)
    await w.cancel(); await backend.close()

Implementations (``spec["system"]`` / ``spec["client"]``):

- ``raftstore``: :class:`raftstore.client.RaftstoreClient`, one per backend.
  It finds the leader and multiplexes every request over one TCP connection
  per member (its design, like etcd's Go client's single HTTP/2 connection).
- ``etcd`` / ``gateway`` (default): etcd's v3 JSON gRPC gateway over HTTP/1.1
  with aiohttp (``POST /v3/kv/put``, ``/v3/kv/range``, streaming
  ``/v3/watch``; keys and values base64). HTTP/1.1 has no multiplexing, so the
  keep-alive pool is sized to the concurrency: one connection per in-flight
  request, none opened during measurement once warm.
- ``etcd`` / ``grpc``: etcd's native gRPC API through ``aetcd`` (grpc.aio,
  one HTTP/2 channel), if that package is installed; optional.

Endpoint choice for etcd: like etcd's own clients with a single
``--endpoints`` entry (etcdctl, a kube-apiserver pointed at its local member),
every request goes to **one pinned member**; a follower forwards writes to the
leader and serves linearizable reads after a ReadIndex round trip. The harness
pins the *leader* by default, which is etcd's best case (no forwarding hop),
so ratios against it are conservative for raftstore.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from raftstore.client import prefix_end


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # "PUT" | "DELETE"
    key: bytes
    value: bytes
    revision: int


class BackendError(Exception):
    pass


class KVWatch:
    """An established watch; iterate for events, ``cancel()`` to stop."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        raise NotImplementedError

    async def cancel(self) -> None:
        raise NotImplementedError


class KVBackend:
    name = "?"

    async def start(self) -> None:
        """Connect (and anything else worth doing before the clock starts)."""

    async def put(self, key: bytes, value: bytes) -> int:
        """Write; returns the revision of the write."""
        raise NotImplementedError

    async def get(self, key: bytes) -> bytes | None:
        """Linearizable read of one key."""
        raise NotImplementedError

    async def watch(self, prefix: bytes) -> KVWatch:
        """Watch every key under ``prefix`` from now on; returns once established."""
        raise NotImplementedError

    async def close(self) -> None:
        pass


# ---------------------------------------------------------------------------
# raftstore


class _RaftstoreWatch(KVWatch):
    def __init__(self, w: Any) -> None:
        self._w = w

    async def _iter(self) -> AsyncIterator[WatchEvent]:
        async for resp in self._w:
            for e in resp.events:
                yield WatchEvent(e.type, e.kv.key, e.kv.value, e.kv.mod_revision)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iter()

    async def cancel(self) -> None:
        await self._w.cancel()


class RaftstoreBackend(KVBackend):
    name = "raftstore"

    def __init__(self, endpoints: list[str], *, timeout: float = 10.0) -> None:
        from raftstore.client import RaftstoreClient

        self.client = RaftstoreClient(endpoints, timeout=timeout, request_timeout=min(timeout, 5.0))

    async def start(self) -> None:
        await self.client.wait_for_leader(timeout=15.0)

    async def put(self, key: bytes, value: bytes) -> int:
        res = await self.client.put(key, value)
        return int(res.get("revision", 0))

    async def get(self, key: bytes) -> bytes | None:
        kv = await self.client.get_one(key)
        return kv.value if kv is not None else None

    async def watch(self, prefix: bytes) -> KVWatch:
        w = self.client.watch(prefix, prefix=True)
        ready = asyncio.ensure_future(w.ready.wait())
        try:
            await asyncio.wait_for(asyncio.shield(ready), 15.0)
        except asyncio.TimeoutError:
            ready.cancel()
            await w.cancel()
            raise BackendError("raftstore watch not established within 15 s") from None
        return _RaftstoreWatch(w)

    async def close(self) -> None:
        await self.client.close()


# ---------------------------------------------------------------------------
# etcd, JSON gateway


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str | None) -> bytes:
    return base64.b64decode(s) if s else b""


class _GatewayWatch(KVWatch):
    def __init__(self, resp: Any, first_lines: list[dict[str, Any]]) -> None:
        self._resp = resp
        self._pending = first_lines

    @staticmethod
    def _events(msg: dict[str, Any]) -> list[WatchEvent]:
        res = msg.get("result") or {}
        out = []
        for e in res.get("events") or []:
            kv = e.get("kv") or {}
            out.append(
                WatchEvent(
                    e.get("type", "PUT"), _unb64(kv.get("key")), _unb64(kv.get("value")), int(kv.get("mod_revision", 0))
                )
            )
        return out

    async def _iter(self) -> AsyncIterator[WatchEvent]:
        for msg in self._pending:
            for ev in self._events(msg):
                yield ev
        self._pending = []
        content = self._resp.content
        while True:
            line = await content.readline()
            if not line:
                raise BackendError("etcd watch stream closed")
            line = line.strip()
            if not line:
                continue
            msg = json.loads(line)
            if "error" in msg:
                raise BackendError(f"etcd watch error: {msg['error']}")
            for ev in self._events(msg):
                yield ev

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iter()

    async def cancel(self) -> None:
        self._resp.close()


class EtcdGatewayBackend(KVBackend):
    name = "etcd"

    def __init__(self, endpoint: str, *, pool: int = 16, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.pool = max(1, pool)
        self.timeout = timeout
        self.session: Any = None
        self._watch_sessions: list[Any] = []

    async def start(self) -> None:
        import aiohttp

        conn = aiohttp.TCPConnector(
            limit=self.pool,
            limit_per_host=self.pool,
            keepalive_timeout=300,
            force_close=False,
            enable_cleanup_closed=False,
        )
        self.session = aiohttp.ClientSession(
            connector=conn, timeout=aiohttp.ClientTimeout(total=self.timeout), json_serialize=json.dumps
        )
        # Open the pool now so the measurement never pays for connects.
        k = _b64(b"__bench_warm")
        await asyncio.gather(*(self._post("/v3/kv/range", {"key": k, "serializable": True}) for _ in range(self.pool)))

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(
            self.endpoint + path, data=json.dumps(body), headers={"Content-Type": "application/json"}
        ) as r:
            raw = await r.read()
            if r.status != 200:
                raise BackendError(f"etcd {path}: HTTP {r.status}: {raw[:300]!r}")
        return json.loads(raw)

    async def put(self, key: bytes, value: bytes) -> int:
        res = await self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(res.get("header", {}).get("revision", 0))

    async def get(self, key: bytes) -> bytes | None:
        res = await self._post("/v3/kv/range", {"key": _b64(key)})
        kvs = res.get("kvs") or []
        return _unb64(kvs[0].get("value")) if kvs else None

    async def watch(self, prefix: bytes) -> KVWatch:
        import aiohttp

        # A watch is a long-lived streaming response: its own session, so it
        # neither takes a pool slot nor is cut by the request timeout.
        s = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        self._watch_sessions.append(s)
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}}
        resp = await s.post(
            self.endpoint + "/v3/watch", data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        if resp.status != 200:
            raise BackendError(f"etcd /v3/watch: HTTP {resp.status}: {(await resp.read())[:300]!r}")
        # Wait for the "created" message so the watch is established.
        first: list[dict[str, Any]] = []
        while True:
            line = await asyncio.wait_for(resp.content.readline(), 15.0)
            if not line:
                raise BackendError("etcd watch stream closed before it was created")
            if not line.strip():
                continue
            msg = json.loads(line)
            if "error" in msg:
                raise BackendError(f"etcd watch error: {msg['error']}")
            if (msg.get("result") or {}).get("created"):
                if (msg.get("result") or {}).get("events"):
                    first.append(msg)
                break
            first.append(msg)
        return _GatewayWatch(resp, first)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        for s in self._watch_sessions:
            await s.close()


# ---------------------------------------------------------------------------
# etcd, native gRPC via aetcd (optional)


class _GrpcWatch(KVWatch):
    def __init__(self, w: Any) -> None:
        self._w = w

    async def _iter(self) -> AsyncIterator[WatchEvent]:
        async for e in self._w:
            kind = getattr(getattr(e, "kind", None), "name", "PUT")
            yield WatchEvent(
                "DELETE" if kind.upper() == "DELETE" else "PUT", e.kv.key, e.kv.value, int(e.kv.mod_revision)
            )

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iter()

    async def cancel(self) -> None:
        await self._w.cancel()


class EtcdGrpcBackend(KVBackend):
    name = "etcd"

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        try:
            import aetcd  # noqa: F401
        except ImportError as exc:
            raise BackendError(
                "the etcd gRPC client needs aetcd: pip install -e '.[bench]' (or --etcd-client gateway)"
            ) from exc
        from urllib.parse import urlparse

        u = urlparse(endpoint if "://" in endpoint else "http://" + endpoint)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 2379
        self.timeout = timeout
        self.client: Any = None

    async def start(self) -> None:
        import aetcd

        self.client = aetcd.Client(host=self.host, port=self.port, timeout=int(self.timeout))
        await self.client.connect()
        await self.client.get(b"__bench_warm", serializable=True)

    async def put(self, key: bytes, value: bytes) -> int:
        res = await self.client.put(key, value)
        return int(res.header.revision)

    async def get(self, key: bytes) -> bytes | None:
        res = await self.client.get(key)
        return res.value if res is not None else None

    async def watch(self, prefix: bytes) -> KVWatch:
        w = await self.client.watch_prefix(prefix)
        return _GrpcWatch(w)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


# ---------------------------------------------------------------------------


def make_backend(spec: dict[str, Any], *, pool: int = 16) -> KVBackend:
    """Build a backend from a picklable spec.

    ``{"system": "raftstore", "endpoints": ["127.0.0.1:20000", ...]}``
    ``{"system": "etcd", "endpoint": "http://127.0.0.1:2379", "client": "gateway" | "grpc"}``
    """
    timeout = float(spec.get("timeout", 10.0))
    if spec["system"] == "raftstore":
        return RaftstoreBackend(list(spec["endpoints"]), timeout=timeout)
    if spec["system"] == "etcd":
        client = spec.get("client", "gateway")
        if client == "gateway":
            return EtcdGatewayBackend(spec["endpoint"], pool=pool, timeout=timeout)
        if client == "grpc":
            return EtcdGrpcBackend(spec["endpoint"], timeout=timeout)
        raise ValueError(f"unknown etcd client {client!r}")
    raise ValueError(f"unknown system {spec['system']!r}")
