"""What the benchmarks that run on their own raykube cluster share.

- ``run_on_own_cluster``: brings up a cluster (``cluster.launcher.up``: Ray on
  loopback, raftstore, API server, scheduler, controller manager, kubelets;
  profile ``demo``) in a temporary state dir on a free port, runs the
  benchmark's ``measure`` step, writes its result as JSON (``--out``) and a
  PNG beside it, and stops the cluster in ``finally`` (``launcher.down``:
  only this state dir's Ray head and actors). ``--keep`` leaves it up; the
  state dir is removed after a pass and kept (for its logs) after a failure.
- ``Mirror``: a list+watch of one resource with every event stamped on
  receipt (own code, so the stamps are ours), resuming from the last
  resourceVersion and re-listing on 410 Gone.
- ``GCPauses``: the harness's own garbage-collector pauses, recorded, so a
  run can be judged (a pause stalls the watch that observes the cluster).
- ``pod_cidr_listeners``: sockets of other processes listening inside this
  cluster's pod address ranges before its pods run (there should be none:
  each cluster has its own address slot, ``cluster.addresses``).

Concurrency: ``measure`` runs in the calling thread and usually runs an
asyncio loop of its own; everything else here is synchronous.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from rich.console import Console  # noqa: E402

from cluster import launcher  # noqa: E402
from cluster.client import ApiError, Client, Resource, Unavailable, WatchDisconnected  # noqa: E402


def now() -> float:
    return time.time()


def name_of(o: dict[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("name", ""))


def pod_ready(p: dict[str, Any]) -> bool:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_cidr_listeners(state_dir: str, port: int | None = None) -> list[dict[str, Any]]:
    """TCP listeners of other processes inside this cluster's pod address ranges (before any of its pods run).
    Each cluster has its own address slot, so this should be empty; a listener here (a process bound to
    a wildcard-free loopback address by hand, say) would make a pod on the same IP and port fail to bind."""
    import ipaddress

    import psutil

    from cluster.addresses import node_addresses

    st = launcher.load_state(launcher.Paths(state_dir))
    slot = int(st.get("address_slot") or 0)
    nets = []
    for i, name in enumerate(st.get("nodes") or []):
        tail = name.rsplit("-", 1)[-1]
        nets.append((name, ipaddress.ip_network(node_addresses(int(tail) if tail.isdigit() else i, slot)[1])))
    out: list[dict[str, Any]] = []
    try:
        conns = psutil.net_connections("tcp4")
    except Exception:  # noqa: BLE001 - not allowed to look: say nothing
        return out
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr or (port is not None and c.laddr.port != port):
            continue
        ip = ipaddress.ip_address(c.laddr.ip)
        for name, net in nets:
            if ip in net:
                owner = ""
                with contextlib.suppress(Exception):
                    owner = psutil.Process(c.pid).cwd() if c.pid else ""
                out.append({"addr": f"{c.laddr.ip}:{c.laddr.port}", "our_node_range": name, "pid": c.pid, "cwd": owner})
    return sorted(out, key=lambda x: x["addr"])


class GCPauses:
    """The harness's own garbage-collector pauses (``gc.callbacks``): a pause stalls our watch and our
    requests, so it would be counted as cluster latency. Recorded so a run can be judged, and kept short by
    ``gc.freeze()`` after the cluster is up (this process imported Ray: ~1M objects for every full
    collection to walk; one such pause measured 0.53 s in the middle of a burst of pod creations)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (epoch, generation, seconds)
        self._t0 = 0.0

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((time.time(), int(info.get("generation", -1)), time.perf_counter() - self._t0))

    def __enter__(self) -> "GCPauses":
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self._cb)

    def summary(self, t_from: float | None, t_to: float | None) -> dict[str, Any]:
        xs = [p for p in self.pauses if (t_from is None or p[0] >= t_from) and (t_to is None or p[0] <= t_to)]
        return {
            "count": len(xs),
            "total_s": round(sum(p[2] for p in xs), 4),
            "max_s": round(max((p[2] for p in xs), default=0.0), 4),
            "full_collections": sum(1 for p in xs if p[1] == 2),
        }


