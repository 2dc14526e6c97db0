"""Set-up for the client-library tests: a real 3-member raftstore and API servers served in the
test's own process over TLS (``env``), plus small helpers (informer convergence, namespaces,
an event recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, AsyncIterator, Iterator

import pytest

from cluster.client import (
    CONFIGMAPS,
    NAMESPACES,
    ApiError,
    Client,
    Informer,
    key_of,
)
from cluster.pki import ensure_pki
from raftstore.localcluster import LocalCluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    def __init__(self, cluster: LocalCluster, pki: Any, tokens_file: str, admin: str) -> None:
        self.cluster = cluster
        self.pki = pki
        self.tokens_file = tokens_file
        self.admin = admin

    def config(self, port: int) -> Any:
        from cluster.apiserver.server import APIServerConfig

        return APIServerConfig(
            raftstore_endpoints=self.cluster.endpoints,
            host="127.0.0.1",
            port=port,
            tls_cert=self.pki.server_cert,
            tls_key=self.pki.server_key,
            tokens_file=self.tokens_file,
            bookmark_interval=1.0,
        )

    def client(self, port: int, **kw: Any) -> Client:
        return Client(f"https://127.0.0.1:{port}", token=self.admin, ca_data=self.pki.ca_pem(), **kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    import json

    from cluster.apiserver.auth import generate_tokens as _generate_tokens
    from cluster.launcher import token_for

    root = tmp_path_factory.mktemp("clientlib")
    cluster = LocalCluster.create(str(root / "rs"))
    try:
        cluster.start()
        cluster.wait_serving(timeout=30)
        pki = ensure_pki(str(root / "pki"))
        tokens = _generate_tokens(["n1"])
        (root / "tokens.json").write_text(json.dumps(tokens))
        yield Env(cluster, pki, str(root / "tokens.json"), token_for(tokens, "admin"))
    finally:
        cluster.kill_all()


@contextlib.asynccontextmanager
async def serving(env: Env, port: int | None = None) -> AsyncIterator[Any]:
    from cluster.apiserver.server import APIServer

    server = APIServer(env.config(port or _free_port()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def converged(inf: Informer, client: Client, ns: str, timeout: float = 10.0) -> dict[str, str]:
    """Wait until the informer's cache equals the server's list (keys and resourceVersions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    want: dict[str, str] = {}
    have: dict[str, str] = {}
    while loop.time() < deadline:
        items, _ = await client.list_all(CONFIGMAPS, ns)
        want = {key_of(o): o["metadata"]["resourceVersion"] for o in items}
        have = {key_of(o): o["metadata"]["resourceVersion"] for o in inf.store.list()}
        if want == have:
            await inf.wait_idle()
            return have
        await asyncio.sleep(0.05)
    raise AssertionError(f"informer did not converge:\n server {want}\n cache  {have}")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "t"}}, "data": data}


async def make_ns(client: Client, name: str) -> str:
    with contextlib.suppress(ApiError):
        await client.create(NAMESPACES, {"metadata": {"name": name}})
    return name


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def add(self, o: dict[str, Any]) -> None:
        self.events.append(("add", key_of(o), o["metadata"]["resourceVersion"]))

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.events.append(("update", key_of(new), new["metadata"]["resourceVersion"]))

    def delete(self, o: dict[str, Any]) -> None:
        self.events.append(("delete", key_of(o), o["metadata"]["resourceVersion"]))

    def kinds(self, key: str) -> list[str]:
        return [k for k, kk, _ in self.events if kk == key]
