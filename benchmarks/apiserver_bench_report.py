"""apiserver_bench's results: the targets, the rich tables and the plot.

Pure decisions and formatting on the result dict, plus printing and the
PNG; called once from the main thread after every phase ran.
"""

from __future__ import annotations

import json
from typing import Any

from bench_output import pyplot, save_figure

TARGET_PACED_P99_MS = 100.0
TARGET_CREATES_PER_S = 1000.0


def targets_of(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, judged on the phases that ran."""
    targets: dict[str, Any] = {}
    if result["paced"]:
        v = result["paced"]["p99_ms"]
        targets["mutating p99 at 20 req/s"] = {
            "value": v,
            "unit": "ms",
            "target": "<= 100 ms",
            "pass": v <= TARGET_PACED_P99_MS,
        }
    c64 = [r for r in result["closed"] if r["op"] == "create" and r["concurrency"] == 64]
    if c64:
        v = c64[0]["throughput"]
        targets["creates/s at concurrency 64"] = {
            "value": v,
            "unit": "creates/s",
            "target": ">= 1000",
            "pass": v >= TARGET_CREATES_PER_S,
        }
    return targets


def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=130)
    t = Table(title=f"API server: ConfigMaps through cluster.client ({result['meta']['target']})", title_justify="left")
    for c in ("op", "conc", "ops", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU ms/op", "server cores"):
        t.add_column(c, justify="right" if c not in ("op", "errors") else "left")
    for r in result["closed"]:
        t.add_row(
            r["op"],
            str(r["concurrency"]),
            str(r["ops"]),
            f"{r['throughput']:.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            json.dumps(r["errors"]) if r["errors"] else "",
            f"{r['server_cpu_ms_per_op']:.2f}" if r["server_cpu_ms_per_op"] else "-",
            f"{r['server_cpu_cores']:.2f}",
        )
    t.caption = (
        "create/update: ConfigMaps with a 100-byte value; get: one of 100; list: a namespace of 100 "
        "ConfigMaps. server CPU = API server + 3 raftstore members"
    )
    con.print(t)
    pc = result.get("paced")
    if pc:
        t = Table(
            title=f"paced mutations: {pc['rate']:.0f} req/s open-loop for {pc['seconds']:.0f} s "
            "(latency from the scheduled send time)",
            title_justify="left",
        )
        for c in ("verb", "ops", "p50 ms", "p99 ms", "max ms"):
            t.add_column(c)
        for verb, s in pc["by_verb"].items():
            t.add_row(verb, str(s["ops"]), f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['max_ms']:.1f}")
        t.add_row(
            "[bold]all[/bold]", str(pc["ops"]), f"{pc['p50_ms']:.1f}", f"{pc['p99_ms']:.1f}", f"{pc['max_ms']:.1f}"
        )
        con.print(t)
    w = result.get("watch")
    if w:
        t = Table(
            title=f"watch fan-out: {w['watchers']} watchers x {w['events']} events "
            f"(written at {w['write_rate']:.0f}/s)",
            title_justify="left",
        )
        for c in (
            "deliveries",
            "complete watchers",
            "in order",
            "dups",
            "deliveries/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "write p99 ms",
        ):
            t.add_column(c)
        t.add_row(
            f"{w['deliveries']}/{w['expected_deliveries']}",
            f"{w['complete_watchers']}/{w['watchers']}",
            str(w["in_order"]),
            str(w["duplicates"]),
            f"{w['deliveries_per_s']:.0f}",
            f"{w['p50_ms']:.1f}",
            f"{w['p99_ms']:.1f}",
            f"{w['max_ms']:.1f}",
            f"{w['write_p99_ms']:.1f}",
        )
        con.print(t)
    la0, la1 = result["meta"]["loadavg_start"], result["meta"].get("loadavg_end") or (0, 0, 0)
    con.print(
        f"machine: {result['meta']['cpus']} CPUs, 1-min load average {la0[0]:.1f} at start, {la1[0]:.1f} at "
        f"end (other work on a shared machine takes CPU from the server: compare runs as ratios)"
    )
    for name, tg in result["targets"].items():
        mark = "[green]PASS[/green]" if tg["pass"] else "[red]FAIL[/red]"
        con.print(f"{mark} {name}: {tg['value']:.1f} {tg['unit']} (target {tg['target']})")


def plot(path: str, result: dict[str, Any]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ops = ["create", "update", "get", "list"]
    concs = sorted({r["concurrency"] for r in result["closed"]})
    width = 0.8 / max(1, len(concs))
    for j, conc in enumerate(concs):
        rows = {r["op"]: r for r in result["closed"] if r["concurrency"] == conc}
        xs = [i + j * width for i in range(len(ops))]
        axes[0].bar(xs, [rows[o]["throughput"] if o in rows else 0 for o in ops], width, label=f"c={conc}")
        axes[1].bar(xs, [rows[o]["p99_ms"] if o in rows else 0 for o in ops], width, label=f"p99 c={conc}")
        axes[1].scatter(xs, [rows[o]["p50_ms"] if o in rows else 0 for o in ops], color="k", s=10, zorder=3)
    for ax, title in ((axes[0], "throughput (ops/s)"), (axes[1], "latency ms (bars p99, dots p50)")):
        ax.set_xticks([i + width * (len(concs) - 1) / 2 for i in range(len(ops))])
        ax.set_xticklabels(ops)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0].axhline(TARGET_CREATES_PER_S, color="r", ls="--", lw=1)
    axes[1].set_yscale("log")
    w = result.get("watch")
    if w and w.get("lat_sample"):
        xs = sorted(w["lat_sample"])
        axes[2].plot(xs, [i / len(xs) for i in range(len(xs))])
        axes[2].set_xscale("log")
        axes[2].set_title(f"watch delivery latency CDF ({w['watchers']} watchers x {w['events']} events)")
        axes[2].set_xlabel("ms")
    pc = result.get("paced")
    if pc:
        axes[2].axvline(pc["p99_ms"], color="r", ls="--", lw=1)
        axes[2].text(
            pc["p99_ms"],
            0.05,
            f" for comparison: paced (20/s) mutating p99 {pc['p99_ms']:.0f} ms",
            color="r",
            fontsize=8,
        )
    fig.suptitle(f"raykube API server bench - {result['meta']['target']} - {result['meta']['date']}")
    save_figure(fig, path)
