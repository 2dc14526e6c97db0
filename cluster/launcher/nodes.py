"""Nodes of a cluster made by ``raykube up``: the kubelets ``up`` starts, ``raykube node add`` / ``node kill``.

Everything the kubelet actors need (API URL, CA, tokens) is looked up in the
state dir; the actors themselves are ``kubelet_actors``' business.

- ``start_kubelets(p, st, node_names, timeout)``: one kubelet actor per node,
  spread over the Ray nodes, all started before any is waited for (``up``).
- ``add_cluster_node(state_dir=None, name=None, *, index=None, profile=None,
  ray_node_id=None, **kw) -> dict``: ``name`` defaults to ``node-<index>``,
  ``index`` to the lowest unused one among the registered Nodes. A node
  token is added to ``tokens.json`` if missing (the API server reloads it).
  Connects to Ray itself unless it is already initialised.
- ``kill_cluster_node(name, state_dir=None) -> dict``: ``kubelet_actors.kill_node``.

Ray and the client library are imported inside functions: Ray must see the
cluster's environment at import time and costs about a second; the client
library (aiohttp) costs ~0.3 s, which ``raykube up`` must not pay before the
Ray head is launched.

Concurrency: blocking calls from the caller's thread; ``_used_indexes`` runs
a short asyncio loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, Iterator

from ..addresses import NODES_PER_SLOT, index_of_pod_cidr
from .credentials import ensure_tokens, read_ca, read_tokens, token_for
from .kubelet_actors import add_node, kill_node
from .ray_session import apply_env, ray_connection, ray_env
from .statedir import Paths, load_state, paths_for


def start_kubelets(p: Paths, st: dict[str, Any], node_names: list[str], timeout: float) -> list[str]:
    """One kubelet actor per node name (``node-<i>`` gets index i), pinned to
    the Ray nodes round-robin: on one machine all share the head, on a Ray
    cluster across machines each machine gets its share."""
    ca = read_ca(p).decode()
    tokens = read_tokens(p)
    with ray_connection(st, p) as ray:
        ray_nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        pending = []
        for i, name in enumerate(node_names):
            index = int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[-1].isdigit() else i
            pending.append(
                add_node(
                    name,
                    api_url=st["api"]["url"],
                    token=token_for(tokens, f"system:node:{name}"),
                    index=index,
                    state_dir=p.node_dir(name),
                    ca_data=ca,
                    profile=st.get("profile", "demo"),
                    ray_node_id=ray_nodes[i % len(ray_nodes)] if ray_nodes else None,
                    wait=False,
                    timeout=timeout,
                    address_slot=int(st.get("address_slot") or 0),
                )
            )
        # add_node hands back the info of a kubelet that is already running.
        refs = [x["ready"] for x in pending if "ready" in x]
        infos = [x for x in pending if "ready" not in x] + ray.get(refs, timeout=timeout + 5)
    st["kubelets"] = {i["node"]: {"pid": i.get("pid"), "node_ip": i.get("node_ip")} for i in infos}
    return [i["node"] for i in infos]


@contextlib.contextmanager
def _cluster_ray(state_dir: str | None) -> Iterator[Any]:
    p = paths_for(state_dir)
    st = load_state(p)
    # Ray reads its environment (loopback, token auth) at import time, so
    # apply the cluster's before the first import in this process.
    if "ray" not in sys.modules:
        apply_env(ray_env(st, p))
    import ray  # lazy: see the module doc

    if ray.is_initialized():
        yield ray
        return
    with ray_connection(st, p) as r:
        yield r


def _used_indexes(api_url: str, token: str, ca: bytes, slot: int = 0) -> tuple[set[int], dict[str, int]]:
    """Node indexes in use, and each existing node's index (from its podCIDR,
    which the API server never lets change)."""
    from ..client import NODES, Client  # lazy: see the module doc

    async def run() -> list[dict[str, Any]]:
        async with Client(api_url, token=token, ca_data=ca) as c:
            items, _ = await c.list_all(NODES)
            return items

    by_name: dict[str, int] = {}
    for n in asyncio.run(run()):
        index = index_of_pod_cidr((n.get("spec") or {}).get("podCIDR") or "", slot)
        by_name[(n.get("metadata") or {}).get("name", "")] = -1 if index is None else index
    return {i for i in by_name.values() if i >= 0}, by_name


def add_cluster_node(
    state_dir: str | None = None,
    name: str | None = None,
    *,
    index: int | None = None,
    profile: str | None = None,
    ray_node_id: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    p = paths_for(state_dir)
    st = load_state(p)
    ca = read_ca(p)
    api_url = st["api"]["url"]
    admin = token_for(read_tokens(p), "admin")
    slot = int(st.get("address_slot") or 0)
    used, names = _used_indexes(api_url, admin, ca, slot)
    if index is None and name is not None and names.get(name, -1) >= 0:
        index = names[name]  # the node comes back with the addresses it had
    elif (
        index is None
        and name is not None
        and name.rsplit("-", 1)[-1].isdigit()
        and int(name.rsplit("-", 1)[-1]) not in used
    ):
        index = int(name.rsplit("-", 1)[-1])
    if index is None:
        index = next(i for i in range(NODES_PER_SLOT) if i not in used)
    if name is None:
        name = f"node-{index}"
        k = index
        while name in names:
            k += 1
            name = f"node-{k}"
    had = {info.get("user") for info in read_tokens(p).values()}
    tokens = ensure_tokens(p, [name])
    token = token_for(tokens, f"system:node:{name}")
    if profile is None:
        profile = st.get("profile") or "demo"
    node_dir = p.node_dir(name)
    if f"system:node:{name}" not in had:
        time.sleep(1.1)  # the API server re-reads tokens.json at most once a second
    with _cluster_ray(state_dir) as _:
        return add_node(
            name,
            api_url=api_url,
            token=token,
            index=index,
            state_dir=node_dir,
            ca_data=ca.decode(),
            profile=profile,
            ray_node_id=ray_node_id,
            address_slot=slot,
            **kw,
        )


def kill_cluster_node(name: str, state_dir: str | None = None) -> dict[str, Any]:
    with _cluster_ray(state_dir) as _:
        return kill_node(name)
