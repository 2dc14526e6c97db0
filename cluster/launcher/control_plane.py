"""The control plane as Ray actors: what runs (specs), creating the actors, and finding them again.

Detached named actors in namespace ``raykube``, ``max_restarts=-1``, pinned to this machine's Ray node
(raftstore and the API server talk over loopback): ``raftstore-m0..m2``, ``apiserver-0``,
``scheduler-0`` and ``controller-manager-0``. Kubelets are not here: see ``kubelet_actors``.

Ray and the actor classes are imported inside the functions that need them: they are only used with a
``ray_connection`` open, Ray costs about a second to import, and the scheduler's and controller
manager's actor modules pull in the client library (~0.3 s).

Concurrency: called from the launcher's thread with a Ray connection open; actor creation returns
handles at once, the caller waits on ``ready``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from raftstore.config import ClusterConfig

from ..actors.apiserver import APIServerActor
from ..actors.raftstore_member import RaftstoreMemberActor
from ..profiles import get_profile
from .credentials import read_tokens, token_for
from .members import MEMBERS
from .ray_session import NAMESPACE
from .statedir import Paths


def actor_specs(p: Paths, st: dict[str, Any]) -> list[dict[str, Any]]:
    """What runs as actors: name, class, args (used by up, status and down)."""
    rs = ClusterConfig.load(p.raftstore)
    specs: list[dict[str, Any]] = [
        {"name": f"raftstore-{m}", "component": "raftstore", "kind": "member", "args": (p.raftstore, m)}
        for m in MEMBERS
    ]
    api_cfg = {
        "raftstore_endpoints": rs.endpoints,
        "host": "127.0.0.1",
        "port": st["api"]["port"],
        "tls_cert": p.apiserver_cert,
        "tls_key": p.apiserver_key,
        "tokens_file": p.tokens,
        "default_toleration_seconds": get_profile(st.get("profile", "demo")).default_toleration_seconds,
    }
    specs.append({"name": "apiserver-0", "component": "apiserver", "kind": "apiserver", "args": (api_cfg, 0, p.root)})
    tokens = read_tokens(p)
    ca_file = p.ca_cert
    url = st["api"]["url"]
    specs.append(
        {
            "name": "scheduler-0",
            "component": "scheduler",
            "kind": "scheduler",
            "args": (url, token_for(tokens, "system:kube-scheduler")),
            "kwargs": {"ca_file": ca_file, "replica": 0, "state_dir": p.components},
        }
    )
    specs.append(
        {
            "name": "controller-manager-0",
            "component": "controller-manager",
            "kind": "controller-manager",
            "args": (url, token_for(tokens, "system:kube-controller-manager")),
            "kwargs": {
                "ca_file": ca_file,
                "replica": 0,
                "profile": st.get("profile", "demo"),
                "state_dir": p.components,
            },
        }
    )
    return specs


def _actor_class(kind: str) -> Any:
    import ray  # lazy: see the module doc

    if kind == "member":
        return ray.remote(RaftstoreMemberActor)
    if kind == "scheduler":
        from ..actors.scheduler import SchedulerActor  # lazy: see the module doc

        return ray.remote(SchedulerActor)
    if kind == "controller-manager":
        from ..actors.controller_manager import ControllerManagerActor  # lazy: see the module doc

        return ray.remote(ControllerManagerActor)
    return ray.remote(APIServerActor)


def create_actors(p: Paths, st: dict[str, Any]) -> dict[str, Any]:
    import ray  # lazy: see the module doc
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    handles = {}
    for spec in actor_specs(p, st):
        cls = _actor_class(spec["kind"])
        handles[spec["name"]] = cls.options(
            name=spec["name"],
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=4,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
        ).remote(*spec["args"], **spec.get("kwargs", {}))
    return handles


def named_actors() -> dict[str, Any]:
    import ray  # lazy: see the module doc

    out = {}
    for name in ray.util.list_named_actors():
        with contextlib.suppress(Exception):
            out[name] = ray.get_actor(name, namespace=NAMESPACE)
    return out


def actor_table_row(handle: Any) -> dict[str, Any]:
    import ray._private.state as rstate  # lazy: see the module doc

    try:
        info = rstate.actors(actor_id=handle._actor_id.hex())
    except Exception:  # noqa: BLE001
        return {}
    return {
        "state": info.get("State"),
        "restarts": info.get("NumRestarts"),
        "pid": info.get("Pid"),
        "node_id": (info.get("Address") or {}).get("NodeID"),
    }
