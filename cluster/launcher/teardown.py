"""``raykube down``: stop a local cluster, keeping its data, PKI and tokens (``--purge`` removes them).

In order: the actors stop gracefully through Ray (API server first, so watches end cleanly, then the
raftstore members with SIGTERM) and are killed without restart; if ``up`` started the Ray head, exactly
that head is stopped: every process of its session (recorded at start), SIGTERM then SIGKILL; then
anything of this cluster that outlived it all (member, actor and container processes) is stopped by
PID. The address slot is given back. On a joined Ray only this state dir's actors are touched.

Concurrency: runs on the caller's thread; blocking, with bounded waits at every step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Any

import psutil

from .control_plane import actor_table_row, named_actors
from .members import member_pids
from .processes import pid_alive, proc_sid, session_pids, terminate_pids
from .progress import Progress
from .ray_head import head_alive
from .ray_session import ray_connection
from .statedir import Paths, load_state, paths_for, release_address_slot, save_state


def down(state_dir: str | None = None, *, purge: bool = False, console: Any = None) -> dict[str, Any]:
    p = paths_for(state_dir)
    st = load_state(p)
    t0 = time.time()
    prog = Progress(console, t0)
    result: dict[str, Any] = {"state_dir": p.root, "stopped_actors": [], "killed_pids": [], "leftover_pids": []}

    if not st:
        release_address_slot(p)  # an `up` that failed before it saved any state may hold one
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
                    console.print(
                        f"[red]could not stop the actors through Ray ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); stopping processes by PID[/red]"
                    )
            else:
                prog.done(f"stopped {len(result['stopped_actors'])} actors")

        if ray_st.get("owned"):
            prog.step("stopping the Ray head")
            stopped = _stop_ray_head(p, ray_st, result)
            prog.done(f"stopped the Ray head ({stopped} processes)")
        _stop_strays(p, known_pids, result)
    finally:
        prog.close()
    st["status"] = "stopped"
    st["down_at"] = time.time()
    save_state(p, st)
    release_address_slot(p)
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


def _stop_ray_head(p: Paths, ray_st: dict[str, Any], result: dict[str, Any]) -> int:
    """Stop every process of the head's session; return how many there were."""
    sid = int(ray_st.get("session_id") or 0)
    pids = set(ray_st.get("pids") or [])
    if sid:
        pids |= set(session_pids(sid))
    pids = {pid for pid in pids if pid_alive(pid) and (proc_sid(pid) == sid or _mentions(pid, p))}
    result["killed_pids"] = sorted(pids)
    # The actors already stopped cleanly; the head's own processes keep nothing we need and
    # raylet/GCS take 10+ s to honour SIGTERM, so they get a short grace period.
    result["leftover_pids"] = terminate_pids(sorted(pids), timeout=2.0)
    return len(pids)


def _stop_strays(p: Paths, known_pids: set[int], result: dict[str, Any]) -> None:
    """Members, actor and container processes that outlived everything (should be none: PDEATHSIG, and a
    container forked just before its kubelet died exits on the runtime's parent check). A safety net,
    reported as containers_outlived_kubelet: containers are recognised by their working directory
    under this state dir."""
    stray = set(member_pids(p).values()) | {pid for pid in known_pids if pid_alive(pid) and _mentions(pid, p)}
    survivors = container_pids(p)
    result["containers_outlived_kubelet"] = sorted(survivors)
    stray |= survivors
    if stray:
        result["leftover_pids"] += terminate_pids(sorted(stray))
        result["killed_pids"] += sorted(stray)


def container_pids(p: Paths) -> set[int]:
    """Live processes whose working directory lies under this cluster's node directories."""
    nodes_dir = p.nodes + os.sep
    out: set[int] = set()
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(nodes_dir) or cwd.replace(" (deleted)", "").startswith(nodes_dir):
            out.add(proc.pid)
    return out


def _mentions(pid: int, p: Paths) -> bool:
    """Does process ``pid`` belong to this cluster (by session or by paths on its command line)?"""
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return p.root in cmd or p.ray_temp in cmd
