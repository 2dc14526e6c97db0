"""Fixtures for the API server tests: a real raftstore cluster (three member
processes) and a real API server process on free loopback ports, over TLS with
a self-signed certificate made here with ``cryptography``.

Import the fixture explicitly: ``from apiserver_fixtures import api``. It is
module-scoped: each test module gets its own cluster and server, and every
process it started is killed by PID in the finalizer, whether the tests
passed or not.

``api`` (an ``Env``) offers: ``url``, ``ca``, ``tokens`` (admin, viewer,
scheduler, node ``n1``/``n2``), ``request()`` (raw HTTPS, JSON in and out),
``kubectl()`` (the real kubectl with a kubeconfig written here, a request
timeout, never interactive), ``kubectl_popen()``, and ``client()`` (the
official ``kubernetes`` Python client).
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from raftstore.client import RaftstoreClient
from raftstore.localcluster import LocalCluster

ROOT = Path(__file__).resolve().parent.parent
USERS = {
    "admin": ("admin", ["system:masters", "system:authenticated"]),
    "viewer": ("viewer", ["raykube:viewers", "system:authenticated"]),
    "scheduler": ("system:kube-scheduler", ["system:authenticated"]),
    "n1": ("system:node:n1", ["system:nodes", "system:authenticated"]),
    "n2": ("system:node:n2", ["system:nodes", "system:authenticated"]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls(directory: Path) -> tuple[str, str]:
    """A self-signed certificate (its own CA) for 127.0.0.1/localhost: (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "raykube-apiserver-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, k = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(crt), str(k)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Env:
    url: str
    port: int
    ca: str
    tokens: dict[str, str]
    workdir: Path
    cluster: LocalCluster
    server_pid: int
    kubeconfigs: dict[str, str] = field(default_factory=dict)

    # -- raw HTTPS ---------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def connection(self, timeout: float = 30.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = "admin",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 30.0,
    ) -> Response:
        h = dict(headers or {})
        if user is not None:
            h["Authorization"] = f"Bearer {self.tokens[user]}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h["Content-Type"] = content_type
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    # -- kubectl -----------------------------------------------------------
    def kubeconfig(self, user: str = "admin") -> str:
        if user not in self.kubeconfigs:
            path = self.workdir / f"kubeconfig-{user}"
            path.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [
                            {"name": "raykube", "cluster": {"server": self.url, "certificate-authority": self.ca}}
                        ],
                        "users": [{"name": user, "user": {"token": self.tokens[user]}}],
                        "contexts": [
                            {"name": "raykube", "context": {"cluster": "raykube", "user": user, "namespace": "default"}}
                        ],
                        "current-context": "raykube",
                    }
                )
            )
            self.kubeconfigs[user] = str(path)
        return self.kubeconfigs[user]

    def kubectl_cmd(self, *args: str, user: str = "admin", timeout: str = "20s") -> list[str]:
        return [
            "kubectl",
            f"--kubeconfig={self.kubeconfig(user)}",
            f"--request-timeout={timeout}",
            f"--cache-dir={self.workdir / 'kubecache'}",
            *args,
        ]

    def kubectl_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HOME"] = str(self.workdir)
        env.pop("KUBECONFIG", None)
        return env

    def kubectl(
        self, *args: str, user: str = "admin", input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            self.kubectl_cmd(*args, user=user),
            input=input,
            capture_output=True,
            text=True,
            env=self.kubectl_env(),
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def kubectl_popen(self, *args: str, user: str = "admin") -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.kubectl_cmd(*args, user=user, timeout="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.kubectl_env(),
            start_new_session=True,
        )

    # -- official Python client -------------------------------------------
    def client(self, user: str = "admin") -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = self.ca
        cfg.api_key = {"authorization": f"Bearer {self.tokens[user]}"}
        return client.ApiClient(cfg)

    def leader(self) -> str:
        """Name of the raftstore leader member."""

        async def find() -> str:
            async with RaftstoreClient(self.cluster.endpoints, timeout=15) as c:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    rows = await c.cluster_status()
                    leaders = {r.get("name") for r in rows if r.get("role") == "leader"}
                    if len(leaders) == 1:
                        return str(leaders.pop())
                    await asyncio.sleep(0.05)
            raise TimeoutError("no raftstore leader")

        return asyncio.run(find())


def kill_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, one process we started; reap it if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _wait_serving(cluster: LocalCluster, timeout: float) -> None:
    """Like ``LocalCluster.wait_serving``, but judges "exited" by the child process itself: the member
    rewrites its PID file in place (truncate, then write), so reading it at the wrong moment finds it
    empty and ``wait_serving`` reports a live member as exited."""
    deadline = time.monotonic() + timeout
    pending = {m.name: m.client for m in cluster.config.members}
    children = getattr(cluster, "_children", {})
    while pending:
        for name, addr in list(pending.items()):
            host, port = addr.rsplit(":", 1)
            try:
                with socket.create_connection((host, int(port)), timeout=0.2):
                    del pending[name]
            except OSError:
                child = children.get(name)
                if child is not None and child.poll() is not None:
                    raise RuntimeError(f"raftstore member {name} exited during start-up ({child.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"raftstore members not serving: {sorted(pending)}")
        time.sleep(0.05)


def start_env(workdir: Path, extra_args: list[str] | None = None) -> tuple[Env, subprocess.Popen[bytes]]:
    cluster = LocalCluster.create(str(workdir / "raftstore"))
    cluster.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        _wait_serving(cluster, 30)

        async def leader() -> None:
            async with RaftstoreClient(cluster.endpoints) as c:
                await c.wait_for_leader(20)

        asyncio.run(leader())
        crt, key = make_tls(workdir)
        tokens = {u: f"tok-{u}-{os.urandom(8).hex()}" for u in USERS}
        table = {tokens[u]: {"user": USERS[u][0], "groups": USERS[u][1]} for u in USERS}
        tokens_file = workdir / "tokens.json"
        tokens_file.write_text(json.dumps(table))
        port = free_port()
        log = open(workdir / "apiserver.log", "ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cluster.apiserver",
                "--raftstore-endpoints",
                ",".join(cluster.endpoints),
                "--port",
                str(port),
                "--tls-cert",
                crt,
                "--tls-key",
                key,
                "--tokens-file",
                str(tokens_file),
                *(extra_args or []),
            ],
            cwd=str(ROOT),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        env = Env(f"https://127.0.0.1:{port}", port, crt, tokens, workdir, cluster, proc.pid)
        deadline = time.monotonic() + 30
        while True:
            try:
                if env.request("GET", "/readyz", user=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("API server did not come up:\n" + (workdir / "apiserver.log").read_text()[-3000:])
            time.sleep(0.1)
        return env, proc
    except BaseException:
        if proc is not None:
            kill_pid(proc.pid)
        cluster.kill_all()
        raise


def stop_env(env: Env) -> None:
    kill_pid(env.server_pid)
    env.cluster.kill_all()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    env, _ = start_env(tmp_path_factory.mktemp("apiserver"))
    try:
        yield env
    finally:
        stop_env(env)