class Mirror:
    """A list+watch mirror of one resource: resumes from the last resourceVersion when the stream breaks,
    re-lists on 410 Gone. ``on_event(type, obj, t)`` is called for each event (``RELIST`` after a re-list)."""

    def __init__(
        self,
        client: Client,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        on_event: Callable[[str, dict[str, Any], float], None],
    ) -> None:
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.on_event = on_event
        self.items: dict[str, dict[str, Any]] = {}
        self.rv = ""
        self.synced = asyncio.Event()
        self.errors: list[str] = []
        self.events = 0

    async def _list(self) -> None:
        items, rv = await self.client.list_all(self.res, self.namespace, label_selector=self.label_selector)
        self.items = {name_of(o): o for o in items}
        self.rv = rv
        t = now()
        for o in items:
            self.on_event("RELIST", o, t)

    async def run(self) -> None:
        await self._list()
        self.synced.set()
        while True:
            try:
                async for ev in self.client.watch(
                    self.res,
                    self.namespace,
                    resource_version=self.rv,
                    label_selector=self.label_selector,
                    timeout_seconds=300,
                ):
                    t = now()
                    if ev.resource_version:
                        self.rv = ev.resource_version
                    if ev.type == "BOOKMARK":
                        continue
                    self.events += 1
                    n = name_of(ev.object)
                    if ev.type == "DELETED":
                        self.items.pop(n, None)
                    else:
                        self.items[n] = ev.object
                    self.on_event(ev.type, ev.object, t)
            except (WatchDisconnected, Unavailable) as exc:
                self.errors.append(f"{now():.3f} {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2)
            except ApiError as exc:
                self.errors.append(f"{now():.3f} {exc}")
                if exc.gone:
                    await self._list()
                else:
                    await asyncio.sleep(0.5)


def mark_end(meta: dict[str, Any]) -> None:
    """Call when the measurement ends: records the load average then beside the one at the start."""
    meta["loadavg_before_after"] = [meta.get("loadavg_before"), list(os.getloadavg())]


def add_cluster_args(p: argparse.ArgumentParser, default_out: str) -> None:
    """The options every own-cluster benchmark has."""
    p.add_argument("--port", type=int, default=0, help="API server port (default: a free one; never 6443)")
    p.add_argument("--state-dir", default=None, help="cluster state dir (default: a new temporary dir)")
    p.add_argument("--out", default=os.path.join("benchmarks", "out", default_out))
    p.add_argument("--keep", action="store_true", help="leave the cluster (and its pods) up afterwards")


def console_for(width: int) -> Console:
    return Console() if sys.stdout.isatty() else Console(width=width)


def run_on_own_cluster(
    args: argparse.Namespace,
    console: Console,
    *,
    title: str,
    prefix: str,
    nodes: int,
    measure: Callable[[str, dict[str, Any]], dict[str, Any]],
    plot: Callable[[dict[str, Any], str], None],
) -> int:
    """Up, ``measure(state_dir, meta) -> result`` (with ``result["pass"]``), JSON + PNG, down. Exit code."""
    state_dir = os.path.abspath(args.state_dir or tempfile.mkdtemp(prefix=prefix))
    port = args.port or launcher.free_ports(1)[0]
    result: dict[str, Any] | None = None
    brought_up = False
    failed: str | None = None
    try:
        console.print(f"[bold]{title}[/bold]: state dir {state_dir}, API port {port}")
        brought_up = True  # from here on, `down` in finally (up may fail half-way)
        up = launcher.up(state_dir, nodes=nodes, port=port, profile="demo", console=console, t0=time.time())
        console.print(f"cluster up in {up['ready_seconds']:.1f} s, kubeconfig {up['kubeconfig']}")
        gc.collect()
        gc.freeze()  # see GCPauses
        st = launcher.load_state(launcher.Paths(state_dir))
        meta: dict[str, Any] = {
            "loadavg_before": list(os.getloadavg()),  # shared 2-core machine: record how busy it was
            "state_dir": state_dir,
            "api": up["url"],
            "ray": up.get("ray_address"),
            "nodes": st.get("nodes"),
            "profile": st.get("profile"),
            "address_slot": st.get("address_slot"),
            "up_seconds": up["ready_seconds"],
            "preflight_pod_cidr_listeners": pod_cidr_listeners(state_dir),
        }
        result = measure(state_dir, meta)
        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2, default=str)
        png = os.path.splitext(out)[0] + ".png"
        plot(result, png)
        console.print(f"wrote {out} and {png}")
    except Exception as exc:  # noqa: BLE001
        failed = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]{prefix.strip('-')} failed: {failed}[/red]")
        console.print(traceback.format_exc(), markup=False, highlight=False)
    finally:
        passed = bool(result and result.get("pass"))
        if args.keep:
            console.print(
                f"[yellow]--keep: cluster left up[/yellow]; state dir {state_dir}; "
                f"kubectl --kubeconfig {state_dir}/kubeconfig get pods -o wide; "
                f"stop with: raykube down --state-dir {state_dir}"
            )
        elif brought_up:
            with console.status("stopping the cluster (raykube down)"):
                try:
                    launcher.down(state_dir)
                except Exception as exc:  # noqa: BLE001
                    console.print(f"[red]raykube down failed: {exc}[/red]")
            if passed and args.state_dir is None:
                shutil.rmtree(state_dir, ignore_errors=True)
                ray_tmp = launcher.Paths(state_dir).ray_temp
                if ray_tmp.startswith("/tmp/raykube-"):
                    shutil.rmtree(ray_tmp, ignore_errors=True)
            else:
                console.print(f"state dir kept for its logs: {state_dir} (logs/, nodes/<node>/, ray/session_*/logs)")
    return 0 if passed and not failed else 1
