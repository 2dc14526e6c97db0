"""Driving a real ``raykube`` from tests: the CLI as a subprocess, a ``Cluster`` handle on its state
dir (kubeconfig, state, status, kubectl), ``ray.kill`` from a fresh process, and clean-up of every
process a cluster started, by PID.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from cluster import launcher

RAYKUBE = [sys.executable, "-m", "cluster.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    state_dir: str
    port: int
    up_output: str
    ready_seconds: float
    wall_seconds: float
    load_before: float = 0.0
    seen_pids: set[int] = field(default_factory=set)

    @property
    def paths(self) -> launcher.Paths:
        return launcher.Paths(self.state_dir)

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.state_dir, "kubeconfig")

    def state(self) -> dict[str, Any]:
        return launcher.load_state(self.paths)

    def raykube(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [*RAYKUBE, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=_env()
        )
        if check and p.returncode != 0:
            raise AssertionError(f"raykube {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def kubectl(
        self, *args: str, kubeconfig: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [launcher.kubectl_path(), f"--kubeconfig={kubeconfig or self.kubeconfig}", "--request-timeout=20s", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=_env())
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def status(self) -> dict[str, Any]:
        s = json.loads(self.raykube("status", "--state-dir", self.state_dir, "--json").stdout)
        for c in s["components"]:
            for k in ("actor_pid", "member_pid"):
                if c.get(k):
                    self.seen_pids.add(int(c[k]))
        return s

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.status()["components"] if c["name"] == name)


RAY_KILL = """
import sys
from cluster import launcher
p = launcher.Paths(sys.argv[1])
with launcher.ray_connection(launcher.load_state(p), p) as ray:
    ray.kill(ray.get_actor(sys.argv[2], namespace="raykube"), no_restart=False)
"""


def ray_kill(cluster: Cluster, actor: str) -> None:
    """``ray.kill(actor, no_restart=False)`` from a fresh process: Ray reads its
    auth settings at import time, and other test modules may already have
    imported ray in this pytest process for a local Ray of their own."""
    p = subprocess.run(
        [sys.executable, "-c", RAY_KILL, cluster.state_dir, actor],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    assert p.returncode == 0, p.stderr


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    env["HOME"] = os.environ.get("HOME", "/root")
    return env


def _kill_everything(c: Cluster) -> list[int]:
    """Last-resort clean-up by PID: the head's session, members, every actor PID we saw."""
    st = c.state()
    pids: set[int] = set()
    sid = (st.get("ray") or {}).get("session_id")
    if sid:
        pids |= set(launcher.session_pids(int(sid)))
    pids |= set(launcher.member_pids(c.paths).values())
    pids |= {p for p in c.seen_pids if launcher.pid_alive(p) and (launcher.proc_sid(p) == sid)}
    return launcher.terminate_pids(sorted(pids), timeout=3) if pids else []
