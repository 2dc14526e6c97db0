"""Kubelet actors on Ray: start one for a node, power it off, stop it, list them.

Kubelets run as detached named Ray actors ``kubelet-<node>`` in namespace
``raykube`` (``cluster.actors.kubelet.KubeletActor``), one per node, pinned
to a Ray node (``ray_node_id``: ``NodeAffinitySchedulingStrategy``, hard) or
to a custom resource (``resources={"<name>": 0.001}``). Several nodes can
share one Ray node; each has its own name, InternalIP and podCIDR
(``cluster.addresses.node_addresses(index, address_slot)``) and state dir.

The caller has ``ray.init``-ed, namespace ``raykube`` (``nodes`` does it for
a cluster made by ``raykube up``):

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

Ray is imported inside the functions (through ``_ray``): they run only once
a connection is open, and importing Ray costs about a second.

Concurrency: blocking calls from the caller's thread; ``add_node(wait=False)``
lets a caller start many kubelets and wait for them together.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from ..actors.kubelet import POWERED_OFF, KubeletActor
from .ray_session import NAMESPACE

ACTOR_PREFIX = "kubelet-"


def actor_name(node: str) -> str:
    return ACTOR_PREFIX + node


def _ray() -> Any:
    import ray  # lazy: see the module doc

    if not ray.is_initialized():
        raise RuntimeError(
            "ray is not initialised: call ray.init(address=..., namespace='raykube') first "
            "(or use add_cluster_node / kill_cluster_node)"
        )
    return ray


def kubelet_config(
    name: str,
    *,
    api_url: str,
    token: str,
    index: int,
    state_dir: str,
    ca_file: str | None = None,
    ca_data: str | None = None,
    profile: str = "demo",
    cpu: str | None = None,
    memory: str | None = None,
    max_pods: int = 110,
    labels: dict[str, str] | None = None,
    cgroups: str = "auto",
    **extra: Any,
) -> dict[str, Any]:
    """The ``KubeletConfig`` fields (a plain dict, as the actor takes it)."""
    cfg = {
        "name": name,
        "api_url": api_url,
        "token": token,
        "index": index,
        "state_dir": state_dir,
        "ca_file": ca_file,
        "ca_data": ca_data,
        "profile": profile,
        "cpu": cpu,
        "memory": memory,
        "max_pods": max_pods,
        "labels": dict(labels or {}),
        "cgroups": cgroups,
    }
    cfg.update(extra)
    return cfg


def add_node(
    name: str,
    *,
    api_url: str,
    token: str,
    index: int,
    state_dir: str,
    ca_file: str | None = None,
    ca_data: str | None = None,
    profile: str = "demo",
    ray_node_id: str | None = None,
    resources: dict[str, float] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    max_pods: int = 110,
    labels: dict[str, str] | None = None,
    cgroups: str = "auto",
    max_restarts: int = -1,
    wait: bool = True,
    timeout: float = 60.0,
    **extra: Any,
) -> dict[str, Any]:
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # lazy: with Ray

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
    cfg = kubelet_config(
        name,
        api_url=api_url,
        token=token,
        index=index,
        state_dir=state_dir,
        ca_file=ca_file,
        ca_data=ca_data,
        profile=profile,
        cpu=cpu,
        memory=memory,
        max_pods=max_pods,
        labels=labels,
        cgroups=cgroups,
        **extra,
    )
    opts: dict[str, Any] = dict(
        name=actor_name(name),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=max_restarts,
        max_task_retries=0,
        max_concurrency=4,
        num_cpus=0,
    )
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
            names.append(n[len(ACTOR_PREFIX) :])
    return sorted(names)
