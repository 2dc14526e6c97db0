"""raftstore_bench's results: the tables, the targets, the JSON document and the plot.

Pure formatting and decisions on the cells' result dicts, plus printing to
the given rich console and writing the PNG; no processes, no sockets.
Called once, from the main thread, after every cell ran.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from bench_output import pyplot, save_figure
from raftstore_bench_load import VALUE_SIZE

if TYPE_CHECKING:  # the harness imports fmt from here
    from raftstore_bench_harness import Cell, System


def fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}"


def ratio_text(cell: Cell, rs: dict[str, Any] | None, et: dict[str, Any] | None) -> tuple[str, float | None]:
    if not rs or not et:
        return "—", None
    if cell.kind == "watch":
        if rs.get("p50_ms") and et.get("p50_ms"):
            r = rs["p50_ms"] / et["p50_ms"]
            return f"p50 {r:.2f}×", round(r, 3)
        return "—", None
    if rs.get("ops_per_s") and et.get("ops_per_s"):
        r = rs["ops_per_s"] / et["ops_per_s"]
        return f"{r:.2f}×", round(r, 3)
    return "—", None


def plot(path: str, cells: list[Cell], results: dict[str, dict[str, dict[str, Any]]], systems: list[str]) -> None:
    plt = pyplot()
    colors = {"raftstore": "#1f77b4", "etcd": "#ff7f0e"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    w = 0.8 / max(1, len(systems))
    tput_cells = [c for c in cells if c.kind != "watch"]
    ax = axes[0]
    for j, s in enumerate(systems):
        vals = [(results.get(c.key, {}).get(s) or {}).get("ops_per_s") or 0 for c in tput_cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(tput_cells))]
        bars = ax.bar(xs, vals, w, label=s, color=colors.get(s))
        ax.bar_label(bars, fmt=lambda v: f"{v:,.0f}", fontsize=7)
    ax.set_xticks(range(len(tput_cells)), [c.label for c in tput_cells])
    ax.set_ylabel("ops/s")
    ax.set_title("throughput (higher is better)")
    ax.legend()

    ax = axes[1]
    for j, s in enumerate(systems):
        p50 = [(results.get(c.key, {}).get(s) or {}).get("p50_ms") or 0 for c in cells]
        p99 = [(results.get(c.key, {}).get(s) or {}).get("p99_ms") or 0 for c in cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(cells))]
        ax.bar(xs, p99, w, color=colors.get(s), alpha=0.35, label=f"{s} p99")
        ax.bar(xs, p50, w, color=colors.get(s), label=f"{s} p50")
    ax.set_yscale("log")
    ax.set_xticks(range(len(cells)), [c.label for c in cells], rotation=15)
    ax.set_ylabel("latency, ms (log)")
    ax.set_title("latency p50 (solid) / p99 (pale), lower is better")
    ax.legend(fontsize=8)

    ax = axes[2]
    for j, s in enumerate(systems):
        vals = [(results.get(c.key, {}).get(s) or {}).get("server_cpu_s_per_1k_ops") or 0 for c in cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(cells))]
        bars = ax.bar(xs, vals, w, label=s, color=colors.get(s))
        ax.bar_label(bars, fmt=lambda v: f"{v:.2f}", fontsize=7)
    ax.set_xticks(range(len(cells)), [c.label for c in cells], rotation=15)
    ax.set_ylabel("server CPU s / 1,000 ops")
    ax.set_title("server CPU per op (lower is better)")
    ax.legend()
    fig.suptitle("raftstore" + (" vs etcd" if "etcd" in systems else "") + " — 3 members on loopback")
    save_figure(fig, path)


def print_tables(
    console: Any,
    args: argparse.Namespace,
    cells: list[Cell],
    names: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Print the throughput/latency table and the CPU table; returns the summary rows."""
    from rich.table import Table

    have_etcd = "etcd" in names
    table = Table(
        title="raftstore"
        + (" vs etcd" if have_etcd else "")
        + f" — 3 members on loopback, {args.duration:g} s per cell, 100-byte values"
    )
    table.add_column("workload")
    for n in ("raftstore", "etcd"):
        table.add_column(f"{n}\nops/s", justify="right")
        table.add_column(f"{n}\np50 ms", justify="right")
        table.add_column(f"{n}\np99 ms", justify="right")
    table.add_column("ratio\nraftstore/etcd", justify="right")
    rows = []
    for c in cells:
        rs, et = results[c.key].get("raftstore"), results[c.key].get("etcd")
        rtxt, rval = ratio_text(c, rs, et)
        label = c.label if c.kind != "watch" else f"put→watch @{args.watch_rate:g}/s"
        table.add_row(
            label,
            fmt((rs or {}).get("ops_per_s"), 0),
            fmt((rs or {}).get("p50_ms")),
            fmt((rs or {}).get("p99_ms")),
            fmt((et or {}).get("ops_per_s"), 0),
            fmt((et or {}).get("p50_ms")),
            fmt((et or {}).get("p99_ms")),
            rtxt,
        )
        rs_cpu, et_cpu = (rs or {}).get("server_cpu_s_per_1k_ops"), (et or {}).get("server_cpu_s_per_1k_ops")
        rows.append(
            {
                "cell": c.key,
                "label": c.label,
                "ratio": rval,
                "ratio_kind": "p50 latency" if c.kind == "watch" else "throughput",
                "server_cpu_per_op_ratio": round(rs_cpu / et_cpu, 3) if rs_cpu and et_cpu else None,
            }
        )
    console.print(table)
    cpu_table = Table(title="CPU seconds per 1,000 ops (server = sum of 3 members; client = load generator)")
    cpu_table.add_column("workload")
    for n in names:
        cpu_table.add_column(f"{n}\nserver s/1k", justify="right")
        cpu_table.add_column(f"{n}\nserver cores", justify="right")
        cpu_table.add_column(f"{n}\nclient s/1k", justify="right")
    if have_etcd:
        cpu_table.add_column("server CPU/op\nraftstore/etcd", justify="right")
    for c in cells:
        row = [c.label]
        for n in names:
            r = results[c.key].get(n) or {}
            row += [
                fmt(r.get("server_cpu_s_per_1k_ops"), 3),
                fmt(r.get("server_cpu_cores"), 2),
                fmt(r.get("client_cpu_s_per_1k_ops"), 3),
            ]
        if have_etcd:
            cr = next(x["server_cpu_per_op_ratio"] for x in rows if x["cell"] == c.key)
            row.append("—" if cr is None else f"{cr:.2f}×")
        cpu_table.add_row(*row)
    console.print(cpu_table)
    return rows


