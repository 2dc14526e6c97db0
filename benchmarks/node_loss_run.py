"""node_loss's measurement: one Deployment, a node powered off and back, again and again.

``NodeLossRun`` keeps a list+watch mirror of the Deployment's pods and of
the nodes (``cluster_harness.Mirror``), stamps every milestone of a kill
from the watch events as they arrive (NotReady, NoExecute taint, eviction,
first replacement, all replicas Ready on the survivors, node back Ready),
and drives the kills (``cluster.launcher.nodes.kill_cluster_node`` /
``add_cluster_node``).  The helpers above it read node and pod objects.

Concurrency: one asyncio loop; the two mirrors and a progress ticker are
tasks on it, and their callbacks fill in the kill being measured between
awaits.  Killing and re-adding a node are blocking calls run in a thread
(``asyncio.to_thread``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
from collections.abc import Callable
from typing import Any

from cluster_harness import Mirror, name_of, now, pod_cidr_listeners, pod_ready
from node_loss_report import fmt
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cluster.client import DEPLOYMENTS, EVENTS, NODES, PODS, Client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE = "default"
APP = "nodeloss-web"
NODE_TAINT_PREFIX = "node.kubernetes.io/"


def node_ready_status(n: dict[str, Any]) -> str:
    for c in (n.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status"))
    return "Unknown"


def node_taints(n: dict[str, Any]) -> list[str]:
    return [f"{t.get('key')}:{t.get('effect')}" for t in (n.get("spec") or {}).get("taints") or []]


def terminating(o: dict[str, Any]) -> bool:
    return bool((o.get("metadata") or {}).get("deletionTimestamp"))


def node_index(name: str) -> int | None:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def deployment_manifest(replicas: int, port: int = 8080) -> dict[str, Any]:
    """examples/web.yaml, renamed and scaled (and on another container port if asked)."""
    import yaml

    with open(os.path.join(ROOT, "examples", "web.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    dep = copy.deepcopy(next(d for d in docs if d.get("kind") == "Deployment"))
    dep["metadata"] = {"name": APP, "namespace": NAMESPACE, "labels": {"app": APP}}
    dep["spec"]["replicas"] = replicas
    dep["spec"]["selector"] = {"matchLabels": {"app": APP}}
    dep["spec"]["template"]["metadata"] = {"labels": {"app": APP}}
    if port != 8080:
        for c in dep["spec"]["template"]["spec"]["containers"]:
            c["ports"] = [{"containerPort": port}]
            c["env"] = [e for e in c.get("env") or [] if e.get("name") != "PORT"] + [
                {"name": "PORT", "value": str(port)}
            ]
            for probe in ("readinessProbe", "livenessProbe"):
                if (c.get(probe) or {}).get("httpGet"):
                    c[probe]["httpGet"]["port"] = port
    return dep


class NodeLossRun:
    def __init__(self, args: argparse.Namespace, state_dir: str, client: Client, console: Console) -> None:
        self.args = args
        self.state_dir = state_dir
        self.client = client
        self.console = console
        self.replicas = args.replicas
        self.t0 = now()
        self.dead: str | None = None  # the node currently powered off
        self.timeline: list[tuple[float, int, int]] = []  # (t, Ready per API, Ready on live nodes)
        self.marks: list[dict[str, Any]] = []
        self.kills: list[dict[str, Any]] = []
        self.kill_count: dict[str, int] = {}
        self.current: dict[str, Any] | None = None  # the kill being measured (filled by watch callbacks)
        self.pods = Mirror(client, PODS, namespace=NAMESPACE, label_selector=f"app={APP}", on_event=self._pod_event)
        self.nodes = Mirror(client, NODES, on_event=self._node_event)
        self.status = "starting"
        self.restarts: dict[str, int] = {}  # container restarts seen per pod (a healthy run has none)
        self.restart_log: list[dict[str, Any]] = []

    # ----------------------------------------------------------- views
    def ready_pods(self, exclude_node: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pods.items.values()
            if pod_ready(p)
            and not terminating(p)
            and (exclude_node is None or (p.get("spec") or {}).get("nodeName") != exclude_node)
        ]

    def per_node(self) -> dict[str, int]:
        out = {n: 0 for n in self.nodes.items}
        for p in self.pods.items.values():
            if terminating(p):
                continue
            nn = (p.get("spec") or {}).get("nodeName")
            if nn:
                out[nn] = out.get(nn, 0) + 1
        return out

    def settled(self) -> bool:
        if not self.nodes.items or not self.pods.synced.is_set():
            return False
        for n in self.nodes.items.values():
            if node_ready_status(n) != "True" or any(t.startswith(NODE_TAINT_PREFIX) for t in node_taints(n)):
                return False
        pods = list(self.pods.items.values())
        return len(pods) == self.replicas and all(pod_ready(p) and not terminating(p) for p in pods)

    def _sample(self, t: float) -> None:
        api = len(self.ready_pods())
        live = len(self.ready_pods(self.dead)) if self.dead else api
        if not self.timeline or self.timeline[-1][1:] != (api, live):
            self.timeline.append((t - self.t0, api, live))

    # ------------------------------------------------------ watch hooks
    def _pod_event(self, etype: str, pod: dict[str, Any], t: float) -> None:
        restarts = sum(
            int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []
        )
        if restarts > self.restarts.get(name_of(pod), 0):
            self.restarts[name_of(pod)] = restarts
            self.restart_log.append(
                {
                    "t": round(t - self.t0, 3),
                    "pod": name_of(pod),
                    "restarts": restarts,
                    "node": (pod.get("spec") or {}).get("nodeName"),
                    "pod_ip": (pod.get("status") or {}).get("podIP"),
                }
            )
        cur = self.current
        if cur is not None and cur.get("t_kill") is not None:
            name = name_of(pod)
            if etype == "ADDED" and name not in cur["victim_pods"] and cur.get("t_first_replacement") is None:
                cur["t_first_replacement"] = t
            if cur.get("t_evicted") is None and all(
                v not in self.pods.items or terminating(self.pods.items[v]) for v in cur["victim_pods"]
            ):
                cur["t_evicted"] = t
            if cur.get("t_recovered") is None and len(self.ready_pods(cur["victim"])) >= self.replicas:
                cur["t_recovered"] = t
                cur["ready_on_survivors_at_recovery"] = len(self.ready_pods(cur["victim"]))
        self._sample(t)

    def _node_event(self, etype: str, node: dict[str, Any], t: float) -> None:
        cur = self.current
        if cur is None or cur.get("t_kill") is None or name_of(node) != cur["victim"]:
            return
        status = node_ready_status(node)
        if cur.get("t_notready") is None and status != "True":
            cur["t_notready"] = t
            cur["notready_status"] = status
        if cur.get("t_tainted") is None and any(
            k.startswith(NODE_TAINT_PREFIX) and k.endswith(":NoExecute") for k in node_taints(node)
        ):
            cur["t_tainted"] = t
            cur["taints"] = node_taints(node)
        if (
            cur.get("t_added") is not None
            and cur.get("t_back_ready") is None
            and status == "True"
            and not any(k.startswith(NODE_TAINT_PREFIX) for k in node_taints(node))
        ):
            cur["t_back_ready"] = t

    # ------------------------------------------------------------ waits
    async def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> float:
        t0 = now()
        deadline = t0 + timeout
        while not cond():
            if now() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return now() - t0

    def describe(self) -> str:
        ready = len(self.ready_pods(self.dead))
        pn = self.per_node()
        nodes = " ".join(
            f"{n}:{pn.get(n, 0)}{'' if node_ready_status(o) == 'True' else '!'}"
            for n, o in sorted(self.nodes.items.items())
        )
        return f"{self.status} — ready {ready}/{self.replicas} on live nodes — pods per node {nodes}"

    # -------------------------------------------------------------- run
    async def run(self) -> None:
        args = self.args
        tasks = [asyncio.create_task(self.pods.run()), asyncio.create_task(self.nodes.run())]
        try:
            await asyncio.wait_for(asyncio.gather(self.pods.synced.wait(), self.nodes.synced.wait()), 60)
            progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} kills"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            with progress:
                bar = progress.add_task("applying the Deployment", total=args.kills)

                async def ticker() -> None:
                    while True:
                        progress.update(bar, description=self.describe())
                        await asyncio.sleep(0.2)

                tick = asyncio.create_task(ticker())
                try:
                    self.status = f"creating Deployment {APP} ({self.replicas} replicas)"
                    await self.client.create(
                        DEPLOYMENTS, deployment_manifest(self.replicas, args.container_port), NAMESPACE
                    )
                    t_apply = now()
                    self.status = "waiting for the Deployment to be Ready"
                    await self.wait_for(self.settled, args.settle_timeout, "initial Deployment Ready")
                    self.apply_s = now() - t_apply
                    self.initial_spread = self.per_node()
                    self.console.print(
                        f"[green]✓[/green] Deployment {APP}: {self.replicas} replicas Ready in "
                        f"{self.apply_s:.1f} s, per node {self.initial_spread}"
                    )
                    for k in range(args.kills):
                        await self.one_kill(k + 1)
                        progress.advance(bar)
                finally:
                    tick.cancel()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def pick_victim(self) -> str:
        pn = self.per_node()
        cands = [n for n, c in pn.items() if c > 0]
        if not cands:
            raise RuntimeError(f"no node runs a replica: {pn}")
        return min(cands, key=lambda n: (self.kill_count.get(n, 0), -pn[n], n))

    async def one_kill(self, k: int) -> None:
        from cluster.launcher import nodes as nodes_mod

        args = self.args
        self.status = f"kill {k}: settling"
        await asyncio.sleep(args.pause)
        await self.wait_for(self.settled, args.settle_timeout, f"kill {k}: settled before the kill")
        victim = self.pick_victim()
        victim_pods = sorted(
            name_of(p) for p in self.pods.items.values() if (p.get("spec") or {}).get("nodeName") == victim
        )
        cur: dict[str, Any] = {
            "kill": k,
            "victim": victim,
            "victim_pods": victim_pods,
            "replicas_on_victim": len(victim_pods),
            "spread_before": self.per_node(),
            "t_kill": None,
        }
        self.current = cur
        self.kills.append(cur)
        self.kill_count[victim] = self.kill_count.get(victim, 0) + 1
        self.status = f"kill {k}: powering off {victim} ({len(victim_pods)} replicas)"
        t_call = now()
        self.dead = victim
        cur["t_kill"] = t_call  # watch hooks measure from here; refined below with the kill's own stamp
        res = await asyncio.to_thread(nodes_mod.kill_cluster_node, victim, self.state_dir)
        cur["t_kill"] = float(res.get("killed_at") or t_call)
        cur["kill_call_s"] = now() - t_call
        cur["pids_left"] = res.get("pids_left")
        self._sample(cur["t_kill"])
        self.marks.append({"t": cur["t_kill"] - self.t0, "what": "kill", "node": victim})
        self.status = f"kill {k}: {victim} powered off, waiting for NotReady and replacements"
        try:
            await self.wait_for(
                lambda: cur.get("t_recovered") is not None and cur.get("t_notready") is not None,
                args.recover_timeout,
                f"kill {k}: replicas Ready on surviving nodes",
            )
        except TimeoutError as exc:
            cur["error"] = str(exc)
            cur["diagnostics"] = await self.diagnostics()
            self.console.print(f"[red]kill {k}: {exc}[/red]")
        for key in ("t_notready", "t_tainted", "t_evicted", "t_first_replacement", "t_recovered"):
            if cur.get(key) is not None:
                cur[key[2:] + "_s"] = cur[key] - cur["t_kill"]
                if key in ("t_notready", "t_recovered"):
                    self.marks.append({"t": cur[key] - self.t0, "what": key[2:], "node": victim})
        # Bring the node back (same name and index: the same machine powered on again).
        self.status = f"kill {k}: adding {victim} back"
        t_add = now()
        cur["t_added"] = t_add
        try:
            await asyncio.to_thread(nodes_mod.add_cluster_node, self.state_dir, victim, index=node_index(victim))
        except Exception as exc:
            cur["error"] = (cur.get("error", "") + f"; add back failed: {type(exc).__name__}: {exc}").lstrip("; ")
            cur["diagnostics"] = await self.diagnostics()
            raise
        cur["add_call_s"] = now() - t_add
        self.dead = None
        self._sample(now())
        self.status = f"kill {k}: waiting for {victim} Ready and the Deployment settled"
        with contextlib.suppress(TimeoutError):
            await self.wait_for(
                lambda: cur.get("t_back_ready") is not None, args.settle_timeout, f"kill {k}: {victim} Ready again"
            )
        if cur.get("t_back_ready") is None:  # node object may have been Ready without an event after re-add
            n = self.nodes.items.get(victim)
            if n and node_ready_status(n) == "True":
                cur["t_back_ready"] = now()
        try:
            await self.wait_for(self.settled, args.settle_timeout, f"kill {k}: Deployment settled after re-add")
            cur["settled_s"] = now() - t_add
        except TimeoutError as exc:
            cur["error"] = (cur.get("error", "") + f"; {exc}").lstrip("; ")
            cur["diagnostics"] = await self.diagnostics()
            raise
        if cur.get("t_back_ready") is not None:
            cur["node_back_ready_s"] = cur["t_back_ready"] - t_add
            self.marks.append({"t": cur["t_back_ready"] - self.t0, "what": "node back", "node": victim})
        cur["spread_after"] = self.per_node()
        self.current = None
        rec = cur.get("recovered_s")
        self.console.print(
            f"kill {k}: {victim} ({len(victim_pods)} replicas) -> NotReady {fmt(cur.get('notready_s'))} s, "
            f"all {self.replicas} Ready on survivors {fmt(rec)} s; back Ready {fmt(cur.get('node_back_ready_s'))} s "
            f"after add, settled {fmt(cur.get('settled_s'))} s; per node now {cur['spread_after']}"
        )

    async def diagnostics(self) -> dict[str, Any]:
        """What the API says right now (for a failed kill)."""
        out: dict[str, Any] = {
            "at": now(),
            "nodes": [],
            "pods": [],
            "events": [],
            "watch_errors": {"pods": self.pods.errors[-20:], "nodes": self.nodes.errors[-20:]},
        }
        try:
            nodes, _ = await self.client.list_all(NODES)
            out["nodes"] = [
                {
                    "name": name_of(n),
                    "ready": node_ready_status(n),
                    "taints": node_taints(n),
                    "conditions": (n.get("status") or {}).get("conditions"),
                }
                for n in nodes
            ]
            pods, _ = await self.client.list_all(PODS, NAMESPACE)
            out["pods"] = [
                {
                    "name": name_of(p),
                    "node": (p.get("spec") or {}).get("nodeName"),
                    "phase": (p.get("status") or {}).get("phase"),
                    "ready": pod_ready(p),
                    "deletionTimestamp": (p.get("metadata") or {}).get("deletionTimestamp"),
                    "labels": (p.get("metadata") or {}).get("labels"),
                }
                for p in pods
            ]
            events, _ = await self.client.list_all(EVENTS, NAMESPACE)
            out["events"] = [
                {
                    "reason": e.get("reason"),
                    "object": (e.get("involvedObject") or {}).get("name"),
                    "message": e.get("message"),
                    "count": e.get("count"),
                    "last": e.get("lastTimestamp"),
                }
                for e in events[-60:]
            ]
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            out["pod_cidr_listeners"] = pod_cidr_listeners(self.state_dir)
        return out
