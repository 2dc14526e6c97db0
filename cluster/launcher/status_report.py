"""``raykube status``: what runs, as a plain dict (the CLI renders it as tables or JSON).

Ray's nodes and this cluster's actors (state, restarts, PIDs, incarnation) through Ray; the raftstore
members' roles, terms and indexes straight from the members; the Kubernetes Nodes through the API
server. Each part that cannot be reached adds a line to ``errors`` instead of failing the whole report.

Concurrency: runs on the caller's thread; the member and API queries run short asyncio loops of their own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .control_plane import actor_table_row, named_actors
from .credentials import client_for
from .members import has_raftstore, raftstore_status
from .ray_head import head_alive
from .ray_session import ray_connection
from .statedir import Paths, load_state, paths_for


def status(state_dir: str | None = None) -> dict[str, Any]:
    p = paths_for(state_dir)
    st = load_state(p)
    out: dict[str, Any] = {
        "state_dir": p.root,
        "status": st.get("status", "absent"),
        "kubeconfig": p.kubeconfig,
        "url": (st.get("api") or {}).get("url"),
        "ray": {},
        "raftstore": [],
        "components": [],
        "nodes": [],
        "errors": [],
    }
    if not st:
        return out
    ray_st = st.get("ray") or {}
    out["ray"] = {
        "address": ray_st.get("address"),
        "owned": ray_st.get("owned"),
        "session_id": ray_st.get("session_id"),
        "alive": head_alive(st),
        "nodes": [],
    }
    if out["status"] == "running" and not out["ray"]["alive"]:
        out["status"] = "down (Ray is gone; run `raykube up`)"
    if out["ray"]["alive"]:
        try:
            _ray_status(st, p, out)
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(f"ray: {exc}")
    if has_raftstore(p):
        out["raftstore"] = raftstore_status(p)
    if out["status"] == "running":
        out["nodes"], err = _k8s_nodes(p)
        if err:
            out["errors"].append(err)
    return out


def _ray_status(st: dict[str, Any], p: Paths, out: dict[str, Any]) -> None:
    """Ray's nodes and this cluster's actors, into ``out["ray"]["nodes"]`` and ``out["components"]``."""
    with ray_connection(st, p) as ray:
        for n in ray.nodes():
            out["ray"]["nodes"].append(
                {
                    "node_id": n["NodeID"],
                    "address": n.get("NodeManagerAddress"),
                    "alive": n.get("Alive"),
                    "cpus": (n.get("Resources") or {}).get("CPU"),
                    "memory_gib": round((n.get("Resources") or {}).get("memory", 0) / 2**30, 1),
                }
            )
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
            out["components"].append(
                {
                    "name": name,
                    "component": info.get("component", name.split("-")[0]),
                    "state": row.get("state"),
                    "restarts": row.get("restarts"),
                    "actor_pid": row.get("pid") or info.get("actor_pid"),
                    "member_pid": info.get("member_pid"),
                    "incarnation": info.get("incarnation"),
                    "url": info.get("url"),
                    "error": info.get("error"),
                }
            )


def _k8s_nodes(p: Paths) -> tuple[list[dict[str, Any]], str | None]:
    async def run() -> list[dict[str, Any]]:
        from ..client import NODES  # lazy: the client library costs ~0.3 s; most commands never need it

        c = client_for(p.root, "admin", retry_deadline=3.0, timeout=3.0)
        try:
            items, _ = await c.list_all(NODES)
        finally:
            await c.close()
        rows = []
        for n in items:
            conds = {c["type"]: c.get("status") for c in (n.get("status") or {}).get("conditions") or []}
            rows.append(
                {
                    "name": n["metadata"]["name"],
                    "ready": conds.get("Ready", "Unknown"),
                    "version": ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
                }
            )
        return rows

    try:
        return asyncio.run(run()), None
    except Exception as exc:  # noqa: BLE001
        return [], f"api: {exc}"
