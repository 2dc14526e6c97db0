#!/usr/bin/env python3
"""Throughput and latency of raftstore, optionally side by side with etcd.

    python benchmarks/raftstore_bench.py [--against etcd] [--duration S] [--out PATH]

Brings up its own 3-member raftstore (``LocalCluster`` in a temporary
directory) and, with ``--against etcd``, its own 3-member etcd 3.4
(``benchmarks/etcd_cluster.py``, default timing; install it with
``scripts/install-etcd.sh``), then runs the identical workload through the
identical harness (``benchmarks/kvbackends.py``) on each:

- put throughput and p50/p99 latency at concurrency 1, 16 and 64 (100-byte
  values, every put to a distinct key);
- linearizable get throughput and p50/p99 at concurrency 16 (over a preloaded
  key set);
- put-to-watch-event latency: a watcher on a prefix, a writer putting
  timestamped values at a fixed rate; latency = event receipt - put start;
- server CPU seconds per 1,000 operations (psutil: the user+sys CPU time
  delta of the three member processes over the measured window / ops), and the
  same for the load generator.

Each cell runs for a fixed time (``--duration``, after ``--warmup``), not a
fixed op count. The load generator runs in separate processes (``--workers``,
each with its own asyncio loop and a share of the concurrency) so it shares
no GIL with the harness; both systems get the same generator. Cells are
interleaved (raftstore, etcd, raftstore, ...) so background noise on a shared
machine falls on both. Results: a rich table, JSON (``--out``) and a PNG plot
beside it. Everything started here is stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import array
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# The load generator, the harness and the report live beside this script
# (raftstore_bench_load, raftstore_bench_harness, raftstore_bench_report);
# their names are re-exported for whoever imported them from here.
from bench_output import png_beside, write_json
from raftstore_bench_harness import (
    Bench,
    Cell,
    System,
    cpu_of,
    etcd_status,
    machine_info,
    pct,
    raftstore_status,
    run_cells,
    terms,
)
from raftstore_bench_load import VALUE_SIZE
from raftstore_bench_report import (
    bench_targets,
    fmt,
    plot,
    print_tables,
    print_verdicts,
    ratio_text,
    result_doc,
)

__all__ = [
    "GET_KEYS_DEFAULT",
    "VALUE_SIZE",
    "Bench",
    "Cell",
    "System",
    "cpu_of",
    "etcd_status",
    "fmt",
    "machine_info",
    "main",
    "pct",
    "plot",
    "raftstore_status",
    "ratio_text",
    "terms",
]

GET_KEYS_DEFAULT = 1000


class _Terminated(BaseException):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", choices=["etcd"], help="also run every cell against a 3-member etcd")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell (default 5)")
    p.add_argument("--warmup", type=float, default=1.5, help="warm-up seconds per cell (default 1.5)")
    p.add_argument("--out", default=os.path.join(HERE, "out", "raftstore_bench.json"), help="JSON output path")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes per cell (default 2)")
    p.add_argument("--watch-rate", type=float, default=100.0, help="writer puts/s in the watch cell (default 100)")
    p.add_argument("--get-keys", type=int, default=GET_KEYS_DEFAULT, help="keys preloaded for the get cell")
    p.add_argument("--op-timeout", type=float, default=10.0, help="client timeout per operation, s")
    p.add_argument(
        "--etcd-client",
        choices=["gateway", "grpc"],
        default="grpc",
        help="etcd client path: its native gRPC API via aetcd (default; pip install -e '.[bench]') "
        "or the JSON gRPC gateway over aiohttp",
    )
    p.add_argument(
        "--etcd-endpoint",
        choices=["leader", "follower"],
        default="leader",
        help="which etcd member the client pins (default: the leader, etcd's best case)",
    )
    p.add_argument(
        "--order",
        choices=["interleave", "sequential"],
        default="interleave",
        help="interleave systems cell by cell (default) or run all of one system first",
    )
    p.add_argument("--keep-data", action="store_true", help="keep the clusters' data directories and logs")
    args = p.parse_args(argv)

    from rich.console import Console

    console = Console()
    if not console.is_terminal and console.width < 132:
        console = Console(width=132)  # piped or logged: don't squeeze the tables to 80 columns
    signal.signal(signal.SIGTERM, _on_sigterm)
    bench = Bench(args, console)
    cells = [
        Cell("put_c1", "put c=1", "put", 1),
        Cell("put_c16", "put c=16", "put", 16),
        Cell("put_c64", "put c=64", "put", 64),
        Cell("get_c16", "get c=16", "get", 16),
        Cell("watch", "watch", "watch", 1),
    ]
    systems: list[System] = []
    results: dict[str, dict[str, dict[str, Any]]] = {c.key: {} for c in cells}
    doc: dict[str, Any] = {}
    lc = None
    etcd = None
    rs_dir = None
    failed = False
    try:
        from raftstore.localcluster import LocalCluster

        etcd_version = None
        if args.against == "etcd":
            from etcd_cluster import etcd_version as _ev

            etcd_version = _ev()
        machine = machine_info(etcd_version)

        # ---- raftstore ----
        rs_dir = tempfile.mkdtemp(prefix="raftstore-bench-")
        console.print(f"[bold]raftstore[/]: starting 3 members in {rs_dir}")
        lc = LocalCluster.create(rs_dir)
        lc.start()
        lc.wait_serving(30)
        rs_endpoints = lc.endpoints
        st = raftstore_status(rs_endpoints)
        deadline = time.monotonic() + 20
        while not any(s.get("role") == "leader" for s in st) and time.monotonic() < deadline:
            time.sleep(0.2)
            st = raftstore_status(rs_endpoints)
        if not any(s.get("role") == "leader" for s in st):
            raise RuntimeError(f"raftstore elected no leader in 20 s: {st}")
        _lc = lc

        def rs_pids() -> list[int]:
            return [pid for pid in (_lc.pid(m.name) for m in _lc.config.members) if pid]

        systems.append(
            System(
                "raftstore",
                {"system": "raftstore", "endpoints": rs_endpoints, "timeout": args.op_timeout},
                rs_pids,
                lambda: raftstore_status(rs_endpoints),
                rs_dir,
                logs=[os.path.join(rs_dir, m.name, "member.log") for m in lc.config.members],
            )
        )

        # ---- etcd ----
        if args.against == "etcd":
            from etcd_cluster import EtcdCluster

            etcd = EtcdCluster(3)
            console.print("[bold]etcd[/]: starting 3 members (default timing: heartbeat 100 ms, election 1000 ms)")
            etcd.start()
            pinned = etcd.leader_endpoint() if args.etcd_endpoint == "leader" else etcd.follower_endpoint()
            _etcd = etcd
            systems.append(
                System(
                    "etcd",
                    {"system": "etcd", "endpoint": pinned, "client": args.etcd_client, "timeout": args.op_timeout},
                    lambda: list(_etcd.pids.values()),
                    lambda: etcd_status(_etcd),
                    etcd.tmpdir or "",
                    logs=[etcd.log_path(n) for n in etcd.names],
                )
            )
            console.print(
                f"etcd {etcd.version.get('etcd')} client: {args.etcd_client}, pinned to the "
                f"{args.etcd_endpoint} {pinned}"
            )

        for s in systems:
            s.status0 = s.status()
        idle = {s.name: bench.idle_cpu(s) for s in systems}
        console.print("idle server CPU (cores): " + ", ".join(f"{k} {v:.3f}" for k, v in idle.items()))

        order: list[tuple[Cell, System]]
        if args.order == "interleave":
            order = [(c, s) for c in cells for s in systems]
        else:
            order = [(c, s) for s in systems for c in cells]
        run_cells(bench, order, console, results)

        # ---- report ----
        names = [s.name for s in systems]
        have_etcd = "etcd" in names
        rows = print_tables(console, args, cells, names, results)
        targets = bench_targets(results, have_etcd)
        print_verdicts(console, targets, systems)

        machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        doc = result_doc(
            args, machine, idle, results, rows, targets, systems, have_etcd, lc.config.tuning.__dict__ if lc else None
        )
        out = os.path.abspath(args.out)
        write_json(out, doc, default=lambda o: list(o) if isinstance(o, (set, array.array)) else str(o))
        png = png_beside(out)
        plotted = True
        try:
            plot(png, cells, results, names)
        except Exception as exc:  # noqa: BLE001 -- the JSON is written: a plot never fails the run
            console.print(f"[yellow]plot failed: {exc}[/]")
            plotted = False
        console.print(f"JSON: {out}" + (f"\nplot: {png}" if plotted else ""))
        if any(s.anomalies for s in systems):
            failed = True
    except (KeyboardInterrupt, _Terminated):
        console.print("[red]interrupted[/]")
        failed = True
        return 130
    except Exception:  # noqa: BLE001 -- shown in full, then the exit code says it failed
        failed = True
        console.print_exception()
        return 1
    finally:
        keep = args.keep_data or failed
        if etcd is not None:
            etcd.keep_data = keep
            etcd.stop()
            if keep and etcd.tmpdir:
                console.print(f"etcd data and logs kept in {etcd.tmpdir}")
        if lc is not None:
            lc.stop()
            for m in lc.config.members:  # belt and braces, by PID
                if lc.pid(m.name):
                    lc.kill(m.name)
        if rs_dir:
            if keep:
                console.print(f"raftstore data and logs kept in {rs_dir}")
            else:
                shutil.rmtree(rs_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
