#!/usr/bin/env python3
"""Node loss: time from a node's power cut to all replicas Ready again on the surviving nodes.

    python benchmarks/node_loss.py [--replicas 6] [--kills 5] [--out benchmarks/out/node_loss.json] [--keep]

Brings up its own raykube cluster (``cluster.launcher.up``: Ray on loopback,
raftstore, API server, scheduler, controller manager and 3 kubelet actors,
timing profile ``demo``: 2 s heartbeat, 5 s node-monitor grace, eviction at
once) in a temporary state dir on a free port, applies a Deployment made from
``examples/web.yaml`` (``raykube/web`` with an HTTP readiness probe) scaled to
``--replicas`` (6), and then ``--kills`` (5) times:

1. waits until the cluster is settled: every node Ready without
   ``node.kubernetes.io/*`` taints, exactly ``replicas`` pods of the
   Deployment, all Ready, none terminating;
2. picks a node that runs at least one replica (the least-often killed one,
   then the one with the most replicas) and powers it off
   (``cluster.launcher.nodes.kill_cluster_node``: the kubelet actor and all its pod
   processes SIGKILLed at once);
3. measures, from the kill, as observed by watches on pods and nodes (no
   polling of the API): the node's Ready condition leaving ``True``
   (NotReady/Unknown), the node's pods evicted (deletionTimestamp set), the
   first replacement created, and **all replicas Ready on surviving nodes**
   (Ready condition True, not terminating, node != the killed one, count ==
   replicas) — the number judged;
4. adds the node back under the same name and index
   (``cluster.launcher.nodes.add_cluster_node``) and waits until it is Ready and the
   Deployment is settled again (the evicted pods finish terminating once their
   kubelet is back).

Target (PASS/FAIL, exit code 0/1): median kill -> all replicas Ready <= 10 s
with the demo profile. With Kubernetes' defaults (kubelet lease renewal every
10 s, node-monitor-grace-period 40 s, pods tolerate not-ready/unreachable for
300 s) the same recovery takes almost 6 minutes: ~40-45 s to NotReady, then
300 s until eviction, then the replacements' start-up.

Ray may print "(raylet) A worker died or was killed ... SYSTEM_ERROR" after
a kill: that is the SIGKILLed kubelet actor's worker, i.e. the power cut
itself, and expected.

Container restarts of the benchmark's pods are recorded (a healthy run has
none), as are sockets of other processes inside this cluster's pod address
ranges before it starts (there should be none: each cluster has its own
address slot, ``cluster.addresses``).

Results: a rich table per kill with the median, JSON (``--out``, default
``benchmarks/out/node_loss.json``) and a PNG beside it (ready replicas over
time, with kill, NotReady, recovered and node-back markers). ``--keep``
leaves the cluster (and its state dir) up; otherwise it is stopped in
``finally`` with ``raykube down`` semantics (``cluster_harness``, ``cluster.launcher.down``: only
this state dir's Ray head and actors), and the state dir is removed on a pass
(kept, with its path printed, on a failure, for the logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import platform
import statistics
import sys
import time
import traceback
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from cluster_harness import (Mirror, add_cluster_args, console_for, mark_end, name_of, now,  # noqa: E402
                             pod_cidr_listeners, pod_ready, run_on_own_cluster)
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from cluster import launcher  # noqa: E402
from cluster.client import DEPLOYMENTS, EVENTS, NODES, PODS, ApiError, Client  # noqa: E402

TARGET_MEDIAN_S = 10.0
NAMESPACE = "default"
APP = "nodeloss-web"
NODE_TAINT_PREFIX = "node.kubernetes.io/"
# Kubernetes' defaults, for the comparison printed beside the result.
K8S = {"heartbeat_s": 10, "node_monitor_grace_s": 40, "node_monitor_period_s": 5, "toleration_s": 300}


# ================================================================ helpers
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
            c["env"] = [e for e in c.get("env") or [] if e.get("name") != "PORT"] + [{"name": "PORT",
                                                                                    "value": str(port)}]
            for probe in ("readinessProbe", "livenessProbe"):
                if (c.get(probe) or {}).get("httpGet"):
                    c[probe]["httpGet"]["port"] = port
    return dep


# ================================================================ benchmark
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
        return [p for p in self.pods.items.values() if pod_ready(p) and not terminating(p)
                and (exclude_node is None or (p.get("spec") or {}).get("nodeName") != exclude_node)]

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
        restarts = sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses")
                       or [])
        if restarts > self.restarts.get(name_of(pod), 0):
            self.restarts[name_of(pod)] = restarts
            self.restart_log.append({"t": round(t - self.t0, 3), "pod": name_of(pod), "restarts": restarts,
                                     "node": (pod.get("spec") or {}).get("nodeName"),
                                     "pod_ip": (pod.get("status") or {}).get("podIP")})
        cur = self.current
        if cur is not None and cur.get("t_kill") is not None:
            name = name_of(pod)
            if etype == "ADDED" and name not in cur["victim_pods"] and cur.get("t_first_replacement") is None:
                cur["t_first_replacement"] = t
            if cur.get("t_evicted") is None and all(
                    v not in self.pods.items or terminating(self.pods.items[v]) for v in cur["victim_pods"]):
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
        if cur.get("t_tainted") is None and any(k.startswith(NODE_TAINT_PREFIX) and k.endswith(":NoExecute")
                                                for k in node_taints(node)):
            cur["t_tainted"] = t
            cur["taints"] = node_taints(node)
        if cur.get("t_added") is not None and cur.get("t_back_ready") is None and status == "True" and not any(
                k.startswith(NODE_TAINT_PREFIX) for k in node_taints(node)):
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
        nodes = " ".join(f"{n}:{pn.get(n, 0)}{'' if node_ready_status(o) == 'True' else '!'}"
                         for n, o in sorted(self.nodes.items.items()))
        return f"{self.status} — ready {ready}/{self.replicas} on live nodes — pods per node {nodes}"

    # -------------------------------------------------------------- run
    async def run(self) -> None:
        args = self.args
        tasks = [asyncio.create_task(self.pods.run()), asyncio.create_task(self.nodes.run())]
        try:
            await asyncio.wait_for(asyncio.gather(self.pods.synced.wait(), self.nodes.synced.wait()), 60)
            progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.completed}/{task.total} kills"), TimeElapsedColumn(),
                                console=self.console, transient=True)
            with progress:
                bar = progress.add_task("applying the Deployment", total=args.kills)

                async def ticker() -> None:
                    while True:
                        progress.update(bar, description=self.describe())
                        await asyncio.sleep(0.2)

                tick = asyncio.create_task(ticker())
                try:
                    self.status = f"creating Deployment {APP} ({self.replicas} replicas)"
                    await self.client.create(DEPLOYMENTS, deployment_manifest(self.replicas, args.container_port),
                                             NAMESPACE)
                    t_apply = now()
                    self.status = "waiting for the Deployment to be Ready"
                    await self.wait_for(self.settled, args.settle_timeout, "initial Deployment Ready")
                    self.apply_s = now() - t_apply
                    self.initial_spread = self.per_node()
                    self.console.print(f"[green]✓[/green] Deployment {APP}: {self.replicas} replicas Ready in "
                                       f"{self.apply_s:.1f} s, per node {self.initial_spread}")
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
        return sorted(cands, key=lambda n: (self.kill_count.get(n, 0), -pn[n], n))[0]

    async def one_kill(self, k: int) -> None:
        from cluster.launcher import nodes as nodes_mod

        args = self.args
        self.status = f"kill {k}: settling"
        await asyncio.sleep(args.pause)
        await self.wait_for(self.settled, args.settle_timeout, f"kill {k}: settled before the kill")
        victim = self.pick_victim()
        victim_pods = sorted(name_of(p) for p in self.pods.items.values()
                             if (p.get("spec") or {}).get("nodeName") == victim)
        cur: dict[str, Any] = {"kill": k, "victim": victim, "victim_pods": victim_pods,
                               "replicas_on_victim": len(victim_pods), "spread_before": self.per_node(),
                               "t_kill": None}
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
            await self.wait_for(lambda: cur.get("t_recovered") is not None and cur.get("t_notready") is not None,
                                args.recover_timeout, f"kill {k}: replicas Ready on surviving nodes")
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
        except Exception as exc:  # noqa: BLE001 - report it: the product failed to re-add the node
            cur["error"] = (cur.get("error", "") + f"; add back failed: {type(exc).__name__}: {exc}").lstrip("; ")
            cur["diagnostics"] = await self.diagnostics()
            raise
        cur["add_call_s"] = now() - t_add
        self.dead = None
        self._sample(now())
        self.status = f"kill {k}: waiting for {victim} Ready and the Deployment settled"
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: cur.get("t_back_ready") is not None, args.settle_timeout,
                                f"kill {k}: {victim} Ready again")
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
            f"after add, settled {fmt(cur.get('settled_s'))} s; per node now {cur['spread_after']}")

    async def diagnostics(self) -> dict[str, Any]:
        """What the API says right now (for a failed kill)."""
        out: dict[str, Any] = {"at": now(), "nodes": [], "pods": [], "events": [], "watch_errors":
                               {"pods": self.pods.errors[-20:], "nodes": self.nodes.errors[-20:]}}
        try:
            nodes, _ = await self.client.list_all(NODES)
            out["nodes"] = [{"name": name_of(n), "ready": node_ready_status(n), "taints": node_taints(n),
                             "conditions": (n.get("status") or {}).get("conditions")} for n in nodes]
            pods, _ = await self.client.list_all(PODS, NAMESPACE)
            out["pods"] = [{"name": name_of(p), "node": (p.get("spec") or {}).get("nodeName"),
                            "phase": (p.get("status") or {}).get("phase"), "ready": pod_ready(p),
                            "deletionTimestamp": (p.get("metadata") or {}).get("deletionTimestamp"),
                            "labels": (p.get("metadata") or {}).get("labels")} for p in pods]
            events, _ = await self.client.list_all(EVENTS, NAMESPACE)
            out["events"] = [{"reason": e.get("reason"), "object": (e.get("involvedObject") or {}).get("name"),
                              "message": e.get("message"), "count": e.get("count"),
                              "last": e.get("lastTimestamp")} for e in events[-60:]]
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            out["pod_cidr_listeners"] = pod_cidr_listeners(self.state_dir)
        return out


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# ================================================================== report
def report(run: NodeLossRun, args: argparse.Namespace, console: Console, meta: dict[str, Any]) -> dict[str, Any]:
    from cluster.profiles import get_profile

    prof = get_profile("demo")
    kills = [{k: v for k, v in c.items() if not k.startswith("t_") and k != "diagnostics"} | (
        {"diagnostics": c["diagnostics"]} if c.get("diagnostics") else {}) for c in run.kills]
    recovered = [c["recovered_s"] for c in run.kills if c.get("recovered_s") is not None]
    complete = len(recovered) == args.kills and len(run.kills) == args.kills
    median = statistics.median(recovered) if recovered else None
    notready = [c["notready_s"] for c in run.kills if c.get("notready_s") is not None]
    passed = bool(complete and median is not None and median <= TARGET_MEDIAN_S)
    k8s_estimate = K8S["node_monitor_grace_s"] + K8S["node_monitor_period_s"] + K8S["toleration_s"]
    result = {
        "benchmark": "node_loss",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "cluster": meta,
        "profile": prof.to_dict(),
        "deployment": {"name": APP, "replicas": args.replicas, "image": "raykube/web",
                       "readiness_probe": "httpGet /readyz every 1 s", "from": "examples/web.yaml",
                       "container_port": args.container_port},
        "apply_to_ready_s": getattr(run, "apply_s", None),
        "initial_spread": getattr(run, "initial_spread", None),
        "kills": kills,
        "median_recovery_s": median,
        "max_recovery_s": max(recovered) if recovered else None,
        "median_notready_s": statistics.median(notready) if notready else None,
        "target_median_recovery_s": TARGET_MEDIAN_S,
        "kubernetes_defaults": K8S | {
            "estimated_recovery_s": f">= {k8s_estimate} (grace {K8S['node_monitor_grace_s']} s + monitor period "
                                    f"{K8S['node_monitor_period_s']} s + toleration {K8S['toleration_s']} s, "
                                    f"then start-up): almost 6 minutes"},
        "complete": complete,
        "pass": passed,
        "container_restarts": run.restart_log,
        "timeline": [{"t": round(t, 3), "ready_api": a, "ready_live": b} for t, a, b in run.timeline],
        "marks": run.marks,
        "watch": {"pod_events": run.pods.events, "node_events": run.nodes.events,
                  "pod_watch_errors": run.pods.errors, "node_watch_errors": run.nodes.errors},
    }
    table = Table(title=f"node loss: {args.replicas} replicas of raykube/web on 3 nodes, demo profile "
                        f"(heartbeat {prof.heartbeat_seconds:g} s, grace {prof.node_monitor_grace:g} s, "
                        f"eviction after {prof.default_toleration_seconds} s)", title_justify="left")
    for col in ("kill", "node", "replicas on it", "NotReady s", "NoExecute taint s", "evicted s",
                "1st replacement s", "all Ready on survivors s", "node back Ready s", "settled s", "per node after"):
        table.add_column(col, justify="right" if col not in ("node", "per node after") else "left")
    for c in run.kills:
        table.add_row(str(c["kill"]), c["victim"], str(c["replicas_on_victim"]),
                      f"{fmt(c.get('notready_s'))}" + (f" ({c.get('notready_status')})" if c.get("notready_status")
                                                      else ""),
                      fmt(c.get("tainted_s")), fmt(c.get("evicted_s")), fmt(c.get("first_replacement_s")),
                      f"[bold]{fmt(c.get('recovered_s'))}[/bold]" if c.get("recovered_s") is not None
                      else "[red]never[/red]",
                      fmt(c.get("node_back_ready_s")), fmt(c.get("settled_s")),
                      " ".join(f"{n.split('-')[-1]}:{v}" for n, v in sorted((c.get("spread_after") or {}).items())))
    if recovered:
        table.add_section()
        table.add_row("median", "", "", fmt(result["median_notready_s"]), "", "", "", f"[bold]{fmt(median)}[/bold]",
                      "", "", "")
    console.print(table)
    verdict = "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
    console.print(f"median kill -> all {args.replicas} replicas Ready on surviving nodes: {fmt(median)} s "
                  f"(max {fmt(result['max_recovery_s'])} s, {len(recovered)}/{args.kills} kills recovered) — target "
                  f"≤ {TARGET_MEDIAN_S:g} s with a {prof.heartbeat_seconds:g} s heartbeat and "
                  f"{prof.node_monitor_grace:g} s grace: {verdict}")
    if run.restart_log:
        console.print(f"[yellow]container restarts seen: {len(run.restart_log)} "
                      + ", ".join(f"{x['pod']} on {x['node']} ({x['pod_ip']})" for x in run.restart_log[:6])
                      + "[/yellow]")
    if meta.get("preflight_pod_cidr_listeners"):
        pf = meta["preflight_pod_cidr_listeners"]
        clash = [x for x in pf if x["addr"].endswith(f":{args.container_port}")]
        console.print(f"[{'yellow' if clash else 'dim'}]before the run, {len(pf)} sockets of other processes were "
                      f"listening inside this cluster's pod address ranges (there should be none), "
                      f"{len(clash)} on our container port {args.container_port}: " + ", ".join(x["addr"] for x in pf[:8]) + "[/]")
    la = (meta.get("loadavg_before_after") or [None])[0]
    if la:
        console.print(f"[dim]1-min load average at the start: {la[0]:.2f} on {os.cpu_count()} cores (shared machine)"
                      f"[/dim]")
    console.print(f"[dim]Kubernetes' defaults (lease renewal {K8S['heartbeat_s']} s, node-monitor-grace-period "
                  f"{K8S['node_monitor_grace_s']} s, not-ready/unreachable toleration {K8S['toleration_s']} s) take "
                  f"≥ {k8s_estimate} s ≈ {k8s_estimate / 60:.1f} min plus start-up: almost 6 minutes.[/dim]")
    return result


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result["timeline"]
    fig, ax = plt.subplots(figsize=(11, 4))
    if tl:
        ts = [r["t"] for r in tl]
        end = max(ts + [m["t"] for m in result["marks"]]) + 2
        ax.step(ts + [end], [r["ready_live"] for r in tl] + [tl[-1]["ready_live"]], where="post",
                color="tab:blue", linewidth=1.8, label="Ready replicas on live nodes")
        ax.step(ts + [end], [r["ready_api"] for r in tl] + [tl[-1]["ready_api"]], where="post",
                color="tab:gray", linewidth=1, linestyle=":", label="Ready per API (incl. dead node's, until evicted)")
    first = {"kill": True, "notready": True, "recovered": True, "node back": True}
    styles = {"kill": ("tab:red", "--"), "notready": ("tab:orange", ":"), "recovered": ("tab:green", "-"),
              "node back": ("tab:purple", "-.")}
    by_kill: list[tuple[float, float | None]] = []
    for m in result["marks"]:
        color, ls = styles.get(m["what"], ("k", "-"))
        ax.axvline(m["t"], color=color, linestyle=ls, linewidth=1,
                   label=(m["what"] if first.get(m["what"]) else None))
        first[m["what"]] = False
        if m["what"] == "kill":
            ax.annotate(m["node"], (m["t"], 0.15), rotation=90, fontsize=7, color=color, xytext=(2, 0),
                        textcoords="offset points")
            by_kill.append((m["t"], None))
        elif m["what"] == "recovered" and by_kill and by_kill[-1][1] is None:
            by_kill[-1] = (by_kill[-1][0], m["t"])
    for t0, t1 in by_kill:
        if t1 is not None:
            ax.axvspan(t0, t1, color="tab:red", alpha=0.08)
            ax.annotate(f"{t1 - t0:.1f} s", ((t0 + t1) / 2, result["deployment"]["replicas"] + 0.25), fontsize=8,
                        ha="center")
    ax.set_ylim(0, result["deployment"]["replicas"] + 2)
    ax.set_xlabel("seconds since the benchmark's watches started")
    ax.set_ylabel("Ready replicas")
    med = result.get("median_recovery_s")
    ax.set_title(f"node loss, demo profile: kill -> all {result['deployment']['replicas']} replicas Ready on "
                 f"surviving nodes, median {med:.2f} s (target ≤ {TARGET_MEDIAN_S:g} s)" if med is not None
                 else "node loss, demo profile (no kill recovered)", fontsize=10)
    ax.legend(loc="upper center", fontsize=7, ncol=6, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ==================================================================== main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--container-port", type=int, default=8080, help="the pods' port")
    p.add_argument("--pause", type=float, default=2.0, help="seconds of calm before each kill")
    p.add_argument("--recover-timeout", type=float, default=90.0)
    p.add_argument("--settle-timeout", type=float, default=120.0)
    add_cluster_args(p, "node_loss.json")
    args = p.parse_args()
    console = console_for(170)

    def measure(state_dir: str, meta: dict[str, Any]) -> dict[str, Any]:
        async def go() -> NodeLossRun:
            client = launcher.client_for(state_dir, retry_deadline=60)
            run = NodeLossRun(args, state_dir, client, console)
            try:
                await run.run()
            except Exception as exc:  # noqa: BLE001 - report what was measured, then fail
                run.error = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]benchmark stopped: {run.error}[/red]")
                console.print(traceback.format_exc(), markup=False, highlight=False)
            finally:
                await client.close()
            return run

        # One Ray connection for the whole run: kill_cluster_node / add_cluster_node use it (from a thread).
        with launcher.ray_connection(launcher.load_state(launcher.Paths(state_dir)), launcher.Paths(state_dir)):
            run = asyncio.run(go())
        mark_end(meta)
        result = report(run, args, console, meta)
        if getattr(run, "error", None):
            result["error"] = run.error
            result["pass"] = False
        return result

    return run_on_own_cluster(args, console, title="raykube node-loss benchmark", prefix="rk-nodeloss-", nodes=3,
                              measure=measure, plot=plot)


if __name__ == "__main__":
    sys.exit(main())
