#!/usr/bin/env python3
"""Pod startup latency: 100 pods on 3 nodes, from creation to Running (and to Ready), observed by a watch.

    python benchmarks/pod_startup.py [--pods 100] [--mode burst|steady] [--concurrency 10] [--rate 20]
                                     [--no-probe] [--container-port 8080] [--out benchmarks/out/pod_startup.json] [--keep]

Brings up its own raykube cluster (``cluster_harness.run_on_own_cluster``:
Ray on loopback, raftstore, API server, scheduler, controller manager, 3
kubelet actors; profile ``demo``) in a temporary state dir on a free port, opens a
watch on the benchmark's pods (one list+watch, every event stamped on
receipt), then creates ``--pods`` (100) bare pods of ``raykube/web`` (a real
HTTP server process each; with an httpGet readiness probe on ``/readyz``
every 1 s unless ``--no-probe``):

- ``--mode burst`` (default): all at once, at most ``--concurrency`` (10)
  create requests in flight;
- ``--mode steady``: one create every ``1/--rate`` s (``--rate`` 20 pods/s),
  open loop (a slow create does not delay the next one).

Per pod, from the moment its create request is sent (the client-side
clock; ``metadata.creationTimestamp`` has 1 s resolution, so it is not
usable) to the first watch event that shows it: bound to a node (scheduled),
``status.phase == Running`` (the number judged, as the issue defines pod
startup) and its Ready condition True. The same latencies from the create
*response* (the object is persisted) are in the JSON too. A few warm-up pods
(``--warmup``, default 3) are started and deleted first and the cluster is
left idle for ``--settle`` (5) s, so the numbers are for a warm, idle
cluster, as in Kubernetes' density tests.

Container restarts before Ready are recorded per pod (a healthy run has
none), as are sockets of other processes inside this cluster's pod address
ranges before it starts (there should be none: each cluster has its own
address slot, ``cluster.addresses``).

Reports p50/p90/p99/max of create->scheduled, create->Running and
create->Ready, create throughput, and pods per node; target (PASS/FAIL, exit
code 0/1): p99 create->Running <= 1 s (Kubernetes' SLO for stateless pod
startup is p99 <= 5 s). A rich table, JSON (``--out``, default
``benchmarks/out/pod_startup.json``) and a PNG beside it (the latency CDFs).
``--keep`` leaves the cluster, and the pods, up; otherwise the cluster is
stopped in ``finally`` (``cluster.launcher.down``: only this state dir's Ray
head and actors) and the state dir removed on a pass (kept for its logs on a
failure).

The machine has 2 cores: the 100 pod processes, 3 kubelets, the control plane,
raftstore and this harness all share them (and whatever else runs), so
compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from cluster_harness import (  # noqa: E402
    GCPauses,
    Mirror,
    add_cluster_args,
    console_for,
    mark_end,
    name_of,
    now,
    pod_ready,
    run_on_own_cluster,
)
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from cluster import launcher  # noqa: E402
from cluster.client import EVENTS, NODES, PODS, ApiError, Client  # noqa: E402

TARGET_P99_RUNNING_S = 1.0
K8S_SLO_P99_S = 5.0
NAMESPACE = "default"
LABEL = "bench"
RUN_LABEL = "pod-startup"


def pct(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not xs:
        return None
    s = sorted(xs)
    k = min(len(s) - 1, max(0, -(-int(p * len(s)) // 100) - 1)) if p < 100 else len(s) - 1
    return s[k]


def stats(xs: list[float]) -> dict[str, Any]:
    return {
        "n": len(xs),
        "p50_s": pct(xs, 50),
        "p90_s": pct(xs, 90),
        "p99_s": pct(xs, 99),
        "max_s": max(xs) if xs else None,
        "mean_s": (sum(xs) / len(xs)) if xs else None,
    }


def pod_manifest(name: str, run_id: str, probe: bool, port: int = 8080) -> dict[str, Any]:
    """A bare pod of raykube/web, like the container of examples/web.yaml (small requests, so 100 fit)."""
    c: dict[str, Any] = {
        "name": "web",
        "image": "raykube/web",
        "ports": [{"containerPort": port}],
        "env": [{"name": "MESSAGE", "value": "pod-startup benchmark"}, {"name": "PORT", "value": str(port)}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "128Mi"}},
    }
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {LABEL: RUN_LABEL, "run": run_id}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]},
    }


class StartupRun:
    def __init__(self, args: argparse.Namespace, client: Client, console: Console) -> None:
        self.args = args
        self.client = client
        self.console = console
        self.pods: dict[str, dict[str, Any]] = {}  # name -> timestamps and facts
        self.mirror = Mirror(
            client, PODS, namespace=NAMESPACE, label_selector=f"{LABEL}={RUN_LABEL}", on_event=self._event
        )
        self.create_errors: list[str] = []

    def _event(self, etype: str, pod: dict[str, Any], t: float) -> None:
        rec = self.pods.get(name_of(pod))
        if rec is None or etype == "DELETED":
            return
        rec["events"] += 1
        node = (pod.get("spec") or {}).get("nodeName")
        if node and rec.get("t_scheduled") is None:
            rec["t_scheduled"] = t
            rec["node"] = node
        if (pod.get("status") or {}).get("phase") == "Running" and rec.get("t_running") is None:
            rec["t_running"] = t
        if pod_ready(pod) and rec.get("t_ready") is None:
            rec["t_ready"] = t
        st = pod.get("status") or {}
        if st.get("podIP"):
            rec["pod_ip"] = st["podIP"]
        restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or [])
        if restarts > rec.get("restarts", 0):
            rec["restarts"] = restarts
            last = [((c.get("lastState") or {}).get("terminated") or {}) for c in st.get("containerStatuses") or []]
            rec["last_terminated"] = next((x for x in last if x), None)

    def count(self, key: str) -> int:
        return sum(1 for r in self.pods.values() if r.get(key) is not None)

    async def create(self, name: str, run_id: str) -> None:
        rec = self.pods[name]
        rec["t_send"] = now()
        try:
            await self.client.create(
                PODS, pod_manifest(name, run_id, self.args.probe, self.args.container_port), NAMESPACE
            )
            rec["t_ack"] = now()
        except ApiError as exc:
            rec["error"] = str(exc)
            self.create_errors.append(f"{name}: {exc}")

    async def warmup(self) -> None:
        n = self.args.warmup
        if n <= 0:
            return
        names = [f"warmup-{i}" for i in range(n)]
        for nm in names:
            self.pods[nm] = {"events": 0}
        await asyncio.gather(*(self.create(nm, "warmup") for nm in names))
        key = "t_ready" if self.args.probe else "t_running"
        await self.wait(lambda: all(self.pods[nm].get(key) for nm in names), 60, "warm-up pods Ready")
        for nm in names:
            await self.client.delete(PODS, nm, NAMESPACE, grace_period_seconds=0)
        await self.wait(lambda: not any(nm in self.mirror.items for nm in names), 60, "warm-up pods deleted")
        for nm in names:
            del self.pods[nm]

    async def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = now() + timeout
        while not cond():
            if now() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        args = self.args
        watch = asyncio.create_task(self.mirror.run())
        try:
            await asyncio.wait_for(self.mirror.synced.wait(), 60)
            with self.console.status(f"warm-up: {args.warmup} pods started and deleted"):
                await self.warmup()
            with self.console.status(f"letting the new cluster go idle for {args.settle:g} s"):
                await asyncio.sleep(args.settle)  # Ray's head and the fresh actors are still busy after `up`
            run_id = f"r{int(now())}"
            names = [f"startup-{i:03d}" for i in range(args.pods)]
            for nm in names:
                self.pods[nm] = {"events": 0}
            progress = Progress(
                TextColumn("{task.description:>10}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            with progress:
                bars = {
                    k: progress.add_task(label, total=args.pods)
                    for k, label in (
                        ("t_ack", "created"),
                        ("t_scheduled", "scheduled"),
                        ("t_running", "Running"),
                        ("t_ready", "Ready"),
                    )
                }

                async def ticker() -> None:
                    while True:
                        for k, b in bars.items():
                            progress.update(b, completed=self.count(k))
                        await asyncio.sleep(0.1)

                tick = asyncio.create_task(ticker())
                try:
                    self.t_start = now()
                    if args.mode == "burst":
                        sem = asyncio.Semaphore(max(1, args.concurrency))

                        async def bounded(nm: str) -> None:
                            async with sem:
                                await self.create(nm, run_id)

                        creators = [asyncio.create_task(bounded(nm)) for nm in names]
                    else:
                        creators = []
                        period = 1.0 / args.rate
                        for i, nm in enumerate(names):
                            delay = self.t_start + i * period - now()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            creators.append(asyncio.create_task(self.create(nm, run_id)))
                    await asyncio.gather(*creators)
                    self.t_created = now()
                    key = "t_ready" if args.probe else "t_running"
                    ok = [nm for nm in names if "error" not in self.pods[nm]]
                    await self.wait(
                        lambda: all(
                            self.pods[nm].get(key) is not None and self.pods[nm].get("t_running") is not None
                            for nm in ok
                        ),
                        args.timeout,
                        f"all {len(ok)} pods Running and Ready",
                    )
                    self.t_done = now()
                finally:
                    for k, b in bars.items():
                        progress.update(b, completed=self.count(k))
                    tick.cancel()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"watch_errors": self.mirror.errors[-20:], "create_errors": self.create_errors[-20:]}
        try:
            pods, _ = await self.client.list_all(PODS, NAMESPACE, label_selector=f"{LABEL}={RUN_LABEL}")
            out["not_done"] = [
                {
                    "name": name_of(p),
                    "node": (p.get("spec") or {}).get("nodeName"),
                    "phase": (p.get("status") or {}).get("phase"),
                    "ready": pod_ready(p),
                    "conditions": (p.get("status") or {}).get("conditions"),
                }
                for p in pods
                if not pod_ready(p)
            ][:30]
            events, _ = await self.client.list_all(EVENTS, NAMESPACE)
            out["events"] = [
                {
                    "reason": e.get("reason"),
                    "object": (e.get("involvedObject") or {}).get("name"),
                    "message": e.get("message"),
                }
                for e in events
                if e.get("type") == "Warning"
            ][-40:]
            nodes, _ = await self.client.list_all(NODES)
            out["nodes"] = [
                {"name": name_of(n), "conditions": (n.get("status") or {}).get("conditions")} for n in nodes
            ]
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}"


def report(run: StartupRun, args: argparse.Namespace, console: Console, meta: dict[str, Any]) -> dict[str, Any]:
    recs = {nm: r for nm, r in run.pods.items() if nm.startswith("startup-")}
    lat: dict[str, dict[str, list[float]]] = {"send": {}, "ack": {}}
    for base in ("send", "ack"):
        for key in ("ack", "scheduled", "running", "ready"):
            if base == "ack" and key == "ack":
                continue
            lat[base][key] = [
                r[f"t_{key}"] - r[f"t_{base}"]
                for r in recs.values()
                if r.get(f"t_{key}") is not None and r.get(f"t_{base}") is not None
            ]
    stages = {  # where the time goes: API write, scheduler (queue + bind), kubelet (start + status write)
        "ack_to_scheduled": [
            r["t_scheduled"] - r["t_ack"]
            for r in recs.values()
            if r.get("t_scheduled") is not None and r.get("t_ack") is not None
        ],
        "scheduled_to_running": [
            r["t_running"] - r["t_scheduled"]
            for r in recs.values()
            if r.get("t_running") is not None and r.get("t_scheduled") is not None
        ],
        "running_to_ready": [
            r["t_ready"] - r["t_running"]
            for r in recs.values()
            if r.get("t_ready") is not None and r.get("t_running") is not None
        ],
    }
    per_node: dict[str, int] = {}
    for r in recs.values():
        if r.get("node"):
            per_node[r["node"]] = per_node.get(r["node"], 0) + 1
    s = {base: {k: stats(v) for k, v in d.items()} for base, d in lat.items()}
    running = s["send"]["running"]
    complete = running["n"] == args.pods
    passed = bool(complete and running["p99_s"] is not None and running["p99_s"] <= TARGET_P99_RUNNING_S)
    t_start = getattr(run, "t_start", None)
    t_created = getattr(run, "t_created", None)
    t_done = getattr(run, "t_done", None)
    result = {
        "benchmark": "pod_startup",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "cluster": meta,
        "pods": args.pods,
        "image": "raykube/web",
        "readiness_probe": "httpGet /readyz every 1 s" if args.probe else None,
        "mode": args.mode,
        "concurrency": args.concurrency if args.mode == "burst" else None,
        "rate_per_s": args.rate if args.mode == "steady" else None,
        "warmup_pods": args.warmup,
        "idle_before_s": args.settle,
        "container_port": args.container_port,
        "t_start_epoch": t_start,
        "measured_from": "client send of each pod's create request (t_send); 'from_ack' = from its create response",
        "observed_by": "one watch on the pods (event receipt time)",
        "latency_s": s["send"],
        "latency_from_ack_s": s["ack"],
        "stages_s": {k: stats(v) for k, v in stages.items()},
        "create_throughput_per_s": (args.pods / (t_created - t_start)) if t_start and t_created else None,
        "create_phase_s": (t_created - t_start) if t_start and t_created else None,
        "all_done_s": (t_done - t_start) if t_start and t_done else None,
        "pods_per_node": dict(sorted(per_node.items())),
        "target_p99_running_s": TARGET_P99_RUNNING_S,
        "kubernetes_slo_p99_s": K8S_SLO_P99_S,
        "complete": complete,
        "pass": passed,
        "create_errors": run.create_errors,
        "watch": {"events": run.mirror.events, "errors": run.mirror.errors},
        "per_pod": {
            nm: {k: (round(v - t_start, 4) if k.startswith("t_") and t_start else v) for k, v in r.items()}
            for nm, r in sorted(recs.items())
        },
    }
    how = (
        f"all at once, ≤ {args.concurrency} creates in flight"
        if args.mode == "burst"
        else f"steady {args.rate:g} pods/s"
    )
    table = Table(
        title=f"pod startup: {args.pods} pods of raykube/web on 3 nodes ({how}; "
        f"{'with' if args.probe else 'without'} a readiness probe), observed by a watch",
        title_justify="left",
    )
    for col in ("from create request to", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "target"):
        table.add_column(col, justify="left" if col.startswith("from") or col == "target" else "right")
    rows = (
        ("create response", "ack", ""),
        ("scheduled (bound)", "scheduled", ""),
        (
            "Running (phase)",
            "running",
            f"p99 ≤ {TARGET_P99_RUNNING_S * 1000:.0f} ms (Kubernetes SLO {K8S_SLO_P99_S:g} s)",
        ),
        ("Ready (condition)", "ready", ""),
    )
    for label, key, target in rows:
        st = s["send"][key]
        p99 = fmt_ms(st["p99_s"])
        if key == "running":
            p99 = f"[{'green' if passed else 'red'}]{p99}[/]"
        table.add_row(label, str(st["n"]), fmt_ms(st["p50_s"]), fmt_ms(st["p90_s"]), p99, fmt_ms(st["max_s"]), target)
    table.add_section()
    for label, key in (
        ("stage: create response → bound (scheduler)", "ack_to_scheduled"),
        ("stage: bound → Running (kubelet)", "scheduled_to_running"),
        ("stage: Running → Ready (probe)", "running_to_ready"),
    ):
        st = result["stages_s"][key]
        table.add_row(
            f"[dim]{label}[/dim]",
            str(st["n"]),
            fmt_ms(st["p50_s"]),
            fmt_ms(st["p90_s"]),
            fmt_ms(st["p99_s"]),
            fmt_ms(st["max_s"]),
            "",
        )
    console.print(table)
    restarted = {nm: r.get("restarts") for nm, r in sorted(recs.items()) if r.get("restarts")}
    result["restarted_pods"] = restarted
    if restarted:
        console.print(
            f"[yellow]{len(restarted)} pods had container restarts before Ready: "
            + ", ".join(f"{nm} ({n}x, {recs[nm].get('pod_ip')})" for nm, n in restarted.items())
            + "[/yellow]"
        )
    if meta.get("preflight_pod_cidr_listeners"):
        pf = meta["preflight_pod_cidr_listeners"]
        clash = [x for x in pf if x["addr"].endswith(f":{args.container_port}")]
        console.print(
            f"[{'yellow' if clash else 'dim'}]before the run, {len(pf)} sockets of other processes were "
            f"listening inside this cluster's pod address ranges (there should be none), "
            f"{len(clash)} on our container port {args.container_port}: " + ", ".join(x["addr"] for x in pf[:8]) + "[/]"
        )
    console.print(
        "pods per node: "
        + ", ".join(f"{n}: {c}" for n, c in sorted(per_node.items()))
        + (
            f"; creates: {result['create_throughput_per_s']:.0f}/s over {result['create_phase_s']:.2f} s"
            if result["create_throughput_per_s"]
            else ""
        )
        + (
            f"; all {'Ready' if args.probe else 'Running'} {result['all_done_s']:.2f} s after the first create"
            if result["all_done_s"]
            else ""
        )
    )
    hg = meta.get("harness_gc_pauses_during_run") or {}
    if hg:
        console.print(
            f"[{'yellow' if hg['max_s'] > 0.05 else 'dim'}]this harness's own GC pauses during the run: "
            f"{hg['count']} ({hg['full_collections']} full), longest {hg['max_s'] * 1000:.0f} ms, total "
            f"{hg['total_s'] * 1000:.0f} ms (a pause delays what the watch sees)[/]"
        )
    ra = s["ack"]["running"]
    console.print(
        f"[dim]from the create response instead: Running p50 {fmt_ms(ra['p50_s'])} ms, "
        f"p99 {fmt_ms(ra['p99_s'])} ms; Ready p99 {fmt_ms(s['ack']['ready']['p99_s'])} ms[/dim]"
    )
    la = (meta.get("loadavg_before_after") or [None])[0]
    if la:
        console.print(
            f"[dim]1-min load average at the start: {la[0]:.2f} on {os.cpu_count()} cores (shared machine)[/dim]"
        )
    verdict = "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
    console.print(
        f"create -> Running p99 {fmt_ms(running['p99_s'])} ms ({running['n']}/{args.pods} pods) — target "
        f"≤ {TARGET_P99_RUNNING_S * 1000:.0f} ms (Kubernetes' SLO: p99 ≤ {K8S_SLO_P99_S:g} s): {verdict}"
    )
    return result


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    per_pod = result["per_pod"]
    series = (
        ("t_scheduled", "scheduled", "tab:gray"),
        ("t_running", "Running", "tab:blue"),
        ("t_ready", "Ready", "tab:green"),
    )
    for key, label, color in series:
        xs = sorted(
            r[key] - r["t_send"] for r in per_pod.values() if r.get(key) is not None and r.get("t_send") is not None
        )
        if not xs:
            continue
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        st = result["latency_s"][key[2:]]
        ax.step(
            [x * 1000 for x in xs],
            ys,
            where="post",
            color=color,
            linewidth=1.8,
            label=f"create → {label}: p50 {fmt_ms(st['p50_s'])} ms, p99 {fmt_ms(st['p99_s'])} ms",
        )
    ax.axvline(
        TARGET_P99_RUNNING_S * 1000,
        color="tab:red",
        linestyle="--",
        linewidth=1,
        label=f"target p99 ≤ {TARGET_P99_RUNNING_S * 1000:.0f} ms (Running)",
    )
    ax.axhline(0.99, color="k", linestyle=":", linewidth=0.8)
    ax.set_xlabel("ms since the pod's create request")
    ax.set_ylabel("fraction of pods")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    how = (
        f"burst, ≤ {result['concurrency']} in flight"
        if result["mode"] == "burst"
        else f"steady {result['rate_per_s']:g}/s"
    )
    ax.set_title(
        f"pod startup CDF: {result['pods']} × raykube/web on 3 nodes ({how}); Kubernetes SLO p99 ≤ 5 s", fontsize=10
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=100)
    p.add_argument(
        "--mode",
        choices=("burst", "steady"),
        default="burst",
        help="burst: all at once with bounded concurrency (default); steady: --rate pods/s",
    )
    p.add_argument("--concurrency", type=int, default=10, help="creates in flight in burst mode")
    p.add_argument("--rate", type=float, default=20.0, help="pods/s in steady mode")
    p.add_argument("--no-probe", dest="probe", action="store_false", help="pods without a readiness probe")
    p.add_argument("--warmup", type=int, default=3, help="pods started and deleted before measuring")
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds after the warm-up, before measuring")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--container-port", type=int, default=8080, help="the pods' port")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for all pods")
    add_cluster_args(p, "pod_startup.json")
    args = p.parse_args()
    console = console_for(150)

    def measure(state_dir: str, meta: dict[str, Any]) -> dict[str, Any]:
        async def go() -> StartupRun:
            client = launcher.client_for(state_dir, retry_deadline=60)
            run = StartupRun(args, client, console)
            try:
                await run.run()
            except Exception as exc:  # noqa: BLE001 - report what was measured, then fail
                run.error = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]benchmark stopped: {run.error}[/red]")
                run.diag = await run.diagnostics()
            finally:
                await client.close()
            return run

        with GCPauses() as gcp:
            run = asyncio.run(go())
        mark_end(meta)
        meta["harness_gc_pauses_during_run"] = gcp.summary(getattr(run, "t_start", None), getattr(run, "t_done", None))
        result = report(run, args, console, meta)
        if getattr(run, "error", None):
            result["error"] = run.error
            result["diagnostics"] = getattr(run, "diag", None)
            result["pass"] = False
        return result

    return run_on_own_cluster(
        args,
        console,
        title="raykube pod-startup benchmark",
        prefix="rk-podstart-",
        nodes=args.nodes,
        measure=measure,
        plot=plot,
    )


if __name__ == "__main__":
    sys.exit(main())
