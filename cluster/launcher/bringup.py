"""``raykube up``: bring a local cluster up, or resume it, overlapping the slow Ray head with the rest.

1. ``ray start --head`` on 127.0.0.1 (``ray_head``), or, with ``--address``, join an existing Ray.
2. Meanwhile: PKI, tokens, kubeconfigs, the raftstore layout (free ports).
3. The control plane as detached named actors (``control_plane``): ``raftstore-m0..m2``,
   ``apiserver-0``, ``scheduler-0``, ``controller-manager-0``.
4. Ready = ``/readyz`` answers and an authenticated list of namespaces with the admin kubeconfig's
   credentials succeeds.
5. One kubelet actor per node (``nodes.start_kubelets``). The time from the command's start (process
   creation) to this point is ``ready_seconds``.

Idempotent: a running cluster is only checked; a stopped one comes back with the same CA, tokens,
raftstore data and address slot.

Concurrency: runs on the caller's thread, plus one daemon thread that imports Ray while the head
starts. Nothing heavy is imported before the head is launched: the PKI (cryptography) and the client
library are imported inside the steps that need them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from typing import Any

from ..profiles import get_profile
from .control_plane import create_actors
from .credentials import client_for, ensure_tokens, write_kubeconfigs
from .errors import LauncherError
from .members import ensure_raftstore_layout, member_pids
from .nodes import start_kubelets
from .ports import port_bindable
from .processes import process_start_time, session_pids, terminate_pids
from .progress import Progress
from .ray_head import head_alive, start_ray_head, wait_ray_head
from .ray_session import NAMESPACE, apply_env, preimport_ray, ray_connection, ray_env, remember_join_auth
from .statedir import STATE_VERSION, Paths, claim_address_slot, load_state, paths_for, save_state

DEFAULT_API_PORT = 6443


def up(
    state_dir: str | None = None,
    *,
    nodes: int | None = None,
    address: str | None = None,
    port: int = DEFAULT_API_PORT,
    console: Any = None,
    t0: float | None = None,
    timeout: float = 90.0,
    profile: str | None = None,
) -> dict[str, Any]:
    """Bring the cluster up (idempotent); returns a summary with ``ready_seconds``."""
    t0 = t0 if t0 is not None else process_start_time()
    p = paths_for(state_dir)
    os.makedirs(p.root, mode=0o700, exist_ok=True)
    prog = Progress(console, t0)
    st = load_state(p)
    try:
        if st.get("status") == "running" and head_alive(st):
            prog.step("checking the running cluster")
            if _api_ready(p, st, 3.0):
                prog.close()
                return {
                    "already_running": True,
                    "state_dir": p.root,
                    "kubeconfig": p.kubeconfig,
                    "url": st["api"]["url"],
                    "ready_seconds": time.time() - t0,
                }
        elif st.get("ray", {}).get("owned") and st.get("ray", {}).get("session_id"):
            leftovers = session_pids(int(st["ray"]["session_id"]))
            if leftovers:  # a half-dead head of an earlier run: clear it out
                terminate_pids(leftovers)
        node_names = _plan(p, st, nodes, port, profile)

        # 1. Ray: start the head (slowest step) and do the rest meanwhile.
        head = _start_or_join_ray(p, st, address, prog)

        # 2. PKI, tokens, kubeconfigs, raftstore layout.
        _prepare_files(p, st, node_names, prog)
        save_state(p, st)

        if head is not None:
            wait_ray_head(head, p, st)
            save_state(p, st)
            prog.done(
                f"Ray head at {st['ray']['address']} (session {st['ray']['session_id']}, "
                f"{len(st['ray']['pids'])} processes)"
            )

        # 3. Actors.
        _start_control_plane(p, st, timeout, prog)

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
    return {
        "already_running": False,
        "state_dir": p.root,
        "kubeconfig": p.kubeconfig,
        "kubeconfig_viewer": p.kubeconfig_viewer,
        "url": st["api"]["url"],
        "ready_seconds": ready_seconds,
        "ray_address": st["ray"]["address"],
    }


def _plan(p: Paths, st: dict[str, Any], nodes: int | None, port: int, profile: str | None) -> list[str]:
    """Record in ``st`` what this run brings up (nodes, API port, timing profile, address slot); return
    the node names. Raises ``LauncherError`` if the API port or every address slot is taken."""
    if nodes is None:  # as many as the cluster had, or 3 for a new one
        nodes = len(st.get("nodes") or []) or 3
    node_names = st.get("nodes") or [f"node-{i + 1}" for i in range(nodes)]
    if len(node_names) < nodes:
        node_names += [f"node-{i + 1}" for i in range(len(node_names), nodes)]
    api_port = int((st.get("api") or {}).get("port") or port) if port == DEFAULT_API_PORT else port
    st["profile"] = get_profile(profile or st.get("profile") or "demo").name
    st.update(
        {
            "version": STATE_VERSION,
            "state_dir": p.root,
            "nodes": node_names,
            "api": {"host": "127.0.0.1", "port": api_port, "url": f"https://127.0.0.1:{api_port}"},
            "status": "starting",
        }
    )
    if not head_alive(st) and not port_bindable("127.0.0.1", api_port):
        raise LauncherError(f"127.0.0.1:{api_port} is in use (another cluster?); use --port or raykube down")
    st["address_slot"] = claim_address_slot(p, st)
    return node_names


def _start_or_join_ray(
    p: Paths, st: dict[str, Any], address: str | None, prog: Progress
) -> subprocess.Popen[bytes] | None:
    """Join ``address``, reuse a live head, or launch one (returned: ``up`` waits for it later)."""
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
    apply_env(ray_env(st, p))  # Ray reads some of these at import time
    threading.Thread(target=preimport_ray, daemon=True).start()
    return head


def _prepare_files(p: Paths, st: dict[str, Any], node_names: list[str], prog: Progress) -> None:
    """PKI, tokens and kubeconfigs, and the raftstore layout, whose ports must be free."""
    from ..pki import ensure_pki  # lazy: cryptography (~60 ms) only once the Ray head is launched

    fresh_ca = not os.path.exists(p.ca_cert)
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
    prog.done(f"{'made a new CA' if fresh_ca else 'reused the CA'}, tokens for {len(tokens)} identities, kubeconfigs")


def _start_control_plane(p: Paths, st: dict[str, Any], timeout: float, prog: Progress) -> None:
    """Create the control-plane actors and wait until each is ready; record their PIDs in ``st``."""
    prog.step("starting raftstore members, the API server, scheduler and controller manager as Ray actors")
    with ray_connection(st, p) as ray:
        handles = create_actors(p, st)
        members = {n: h for n, h in handles.items() if n.startswith("raftstore-")}
        infos = ray.get([h.ready.remote(timeout) for h in members.values()], timeout=timeout)
        foreign = [i for i in infos if not str(i.get("data_dir", "")).startswith(p.raftstore + os.sep)]
        if foreign:  # get_if_exists found another cluster's actors: one raykube cluster per Ray namespace
            raise LauncherError(
                f"Ray at {st['ray']['address']} already runs a raykube cluster (namespace "
                f"{NAMESPACE!r}, data in {foreign[0].get('data_dir')}); use its state dir"
            )
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


def _api_ready(p: Paths, st: dict[str, Any], timeout: float) -> bool:
    async def check() -> bool:
        from ..client import NAMESPACES  # lazy: the client library (~0.3 s) after the head is launched

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
