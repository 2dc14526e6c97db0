"""Fixtures for the kubelet tests: the API server of ``apiserver_fixtures`` plus kubelets as plain processes.

``kube`` (module-scoped) is a ``KubeEnv``: ``env`` (the API server ``Env``:
``request``, ``kubectl``, ``client``), ``start_kubelet(name, ...)`` (a real
``python -m cluster.kubelet`` process; returns a ``KubeletProc``), and
helpers to create pods, wait for conditions, and read a kubelet's
``/runtime`` (container PIDs). Node tokens for any node name are added to the
API server's tokens file (it re-reads it within a second).

Node indexes are random and high, so the node IPs and pod CIDRs of this
module don't collide with another raykube cluster running on the machine.

Cleanup (finalizer, pass or fail): every kubelet is stopped (SIGTERM, then
SIGKILL by PID); every container process group a kubelet reported is
SIGKILLed by its PGID; then the API server and raftstore are killed by PID.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from apiserver_fixtures import ROOT, Env, kill_pid, start_env, stop_env


@dataclass
class KubeletProc:
    name: str
    proc: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path
    info: dict[str, Any]
    index: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def node_ip(self) -> str:
        return str(self.info["nodeIP"])

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def runtime(self, timeout: float = 5.0) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.node_ip}:{self.port}/runtime", timeout=timeout) as r:
            return json.loads(r.read())

    def container(self, namespace: str, pod: str, container: str) -> dict[str, Any] | None:
        for p in self.runtime()["pods"]:
            if p["namespace"] == namespace and p["name"] == pod:
                for c in p["containers"]:
                    if c["name"] == container:
                        return c
        return None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-n:]
        except OSError:
            return ""


@dataclass
class KubeEnv:
    env: Env
    workdir: Path
    kubelets: dict[str, KubeletProc] = field(default_factory=dict)
    pgids: set[int] = field(default_factory=set)
    _tokens: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ tokens
    def node_token(self, name: str) -> str:
        if name in self.env.tokens:
            return self.env.tokens[name]
        if name not in self._tokens:
            tok = f"tok-node-{name}-{os.urandom(8).hex()}"
            path = self.env.workdir / "tokens.json"
            table = json.loads(path.read_text())
            table[tok] = {"user": f"system:node:{name}", "groups": ["system:nodes", "system:authenticated"]}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(table))
            os.replace(tmp, path)
            self._tokens[name] = tok
            self.env.tokens[name] = tok
            deadline = time.monotonic() + 10
            while self.env.request("GET", "/api/v1/nodes", user=name).status == 401:
                if time.monotonic() > deadline:
                    raise TimeoutError("API server did not pick up the new node token")
                time.sleep(0.2)
        return self._tokens.get(name) or self.env.tokens[name]

    # ---------------------------------------------------------- kubelets
    def start_kubelet(
        self, name: str, *, index: int | None = None, args: list[str] | None = None, timeout: float = 30.0
    ) -> KubeletProc:
        token = self.node_token(name)
        index = index if index is not None else random.randrange(2000, 19000)
        d = self.workdir / f"kubelet-{name}"
        d.mkdir(parents=True, exist_ok=True)
        tok = d / "token"
        tok.write_text(token)
        ready = d / "ready.json"
        ready.unlink(missing_ok=True)
        logp = d / "kubelet.log"
        log = open(logp, "ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cluster.kubelet",
                "--name",
                name,
                "--api",
                self.env.url,
                "--token-file",
                str(tok),
                "--ca",
                self.env.ca,
                "--index",
                str(index),
                "--state-dir",
                str(d / "state"),
                "--profile",
                "demo",
                "--ready-file",
                str(ready),
                *(args or []),
            ],
            cwd=str(ROOT),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                kill_pid(proc.pid)
                raise RuntimeError(f"kubelet {name} did not start:\n{logp.read_text()[-3000:]}")
            time.sleep(0.05)
        kp = KubeletProc(name, proc, d / "state", logp, json.loads(ready.read_text()), index)
        self.kubelets[name] = kp
        return kp

    def remember_pgids(self) -> None:
        for kp in self.kubelets.values():
            if kp.proc.poll() is None:
                try:
                    for p in kp.runtime(timeout=2)["processes"]:
                        if p.get("pgid") and int(p["pgid"]) > 1:
                            self.pgids.add(int(p["pgid"]))
                except OSError:
                    pass

    def stop_kubelet(self, name: str) -> None:
        kp = self.kubelets.pop(name, None)
        if kp is not None:
            kill_pid(kp.pid, timeout=10)

    def close(self) -> None:
        self.remember_pgids()
        for name in list(self.kubelets):
            self.stop_kubelet(name)
        for pgid in self.pgids:
            if pgid <= 1:
                continue
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass

    # --------------------------------------------------------------- pods
    def create_pod(self, manifest: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        r = self.env.request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)
        assert r.status == 201, r.body
        return r.json

    def get_pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        r = self.env.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if r.status == 404:
            return None
        assert r.status == 200, r.body
        return r.json

    def delete_pod(self, name: str, namespace: str = "default", grace: int | None = None) -> int:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        return self.env.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body).status

    def wait_pod(
        self,
        name: str,
        pred: Callable[[dict[str, Any]], bool],
        timeout: float = 20.0,
        namespace: str = "default",
        what: str = "",
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        pod = None
        while time.monotonic() < deadline:
            pod = self.get_pod(name, namespace)
            if pod is not None and pred(pod):
                return pod
            time.sleep(0.1)
        logs = "\n".join(f"--- {k}:\n{kp.log_tail(2000)}" for k, kp in self.kubelets.items())
        raise AssertionError(
            f"pod {name}: timed out waiting for {what or pred}; last: "
            f"{json.dumps((pod or {}).get('status'), indent=1)}\n{logs}"
        )

    def wait_gone(self, name: str, timeout: float = 20.0, namespace: str = "default") -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.get_pod(name, namespace) is None:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"pod {name} still exists after {timeout} s")


def pod(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": containers, **spec},
    }


def cstatus(p: dict[str, Any], container: str | None = None) -> dict[str, Any]:
    for cs in (p.get("status") or {}).get("containerStatuses") or []:
        if container is None or cs["name"] == container:
            return cs
    return {}


def condition(p: dict[str, Any], ctype: str) -> str | None:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return str(c["status"])
    return None


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if rest[0] != "Z" and int(rest[2]) == pgid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    wd = tmp_path_factory.mktemp("kubelet")
    env, _ = start_env(wd)
    ke = KubeEnv(env, wd)
    try:
        yield ke
    finally:
        try:
            ke.close()
        finally:
            stop_env(env)


@pytest.fixture(scope="module")
def nodes(kube: KubeEnv) -> Iterator[tuple[KubeletProc, KubeletProc]]:
    n1 = kube.start_kubelet("n1", args=["--heartbeat", "1"])
    n2 = kube.start_kubelet("n2", args=["--cgroups", "off", "--heartbeat", "1", "--cpu", "3", "--memory", "6Gi"])
    yield n1, n2


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # not listening (yet)
        return 0, str(e)


def running_ready(p: dict[str, Any]) -> bool:
    return (p.get("status") or {}).get("phase") == "Running" and condition(p, "Ready") == "True"
