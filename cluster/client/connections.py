"""The ``Client``'s connection pools: its settings, its two aiohttp sessions and their upkeep.

``Connections`` is the bottom layer of ``rest.Client``: it holds what every call
needs (server URL, bearer token, TLS context, timeouts, the optional client-side
rate limiter, counters) and the two sessions described in ``rest``: a bounded
keep-alive pool for requests and an unbounded one for watches. It knows nothing
about HTTP verbs or retries; ``transport`` builds those on top.

Concurrency: a ``Connections`` belongs to one event loop at a time - its sessions
are made anew when it is used from another loop; any number of tasks on that
loop may share it. Nothing here blocks: the one ``select`` call has no timeout.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from typing import Any, Self

import aiohttp

from .flowcontrol import TokenBucket

# Idle pooled connections are kept this long (aiohttp's default is 15 s; Go's 90 s). The API server keeps
# them open a little longer (``cluster.apiserver.server.KEEPALIVE_SECONDS``), so the client closes first.
KEEPALIVE_SECONDS = 300.0


class Connections:
    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        ca_data: bytes | str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        retry_deadline: float = 30.0,
        qps: float = 0.0,
        burst: int = 0,
        max_connections: int = 16,
        user_agent: str = "raykube-client/0.1",
        namespace: str = "default",
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_deadline = retry_deadline
        self.user_agent = user_agent
        self.namespace = namespace
        self.max_connections = max_connections
        self._ssl: ssl.SSLContext | bool | None = None
        if self.server.startswith("https://"):
            if insecure:
                self._ssl = False
            else:
                cadata = ca_data.decode() if isinstance(ca_data, bytes) else ca_data
                self._ssl = ssl.create_default_context(cafile=ca_file, cadata=cadata)
        self._limiter = TokenBucket(qps, burst or max(1, int(qps))) if qps > 0 else None
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"requests": 0, "retries": 0, "reconnects": 0}

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = aiohttp.TCPConnector(
            ssl=self._ssl if self._ssl is not None else False,
            limit=limit,
            keepalive_timeout=KEEPALIVE_SECONDS,
            enable_cleanup_closed=True,
        )
        return aiohttp.ClientSession(connector=conn, headers=headers, auto_decompress=True)

    def _sess(self) -> aiohttp.ClientSession:
        """The session for requests (bounded pool)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = self._new_session(self.max_connections)
            self._watch_session = None  # a new loop: the old watch session belongs to the old one
            self._loop = loop
        return self._session

    def _watch_sess(self) -> aiohttp.ClientSession:
        """The session for watches (one connection each, unbounded)."""
        self._sess()
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)
        return self._watch_session

    async def _settle_idle_connections(self, max_rounds: int = 16) -> None:
        """Before a write: let the loop finish reading whatever is pending on idle pooled connections.

        A keep-alive connection whose server died (an API server actor SIGKILLed and restarted by Ray)
        has its EOF waiting in the socket; over TLS it takes the loop ~3 iterations to turn that into
        a closed connection that the pool drops. A write sent on it before then gets a reset and ends as
        ``UnknownOutcome``, although the server never saw it. So: while any idle connection's socket is
        readable (one ``select`` with no timeout; nothing is readable on a healthy idle connection, bar
        a TLS session ticket the loop will consume), yield to the loop. Reads are retried anyway."""
        sess = self._session
        conns = getattr(sess.connector, "_conns", None) if sess is not None and sess.connector else None
        if not conns:
            return
        for _ in range(max_rounds):
            fds: list[int] = []
            for idle in list(conns.values()):
                for proto, _t in list(idle):
                    sock = proto.transport.get_extra_info("socket") if proto.transport is not None else None
                    if sock is not None and sock.fileno() >= 0:
                        fds.append(sock.fileno())
            if not fds:
                return
            try:
                readable, _, _ = select.select(fds, [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                return
            await asyncio.sleep(0)

    async def close(self) -> None:
        for sess in (self._session, self._watch_session):
            if sess is not None and not sess.closed:
                await sess.close()
        self._session = None
        self._watch_session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _throttle(self) -> None:
        if self._limiter is not None:
            wait = self._limiter.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
