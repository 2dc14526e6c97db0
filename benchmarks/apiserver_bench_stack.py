"""apiserver_bench's servers: its own stack, or the connection to a running cluster.

``Stack`` brings up a 3-member raftstore (``LocalCluster``) and one API
server process (HTTPS, a CA from ``cluster.pki``, bearer tokens) on free
loopback ports; ``conn_from_state`` reads the same connection details from
a ``raykube up`` state dir instead.  ``prepare`` creates the namespaces and
the objects the read cells use.

Concurrency: synchronous process management from the main thread (the
servers are child processes, stopped by PID); ``prepare`` and ``list_rv``
are coroutines run on a loop of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Any

from apiserver_bench_load import OBJECTS_FOR_READS, VALUE, client_for, cm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Stack:
    """raftstore (3 processes) + one API server process, all on free loopback ports."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="apibench-")
        self.cluster: Any = None
        self.api: subprocess.Popen[bytes] | None = None
        self.conn: dict[str, Any] = {}

    def start(self) -> None:
        from cluster.apiserver.auth import generate_tokens as _generate_tokens
        from cluster.launcher import token_for
        from cluster.pki import ensure_pki
        from raftstore.localcluster import LocalCluster

        self.cluster = LocalCluster.create(os.path.join(self.dir, "rs"))
        self.cluster.start()
        self.cluster.wait_serving(30)
        pki = ensure_pki(os.path.join(self.dir, "pki"))
        tokens = _generate_tokens([])
        tokens_file = os.path.join(self.dir, "tokens.json")
        with open(tokens_file, "w") as f:
            json.dump(tokens, f)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(os.path.join(self.dir, "apiserver.log"), "ab")  # noqa: SIM115 -- handed to the child, closed below
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cluster.apiserver",
                "--raftstore-endpoints",
                ",".join(self.cluster.endpoints),
                "--port",
                str(port),
                "--tls-cert",
                pki.server_cert,
                "--tls-key",
                pki.server_key,
                "--tokens-file",
                tokens_file,
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        self.conn = {
            "url": f"https://127.0.0.1:{port}",
            "token": token_for(tokens, "admin"),
            "ca": pki.ca_pem().decode(),
        }

    def server_pids(self) -> list[int]:
        pids = [self.api.pid] if self.api else []
        return pids + [p for p in (self.cluster.pid(m.name) for m in self.cluster.config.members) if p]

    def stop(self) -> None:
        if self.api is not None and self.api.poll() is None:
            self.api.terminate()
            try:
                self.api.wait(10)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait(5)
        if self.cluster is not None:
            self.cluster.kill_all()
        shutil.rmtree(self.dir, ignore_errors=True)


def conn_from_state(state_dir: str) -> tuple[dict[str, Any], list[int]]:
    from cluster import launcher

    p = launcher.Paths(os.path.abspath(os.path.expanduser(state_dir)))
    st = launcher.load_state(p)
    with open(os.path.join(p.pki, "ca.crt")) as f:
        ca = f.read()
    conn = {"url": st["api"]["url"], "token": launcher.token_for(launcher.read_tokens(p), "admin"), "ca": ca}
    s = launcher.status(p.root)
    pids = [int(c["actor_pid"]) for c in s["components"] if c["name"].startswith("apiserver") and c.get("actor_pid")]
    pids += [int(m["pid"]) for m in s["raftstore"] if m.get("pid")]
    return conn, pids


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def prepare(conn: dict[str, Any]) -> None:
    from cluster.client import CONFIGMAPS, NAMESPACES, ApiError

    c = client_for(conn)
    try:
        await c.wait_ready(30)
        for ns in ("bench-create", "bench-upd", "bench-read", "bench-paced", "bench-watch"):
            try:
                await c.create(NAMESPACES, {"metadata": {"name": ns}})
            except ApiError as exc:
                if not exc.already_exists:
                    raise
        sem = asyncio.Semaphore(16)

        async def mk(i: int) -> None:
            async with sem:
                try:
                    await c.create(CONFIGMAPS, cm(f"r-{i}", v=VALUE), "bench-read")
                except ApiError as exc:
                    if not exc.already_exists:
                        raise

        await asyncio.gather(*(mk(i) for i in range(OBJECTS_FOR_READS)))
    finally:
        await c.close()


async def list_rv(conn: dict[str, Any], ns: str) -> str:
    from cluster.client import CONFIGMAPS

    c = client_for(conn)
    try:
        return str((await c.list(CONFIGMAPS, ns, limit=1))["metadata"]["resourceVersion"])
    finally:
        await c.close()
