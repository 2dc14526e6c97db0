#!/usr/bin/env python3
"""Throughput and latency of the raykube API server (over raftstore), through ``cluster.client``.

    python benchmarks/apiserver_bench.py [--duration S] [--concurrency 1,16,64] [--out PATH]
    python benchmarks/apiserver_bench.py --state-dir ~/.raykube      # against a running `raykube up`

By default it brings up its own stack **without Ray**: a 3-member raftstore
(``LocalCluster``, three member processes in a temporary directory) and one
API server process (``python -m cluster.apiserver``, HTTPS with a CA made by
``cluster.pki`` and bearer tokens), i.e. the same processes ``raykube up``
runs minus the Ray actor wrappers. ``--state-dir`` measures a running
``raykube up`` cluster (API server inside its Ray actor) instead.

Workloads (ConfigMaps with a 100-byte value, namespace ``bench-*``):

- **create**, **update** (PUT with the last resourceVersion; each client task
  owns one object, so no 409s), **get** (one of 100 objects), **list** (a
  namespace of 100 objects): p50/p99 latency and throughput at concurrency 1,
  16 and 64, each for ``--duration`` seconds after ``--warmup``;
- **paced mutations**: an open-loop schedule of 20 requests/s (create, update,
  delete in rotation) for ``--paced-seconds``; latency is measured from the
  scheduled send time, so a stalled server cannot hide queueing;
- **watch fan-out**: ``--watchers`` (100) watches on one namespace, a writer
  creating ``--events`` (1,000) objects stamped with their send time at
  ``--watch-rate``/s; delivery latency = receipt - send, per (watcher,
  event); every watcher must see every event exactly once, in order.

The load runs in separate processes (``multiprocessing``, ``--load-procs``
of them, each its own asyncio loop and ``cluster.client.Client``; the
concurrency is split between them) so it shares no GIL with this harness.
Server CPU per operation (user+sys of the API server and the three members,
from psutil) is reported beside each cell: on this 2-core machine the load
generator competes with the server for CPU, so compare runs as ratios.

Targets (printed PASS/FAIL): mutating p99 <= 100 ms at 20 requests/s; >= 1,000
creates/s at concurrency 64. Results: a rich table, JSON (``--out``,
default ``benchmarks/out/apiserver_bench.json``) and a PNG beside it.
Everything started here is stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import random
import signal
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# The load processes, the servers and the report live beside this script
# (apiserver_bench_load, apiserver_bench_stack, apiserver_bench_report);
# their names are re-exported for whoever imported them from here.
from apiserver_bench_load import OBJECTS_FOR_READS, VALUE, cm, proc_main, run_procs
from apiserver_bench_report import (
    TARGET_CREATES_PER_S,
    TARGET_PACED_P99_MS,
    plot,
    render,
    targets_of,
)
from apiserver_bench_stack import Stack, conn_from_state, cpu_seconds, list_rv, prepare
from bench_output import png_beside, write_json

__all__ = [
    "OBJECTS_FOR_READS",
    "TARGET_CREATES_PER_S",
    "TARGET_PACED_P99_MS",
    "VALUE",
    "Stack",
    "closed_cell",
    "cm",
    "conn_from_state",
    "main",
    "paced_cell",
    "pct",
    "plot",
    "render",
    "split",
    "summary",
    "watch_cell",
]


# =============================================================== statistics
def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, round(p / 100.0 * len(s) + 0.5) - 1))
    return s[k]


def summary(lat_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": pct(lat_ms, 50),
        "p90_ms": pct(lat_ms, 90),
        "p99_ms": pct(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
        "mean_ms": (sum(lat_ms) / len(lat_ms)) if lat_ms else float("nan"),
    }


# ================================================================= phases
def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def closed_cell(
    conn: dict[str, Any], pids: list[int], op: str, conc: int, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    shares = split(conc, args.load_procs)
    start_at = time.time() + 2.0 + 0.05 * conc  # time for the processes to start and pre-connect
    specs = [
        ("closed", (conn, op, n, i, start_at, args.warmup, args.duration, f"{tag}-{conc}"))
        for i, n in enumerate(shares)
    ]
    import threading

    cpu_mark: dict[str, float] = {}

    def mark() -> None:  # server CPU over the measured window only
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        cpu_mark["start"] = cpu_seconds(pids)
        time.sleep(args.duration)
        cpu_mark["end"] = cpu_seconds(pids)

    th = threading.Thread(target=mark, daemon=True)
    th.start()
    res = run_procs(specs, timeout=args.warmup + args.duration + 120)
    th.join(10)
    lat = [x for r in res for x in r["lat"]]
    errors: dict[str, int] = {}
    for r in res:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ops = len(lat)
    cpu = cpu_mark.get("end", 0.0) - cpu_mark.get("start", 0.0)
    return {
        "op": op,
        "concurrency": conc,
        "ops": ops,
        "throughput": ops / args.duration,
        **summary(lat),
        "errors": errors,
        "server_cpu_ms_per_op": (cpu * 1000.0 / ops) if ops else None,
        "server_cpu_cores": cpu / args.duration,
    }


def paced_cell(conn: dict[str, Any], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    start_at = time.time() + 2.0
    (res,) = run_procs(
        [("paced", (conn, args.paced_rate, args.paced_seconds, start_at, tag))], timeout=args.paced_seconds + 120
    )
    all_lat = [x for v in res["lat"].values() for x in v]
    return {
        "rate": args.paced_rate,
        "seconds": args.paced_seconds,
        "ops": len(all_lat),
        **summary(all_lat),
        "by_verb": {k: {"ops": len(v), **summary(v)} for k, v in res["lat"].items()},
        "errors": res["errors"],
    }


def watch_cell(conn: dict[str, Any], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    rv = asyncio.run(list_rv(conn, "bench-watch"))
    shares = split(args.watchers, args.load_procs)
    ready_q = ctx.Queue()
    out_q = ctx.Queue()
    timeout = args.events / max(1.0, args.watch_rate) + 60
    procs = [
        ctx.Process(
            target=proc_main, args=("watchers", (conn, n, rv, args.events, ready_q, timeout, i), out_q), daemon=True
        )
        for i, n in enumerate(shares)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready_q.get(timeout=60)
        time.sleep(0.5)
        writer = ctx.Process(
            target=proc_main,
            args=("writer", (conn, args.events, args.watch_rate, time.time() + 1.0, tag), out_q),
            daemon=True,
        )
        writer.start()
        procs.append(writer)
        results = []
        for _ in procs:
            status, res = out_q.get(timeout=timeout + 60)
            if status != "ok":
                raise RuntimeError(res)
            results.append(res)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    wres = [r for r in results if "counts" in r]
    wr = next(r for r in results if "elapsed" in r)
    lat = [x for r in wres for x in r["lat"]]
    counts = [c for r in wres for c in r["counts"]]
    return {
        "watchers": args.watchers,
        "events": args.events,
        "write_rate": args.watch_rate,
        "write_seconds": wr["elapsed"],
        "write_p99_ms": pct(wr["lat"], 99),
        "deliveries": len(lat),
        "expected_deliveries": args.watchers * args.events,
        "complete_watchers": sum(1 for c in counts if c >= args.events),
        "min_events_seen": min(counts or [0]),
        "in_order": all(r["in_order"] for r in wres),
        "duplicates": sum(r["duplicates"] for r in wres),
        "deliveries_per_s": len(lat) / wr["elapsed"] if wr["elapsed"] else None,
        **summary(lat),
        "lat_sample": random.sample(lat, min(5000, len(lat))),
    }


# =================================================================== main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state-dir", help="bench a running `raykube up` cluster instead of starting a stack")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--ops", default="create,update,get,list")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--load-procs", type=int, default=2, help="load generator processes per cell")
    ap.add_argument("--paced-rate", type=float, default=20.0)
    ap.add_argument("--paced-seconds", type=float, default=15.0)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--watch-rate", type=float, default=200.0, help="events written per second (0 = unpaced)")
    ap.add_argument("--skip", default="", help="comma list of phases to skip: closed,paced,watch")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "apiserver_bench.json"))
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    stack: Stack | None = None

    def on_signal(signum: int, _: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.state_dir:
            conn, pids = conn_from_state(args.state_dir)
            target = f"raykube cluster {args.state_dir} (API server in a Ray actor)"
        else:
            stack = Stack()
            stack.start()
            conn, pids = stack.conn, stack.server_pids()
            target = "own stack: 3 raftstore processes + 1 API server process, no Ray"
        asyncio.run(prepare(conn))
        tag = f"{int(time.time()) % 100000}"
        result: dict[str, Any] = {
            "meta": {
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "target": target,
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_start": os.getloadavg(),
                "args": vars(args),
            },
            "closed": [],
            "paced": None,
            "watch": None,
        }
        if "closed" not in skip:
            for conc in [int(c) for c in args.concurrency.split(",")]:
                for op in args.ops.split(","):
                    print(f"... {op} at concurrency {conc}", file=sys.stderr, flush=True)
                    result["closed"].append(closed_cell(conn, pids, op, conc, args, tag))
        if "paced" not in skip:
            print(f"... paced mutations at {args.paced_rate}/s", file=sys.stderr, flush=True)
            result["paced"] = paced_cell(conn, args, tag)
        if "watch" not in skip:
            print(f"... watch fan-out {args.watchers} x {args.events}", file=sys.stderr, flush=True)
            result["watch"] = watch_cell(conn, args, tag)
        result["meta"]["loadavg_end"] = os.getloadavg()
        result["targets"] = targets_of(result)
        render(result)
        write_json(args.out, result)
        png = png_beside(args.out)
        plot(png, result)
        print(f"wrote {args.out} and {png}")
        return 0
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
