"""pod_startup's results: percentiles, the result document, the table and verdict, and the CDF plot.

Decisions and formatting on what a ``StartupRun`` measured - latencies from
each pod's create request (and from its create response) to bound, Running
and Ready, the stages between them, pods per node, the PASS/FAIL against
``TARGET_P99_RUNNING_S`` - printed to the given rich console, plus the PNG.

Concurrency: none; called once from the main thread after the run (the
cluster may already be going down).
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pod_startup_run import StartupRun

TARGET_P99_RUNNING_S = 1.0
K8S_SLO_P99_S = 5.0


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
