"""Node operations for the CLI: ``raykube node add`` / ``raykube node kill NAME``.

Kubelets run as detached named Ray actors ``kubelet-<node>`` in namespace
``raykube`` (``cluster.actors.kubelet.KubeletActor``), one per node, pinned
to a Ray node (``ray_node_id``: ``NodeAffinitySchedulingStrategy``, hard) or
to a custom resource (``resources={"<name>": 0.001}``). Several nodes can
share one Ray node; each has its own name, InternalIP and podCIDR
(``cluster.addresses.node_addresses(index, address_slot)``) and state dir.

Low level (the caller has ``ray.init``-ed, namespace ``raykube``):

- ``add_node(name, *, api_url, token, index, state_dir, ca_file=None,
  ca_data=None, profile="demo", ray_node_id=None, resources=None, cpu=None,
  memory=None, max_pods=110, labels=None, cgroups="auto", max_restarts=-1,
  wait=True, timeout=60.0, **extra) -> dict``: start (or find) the kubelet
  actor and wait until its Node is registered; returns the actor's
  ``info()`` (node, pid, node_ip, port, pod_cidr, limits, ...). With
  ``wait=False`` it returns at once with ``{"node", "actor", "handle",
  "ready"}`` (``ready`` is an ObjectRef of ``info()``: start many nodes, then
  ``ray.get`` them together). ``extra``: more ``KubeletConfig`` fields
  (``heartbeat_seconds``, ``backoff_base``, ``kubelet_port``, ...).
- ``kill_node(name, timeout=30.0) -> dict``: power the node off: the actor
  SIGKILLs every container process group of the node and then itself, at
  once; the actor is then removed without restart. The Node object stays
  (the node-lifecycle controller marks it NotReady when its Lease expires
  and evicts its pods). Returns ``{"node", "pid", "killed_at",
  "pids_left"}`` (``pids_left``: container PIDs still alive, expected []).
- ``stop_node(name, grace=1.0)``: an orderly stop of the kubelet and its
  containers, and the actor is removed.
- ``node_actor_names() -> list[str]``; ``actor_name(node) -> "kubelet-<node>"``.

For a cluster made by ``raykube up`` (the launcher's state dir), the same
with everything looked up (API URL, CA, tokens - a node token is added to
``tokens.json`` if missing; the API server reloads it):

- ``add_cluster_node(state_dir=None, name=None, *, index=None, profile=None,
  ray_node_id=None, **kw) -> dict``: ``name`` defaults to ``node-<index>``,
  ``index`` to the lowest unused one among the registered Nodes. Connects
  to Ray itself unless it is already initialised.
- ``kill_cluster_node(name, state_dir=None) -> dict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any, Iterator

from .addresses import NODES_PER_SLOT

NAMESPACE = "raykube"
ACTOR_PREFIX = "kubelet-"


def actor_name(node: str) -> str:
    return ACTOR_PREFIX + node


def _ray() -> Any:
    import ray

    if not ray.is_initialized():
        raise RuntimeError("ray is not initialised: call ray.init(address=..., namespace='raykube') first "
                           "(or use add_cluster_node / kill_cluster_node)")
    return ray


def kubelet_config(name: str, *, api_url: str, token: str, index: int, state_dir: str, ca_file: str | None = None,
                   ca_data: str | None = None, profile: str = "demo", cpu: str | None = None,
                   memory: str | None = None, max_pods: int = 110, labels: dict[str, str] | None = None,
                   cgroups: str = "auto", **extra: Any) -> dict[str, Any]:
    """The ``KubeletConfig`` fields (a plain dict, as the actor takes it)."""
    cfg = {"name": name, "api_url": api_url, "token": token, "index": index, "state_dir": state_dir,
           "ca_file": ca_file, "ca_data": ca_data, "profile": profile, "cpu": cpu, "memory": memory,
           "max_pods": max_pods, "labels": dict(labels or {}), "cgroups": cgroups}
    cfg.update(extra)
    return cfg


def add_node(name: str, *, api_url: str, token: str, index: int, state_dir: str, ca_file: str | None = None,
             ca_data: str | None = None, profile: str = "demo", ray_node_id: str | None = None,
             resources: dict[str, float] | None = None, cpu: str | None = None, memory: str | None = None,
             max_pods: int = 110, labels: dict[str, str] | None = None, cgroups: str = "auto",
             max_restarts: int = -1, wait: bool = True, timeout: float = 60.0, **extra: Any) -> dict[str, Any]:
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .actors.kubelet import POWERED_OFF, KubeletActor

    os.makedirs(state_dir, exist_ok=True)
    if os.path.exists(os.path.join(state_dir, POWERED_OFF)):
        # A powered-off node may still have an inert actor that Ray restarted
        # before kill_node removed it; get_if_exists would hand that back.
        _remove_actor(ray, actor_name(name))
    else:
        # An actor of that name that cannot become ready (a failed earlier
        # add) would also be handed back: replace it, keep a healthy one.
        try:
            existing = ray.get_actor(actor_name(name), namespace=NAMESPACE)
        except ValueError:
            existing = None
        if existing is not None:
            try:
                return ray.get(existing.ready.remote(2.0), timeout=5.0)
            except Exception:  # noqa: BLE001 - any failure means: not a usable kubelet
                _remove_actor(ray, actor_name(name))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(state_dir, POWERED_OFF))
    cfg = kubelet_config(name, api_url=api_url, token=token, index=index, state_dir=state_dir, ca_file=ca_file,
                         ca_data=ca_data, profile=profile, cpu=cpu, memory=memory, max_pods=max_pods,
                         labels=labels, cgroups=cgroups, **extra)
    opts: dict[str, Any] = dict(name=actor_name(name), namespace=NAMESPACE, lifetime="detached",
                                get_if_exists=True, max_restarts=max_restarts, max_task_retries=0,
                                max_concurrency=4, num_cpus=0)
    if ray_node_id is None and not resources:
        ray_node_id = ray.get_runtime_context().get_node_id()
    if ray_node_id is not None:
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=ray_node_id, soft=False)
        cfg["ray_node_id"] = ray_node_id
    if resources:
        opts["resources"] = dict(resources)
    handle = ray.remote(KubeletActor).options(**opts).remote(cfg, timeout)
    if not wait:
        return {"node": name, "actor": actor_name(name), "handle": handle, "ready": handle.ready.remote(timeout)}
    return ray.get(handle.ready.remote(timeout), timeout=timeout + 5)


def _remove_actor(ray: Any, name: str, timeout: float = 15.0) -> None:
    """Kill the named actor for good and wait until its name is free."""
    try:
        handle = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)


def _handle(name: str) -> Any:
    ray = _ray()
    return ray.get_actor(actor_name(name), namespace=NAMESPACE)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_node(name: str, timeout: float = 30.0) -> dict[str, Any]:
    ray = _ray()
    handle = _handle(name)
    pid: int | None = None
    pids: list[int] = []
    with contextlib.suppress(Exception):
        info = ray.get(handle.info.remote(), timeout=10)
        pid = info.get("pid")
        pids = ray.get(handle.pids.remote(), timeout=10)
    t = time.time()
    try:
        ray.get(handle.kill_node.remote(), timeout=timeout)
    except Exception:  # noqa: BLE001 - expected: the actor died mid-call (RayActorError / ActorDiedError)
        pass
    with contextlib.suppress(Exception):
        ray.kill(handle, no_restart=True)
    # Processes on this machine: wait until they are gone (on another machine we cannot look).
    deadline = time.monotonic() + 5
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if _alive(p)]
    return {"node": name, "pid": pid, "killed_at": t, "pids_left": left}


def stop_node(name: str, grace: float = 1.0, timeout: float = 30.0) -> bool:
    ray = _ray()
    handle = _handle(name)
    ok = False
    with contextlib.suppress(Exception):
        ok = bool(ray.get(handle.shutdown.remote(grace), timeout=timeout))
    with contextlib.suppress(Exception):
        ray.kill(handle, no_restart=True)
    return ok


def node_actor_names() -> list[str]:
    ray = _ray()
    names = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if isinstance(entry, dict):
            if entry.get("namespace") != NAMESPACE:
                continue
            n = entry.get("name", "")
        else:
            n = entry
        if n.startswith(ACTOR_PREFIX):
            names.append(n[len(ACTOR_PREFIX):])
    return sorted(names)


# ------------------------------------------------------- launcher's clusters
@contextlib.contextmanager
def _cluster_ray(state_dir: str | None) -> Iterator[Any]:
    from . import launcher

    p = launcher.Paths(os.path.abspath(state_dir or launcher.default_state_dir()))
    st = launcher.load_state(p)
    # Ray reads its environment (loopback, token auth) at import time, so
    # apply the cluster's before the first import in this process.
    if "ray" not in sys.modules:
        launcher._apply_env(launcher.ray_env(st, p))
    import ray

    if ray.is_initialized():
        yield ray
        return
    with launcher.ray_connection(st, p) as r:
        yield r


def _used_indexes(api_url: str, token: str, ca: bytes, slot: int = 0) -> tuple[set[int], dict[str, int]]:
    """Node indexes in use, and each existing node's index (from its podCIDR,
    which the API server never lets change)."""
    from .addresses import index_of_pod_cidr
    from .client import NODES, Client

    async def run() -> list[dict[str, Any]]:
        async with Client(api_url, token=token, ca_data=ca) as c:
            items, _ = await c.list_all(NODES)
            return items

    by_name: dict[str, int] = {}
    for n in asyncio.run(run()):
        index = index_of_pod_cidr((n.get("spec") or {}).get("podCIDR") or "", slot)
        by_name[(n.get("metadata") or {}).get("name", "")] = -1 if index is None else index
    return {i for i in by_name.values() if i >= 0}, by_name


def add_cluster_node(state_dir: str | None = None, name: str | None = None, *, index: int | None = None,
                     profile: str | None = None, ray_node_id: str | None = None, **kw: Any) -> dict[str, Any]:
    from . import launcher

    p = launcher.Paths(os.path.abspath(state_dir or launcher.default_state_dir()))
    st = launcher.load_state(p)
    with open(os.path.join(p.pki, "ca.crt"), "rb") as f:
        ca = f.read()
    api_url = st["api"]["url"]
    admin = launcher.token_for(launcher.read_tokens(p), "admin")
    slot = int(st.get("address_slot") or 0)
    used, names = _used_indexes(api_url, admin, ca, slot)
    if index is None and name is not None and names.get(name, -1) >= 0:
        index = names[name]  # the node comes back with the addresses it had
    elif index is None and name is not None and name.rsplit("-", 1)[-1].isdigit() \
            and int(name.rsplit("-", 1)[-1]) not in used:
        index = int(name.rsplit("-", 1)[-1])
    if index is None:
        index = next(i for i in range(NODES_PER_SLOT) if i not in used)
    if name is None:
        name = f"node-{index}"
        k = index
        while name in names:
            k += 1
            name = f"node-{k}"
    had = {info.get("user") for info in launcher.read_tokens(p).values()}
    tokens = launcher.ensure_tokens(p, [name])
    token = launcher.token_for(tokens, f"system:node:{name}")
    if profile is None:
        profile = st.get("profile") or "demo"
    node_dir = os.path.join(p.root, "nodes", name)
    if f"system:node:{name}" not in had:
        time.sleep(1.1)  # the API server re-reads tokens.json at most once a second
    with _cluster_ray(state_dir) as _:
        return add_node(name, api_url=api_url, token=token, index=index, state_dir=node_dir,
                        ca_data=ca.decode(), profile=profile, ray_node_id=ray_node_id, address_slot=slot, **kw)


def kill_cluster_node(name: str, state_dir: str | None = None) -> dict[str, Any]:
    with _cluster_ray(state_dir) as _:
        return kill_node(name)