def bench_targets(results: dict[str, dict[str, dict[str, Any]]], have_etcd: bool) -> list[dict[str, Any]]:
    """The issue's targets, judged on the cells' results (passed None: not measurable)."""
    targets = []
    rs64, et64 = results["put_c64"].get("raftstore") or {}, results["put_c64"].get("etcd") or {}
    if have_etcd and rs64.get("ops_per_s") and et64.get("ops_per_s"):
        ratio = rs64["ops_per_s"] / et64["ops_per_s"]
        p99_ok = rs64.get("p99_ms") is not None and et64.get("p99_ms") is not None and rs64["p99_ms"] <= et64["p99_ms"]
        targets.append({"target": "put c=64 throughput >= 1.5x etcd", "value": round(ratio, 3), "passed": ratio >= 1.5})
        targets.append(
            {"target": "put c=64 p99 <= etcd p99", "value": [rs64.get("p99_ms"), et64.get("p99_ms")], "passed": p99_ok}
        )
    else:
        targets.append(
            {
                "target": "put c=64 throughput >= 1.5x etcd, p99 <= etcd's",
                "value": None,
                "passed": None,
                "note": "needs --against etcd",
            }
        )
    p50 = (results["put_c1"].get("raftstore") or {}).get("p50_ms")
    targets.append(
        {"target": "single-client put p50 <= 2 ms", "value": p50, "passed": None if p50 is None else p50 <= 2.0}
    )
    return targets


def print_verdicts(console: Any, targets: list[dict[str, Any]], systems: list[System]) -> None:
    """PASS/FAIL per target, then every anomaly with the logs to look at."""
    for t in targets:
        verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}[t["passed"]]
        console.print(f"{verdict}  {t['target']}: {t['value']}")
    for s in systems:
        for an in s.anomalies:
            console.print(f"[red]anomaly[/] {s.name}: {an}")
        if s.anomalies:
            console.print(f"  logs: {' '.join(s.logs)}")


def result_doc(
    args: argparse.Namespace,
    machine: dict[str, Any],
    idle: dict[str, float],
    results: dict[str, dict[str, dict[str, Any]]],
    rows: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    systems: list[System],
    have_etcd: bool,
    raftstore_tuning: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON document written to ``--out``."""
    import raftstore

    return {
        "benchmark": "raftstore_bench",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "raftstore_version": getattr(raftstore, "__version__", None),
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "value_bytes": VALUE_SIZE,
            "workers": args.workers,
            "watch_rate_per_s": args.watch_rate,
            "get_keys": args.get_keys,
            "op_timeout_s": args.op_timeout,
            "order": args.order,
            "etcd_client": args.etcd_client if have_etcd else None,
            "etcd_pinned_endpoint": args.etcd_endpoint if have_etcd else None,
            "etcd_timing": {"heartbeat_ms": 100, "election_ms": 1000} if have_etcd else None,
            "raftstore_tuning": raftstore_tuning,
            "notes": [
                "latency = client-observed time per operation in the load generator",
                "put→watch latency = watcher's receipt of the event - the writer's put start (same process)",
                (
                    "server CPU per 1k ops = delta of user+sys CPU of the 3 member processes over the measured "
                    "window / ops completed in it (watch cell: / puts issued)"
                ),
                "etcd clients pin one endpoint like etcd's own clients; here the leader (its best case)",
            ],
        },
        "idle_server_cpu_cores": idle,
        "cells": results,
        "summary": rows,
        "targets": targets,
        "anomalies": {s.name: s.anomalies for s in systems},
        "status_at_start": {s.name: s.status0 for s in systems},
    }
