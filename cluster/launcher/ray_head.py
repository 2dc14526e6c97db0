"""The Ray head that ``up`` starts for a cluster: launch it, wait for it, tell whether it still runs.

``ray start --head`` on 127.0.0.1 in a new session (its session id names every process of the head,
which is how ``down`` finds them), with its own temp dir, free ports, token auth with a token file in
the state dir, no autoscaler monitor and no log monitor. Ray's workers get this checkout first on their
``PYTHONPATH``, so the actors run the same code as the launcher.

Concurrency: ``start_ray_head`` returns at once (the head takes ~6-7 s here); ``up`` does its other
work meanwhile and then calls ``wait_ray_head``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from typing import Any

from .errors import LauncherError
from .ports import free_ports, port_open
from .processes import session_pids, terminate_pids
from .ray_session import ray_env
from .statedir import Paths, write_private

# The checkout this code runs from (…/cluster/launcher/ray_head.py -> …).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT_NAMES = ("gcs", "dashboard", "client", "agent", "metrics", "runtime_env")


def _ray_start_cmd(p: Paths, ports: dict[str, int], num_cpus: int | None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={ports['gcs']}",
        f"--temp-dir={p.ray_temp}",
        "--include-dashboard=false",
        f"--dashboard-port={ports['dashboard']}",
        f"--ray-client-server-port={ports['client']}",
        f"--dashboard-agent-listen-port={ports['agent']}",
        f"--metrics-export-port={ports['metrics']}",
        f"--runtime-env-agent-port={ports['runtime_env']}",
        "--disable-usage-stats",
        "--no-monitor",
        "--include-log-monitor=false",
        f"--object-store-memory={256 * 1024 * 1024}",
    ]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    return cmd


def start_ray_head(p: Paths, st: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Launch ``ray start --head`` in a new session (its SID names every process of the head)."""
    os.makedirs(p.logs, exist_ok=True)
    if not os.path.exists(p.ray_token):
        write_private(p.ray_token, secrets.token_hex(32))
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    env = dict(os.environ)
    env.update(ray_env(st, p))
    env["PYTHONPATH"] = CHECKOUT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = open(p.ray_start_log, "ab")
    proc = subprocess.Popen(
        _ray_start_cmd(p, ports, None),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        close_fds=True,
        cwd=p.root,
    )
    log.close()
    st["ray"] = {
        "owned": True,
        "address": f"127.0.0.1:{ports['gcs']}",
        "session_id": proc.pid,
        "ports": ports,
        "temp_dir": p.ray_temp,
        "pids": [],
        "started_at": time.time(),
    }
    return proc


def wait_ray_head(proc: subprocess.Popen[bytes], p: Paths, st: dict[str, Any], timeout: float = 60.0) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        terminate_pids(session_pids(proc.pid))
        raise LauncherError(f"ray start did not finish in {timeout} s; see {p.logs}/ray-start.log") from None
    if rc != 0:
        terminate_pids(session_pids(proc.pid))
        with open(p.ray_start_log, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
        raise LauncherError(f"ray start failed (exit {rc}):\n{tail}")
    st["ray"]["pids"] = session_pids(proc.pid)


def head_alive(st: dict[str, Any]) -> bool:
    ray_st = st.get("ray") or {}
    if not ray_st.get("address"):
        return False
    host, port = ray_st["address"].rsplit(":", 1)
    if ray_st.get("owned"):
        sid = ray_st.get("session_id")
        if not sid or not session_pids(int(sid)):
            return False
    return port_open(host, int(port))
