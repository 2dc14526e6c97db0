"""node_loss's results: the result document, the table and verdict, and the plot.

Decisions and formatting on what a ``NodeLossRun`` measured, printed to the
given rich console, plus the PNG; called once from the main thread after
the run (the cluster may already be going down).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from typing import TYPE_CHECKING, Any

from bench_output import pyplot, save_figure
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # node_loss_run imports fmt from here
    from node_loss_run import NodeLossRun

TARGET_MEDIAN_S = 10.0
# Kubernetes' defaults, for the comparison printed beside the result.
K8S = {"heartbeat_s": 10, "node_monitor_grace_s": 40, "node_monitor_period_s": 5, "toleration_s": 300}


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def report(run: NodeLossRun, args: argparse.Namespace, console: Console, meta: dict[str, Any]) -> dict[str, Any]:
    from node_loss_run import APP

    from cluster.profiles import get_profile

    prof = get_profile("demo")
    kills = [
        {k: v for k, v in c.items() if not k.startswith("t_") and k != "diagnostics"}
        | ({"diagnostics": c["diagnostics"]} if c.get("diagnostics") else {})
        for c in run.kills
    ]
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
        "deployment": {
            "name": APP,
            "replicas": args.replicas,
            "image": "raykube/web",
            "readiness_probe": "httpGet /readyz every 1 s",
            "from": "examples/web.yaml",
            "container_port": args.container_port,
        },
        "apply_to_ready_s": getattr(run, "apply_s", None),
        "initial_spread": getattr(run, "initial_spread", None),
        "kills": kills,
        "median_recovery_s": median,
        "max_recovery_s": max(recovered) if recovered else None,
        "median_notready_s": statistics.median(notready) if notready else None,
        "target_median_recovery_s": TARGET_MEDIAN_S,
        "kubernetes_defaults": K8S
        | {
            "estimated_recovery_s": f">= {k8s_estimate} (grace {K8S['node_monitor_grace_s']} s + monitor period "
            f"{K8S['node_monitor_period_s']} s + toleration {K8S['toleration_s']} s, "
            f"then start-up): almost 6 minutes"
        },
        "complete": complete,
        "pass": passed,
        "container_restarts": run.restart_log,
        "timeline": [{"t": round(t, 3), "ready_api": a, "ready_live": b} for t, a, b in run.timeline],
        "marks": run.marks,
        "watch": {
            "pod_events": run.pods.events,
            "node_events": run.nodes.events,
            "pod_watch_errors": run.pods.errors,
            "node_watch_errors": run.nodes.errors,
        },
    }
    table = Table(
        title=f"node loss: {args.replicas} replicas of raykube/web on 3 nodes, demo profile "
        f"(heartbeat {prof.heartbeat_seconds:g} s, grace {prof.node_monitor_grace:g} s, "
        f"eviction after {prof.default_toleration_seconds} s)",
        title_justify="left",
    )
    for col in (
        "kill",
        "node",
        "replicas on it",
        "NotReady s",
        "NoExecute taint s",
        "evicted s",
        "1st replacement s",
        "all Ready on survivors s",
        "node back Ready s",
        "settled s",
        "per node after",
    ):
        table.add_column(col, justify="right" if col not in ("node", "per node after") else "left")
    for c in run.kills:
        table.add_row(
            str(c["kill"]),
            c["victim"],
            str(c["replicas_on_victim"]),
            f"{fmt(c.get('notready_s'))}" + (f" ({c.get('notready_status')})" if c.get("notready_status") else ""),
            fmt(c.get("tainted_s")),
            fmt(c.get("evicted_s")),
            fmt(c.get("first_replacement_s")),
            f"[bold]{fmt(c.get('recovered_s'))}[/bold]" if c.get("recovered_s") is not None else "[red]never[/red]",
            fmt(c.get("node_back_ready_s")),
            fmt(c.get("settled_s")),
            " ".join(f"{n.split('-')[-1]}:{v}" for n, v in sorted((c.get("spread_after") or {}).items())),
        )
    if recovered:
        table.add_section()
        table.add_row(
            "median", "", "", fmt(result["median_notready_s"]), "", "", "", f"[bold]{fmt(median)}[/bold]", "", "", ""
        )
    console.print(table)
    verdict = "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
    console.print(
        f"median kill -> all {args.replicas} replicas Ready on surviving nodes: {fmt(median)} s "
        f"(max {fmt(result['max_recovery_s'])} s, {len(recovered)}/{args.kills} kills recovered) — target "
        f"≤ {TARGET_MEDIAN_S:g} s with a {prof.heartbeat_seconds:g} s heartbeat and "
        f"{prof.node_monitor_grace:g} s grace: {verdict}"
    )
    if run.restart_log:
        console.print(
            f"[yellow]container restarts seen: {len(run.restart_log)} "
            + ", ".join(f"{x['pod']} on {x['node']} ({x['pod_ip']})" for x in run.restart_log[:6])
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
    la = (meta.get("loadavg_before_after") or [None])[0]
    if la:
        console.print(
            f"[dim]1-min load average at the start: {la[0]:.2f} on {os.cpu_count()} cores (shared machine)[/dim]"
        )
    console.print(
        f"[dim]Kubernetes' defaults (lease renewal {K8S['heartbeat_s']} s, node-monitor-grace-period "
        f"{K8S['node_monitor_grace_s']} s, not-ready/unreachable toleration {K8S['toleration_s']} s) take "
        f"≥ {k8s_estimate} s ≈ {k8s_estimate / 60:.1f} min plus start-up: almost 6 minutes.[/dim]"
    )
    return result


def plot(result: dict[str, Any], path: str) -> None:
    plt = pyplot()
    tl = result["timeline"]
    fig, ax = plt.subplots(figsize=(11, 4))
    if tl:
        ts = [r["t"] for r in tl]
        end = max(ts + [m["t"] for m in result["marks"]]) + 2
        ax.step(
            ts + [end],
            [r["ready_live"] for r in tl] + [tl[-1]["ready_live"]],
            where="post",
            color="tab:blue",
            linewidth=1.8,
            label="Ready replicas on live nodes",
        )
        ax.step(
            ts + [end],
            [r["ready_api"] for r in tl] + [tl[-1]["ready_api"]],
            where="post",
            color="tab:gray",
            linewidth=1,
            linestyle=":",
            label="Ready per API (incl. dead node's, until evicted)",
        )
    first = {"kill": True, "notready": True, "recovered": True, "node back": True}
    styles = {
        "kill": ("tab:red", "--"),
        "notready": ("tab:orange", ":"),
        "recovered": ("tab:green", "-"),
        "node back": ("tab:purple", "-."),
    }
    by_kill: list[tuple[float, float | None]] = []
    for m in result["marks"]:
        color, ls = styles.get(m["what"], ("k", "-"))
        ax.axvline(m["t"], color=color, linestyle=ls, linewidth=1, label=(m["what"] if first.get(m["what"]) else None))
        first[m["what"]] = False
        if m["what"] == "kill":
            ax.annotate(
                m["node"],
                (m["t"], 0.15),
                rotation=90,
                fontsize=7,
                color=color,
                xytext=(2, 0),
                textcoords="offset points",
            )
            by_kill.append((m["t"], None))
        elif m["what"] == "recovered" and by_kill and by_kill[-1][1] is None:
            by_kill[-1] = (by_kill[-1][0], m["t"])
    for t0, t1 in by_kill:
        if t1 is not None:
            ax.axvspan(t0, t1, color="tab:red", alpha=0.08)
            ax.annotate(
                f"{t1 - t0:.1f} s", ((t0 + t1) / 2, result["deployment"]["replicas"] + 0.25), fontsize=8, ha="center"
            )
    ax.set_ylim(0, result["deployment"]["replicas"] + 2)
    ax.set_xlabel("seconds since the benchmark's watches started")
    ax.set_ylabel("Ready replicas")
    med = result.get("median_recovery_s")
    ax.set_title(
        f"node loss, demo profile: kill -> all {result['deployment']['replicas']} replicas Ready on "
        f"surviving nodes, median {med:.2f} s (target ≤ {TARGET_MEDIAN_S:g} s)"
        if med is not None
        else "node loss, demo profile (no kill recovered)",
        fontsize=10,
    )
    ax.legend(loc="upper center", fontsize=7, ncol=6, framealpha=0.9)
    save_figure(fig, path)
