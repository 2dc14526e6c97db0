"""``raftstore chaos``: run the workload under nemeses, check the history, write a report.

    raftstore chaos --nemesis leader-kill,partition-halves --duration 60 --clients 8 --out DIR

Exit status: 0 when every checker passes, 1 when one finds a violation (or on
an error), 3 when a verdict is "unknown" (e.g. the linearizability search
timed out).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from raftstore.chaos.nemesis import NEMESES, PROCESS_NEMESES, parse_nemeses

EPILOG = (
    "nemeses: "
    + "; ".join(f"{k}: {v}" for k, v in NEMESES.items())
    + (
        ". With --endpoints only admin-endpoint faults work ("
        + ", ".join(n for n in NEMESES if n not in PROCESS_NEMESES)
        + "): killing and pausing needs the member processes of the lab's own cluster."
    )
)


def add_chaos_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "chaos",
        help="consensus lab: workload under faults, Jepsen-style checks, report and plots",
        description="Run concurrent clients against raftstore while nemeses inject faults, then check the "
        "history (linearizability, lost writes, watch) and write results.json, report.md and plots.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--nemesis",
        default="leader-kill,partition-halves",
        help="comma-separated nemeses (or all / none); default: %(default)s",
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of workload (default %(default)s)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    p.add_argument("--out", required=True, help="output directory (its data/ holds the lab's own members)")
    p.add_argument(
        "--endpoints",
        default=argparse.SUPPRESS,
        help="use an existing cluster (host:port,...): only admin-endpoint faults are possible",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the nemesis and workload RNGs")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between two faults of one nemesis")
    p.add_argument("--hold", type=float, default=None, help="seconds a fault lasts (default: from the interval)")
    p.add_argument("--keys", type=int, default=16, help="independent register keys (default %(default)s)")
    p.add_argument("--set-keys", type=int, default=4, help="sets for the lost-write check (default %(default)s)")
    p.add_argument("--op-timeout", type=float, default=2.0, help="seconds before an op gives up (fail or info)")
    p.add_argument(
        "--attempt-timeout",
        type=float,
        default=0.5,
        help="seconds one attempt waits before trying another member (default %(default)s)",
    )
    p.add_argument(
        "--checker-timeout",
        type=float,
        default=60.0,
        help="linearizability search budget; undecided keys are reported as unknown",
    )
    p.add_argument(
        "--unsafe-local-reads",
        action="store_true",
        help="start the members with the PLANTED BUG (reads from local state); adds pinned readers",
    )
    p.add_argument(
        "--pinned-readers", action="store_true", help="add one read-only client per member that never fails over"
    )
    p.add_argument(
        "--overlap", action="store_true", help="let faults of different nemeses overlap (default: one fault at a time)"
    )
    p.add_argument("--slow-disk-ms", type=float, default=50.0, help="fsync delay of the slow-disk nemesis")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_chaos)
    return p


def cmd_chaos(args: argparse.Namespace) -> int:
    try:
        nemeses = parse_nemeses(args.nemesis)
    except ValueError as exc:
        print(f"raftstore chaos: {exc}", file=sys.stderr)
        return 2
    endpoints = getattr(args, "endpoints", None)
    eps = [e.strip() for e in endpoints.split(",") if e.strip()] if endpoints else None
    if eps:
        bad = [n for n in nemeses if n in PROCESS_NEMESES]
        if bad:
            print(
                f"raftstore chaos: with --endpoints only admin-endpoint faults are possible "
                f"({', '.join(n for n in NEMESES if n not in PROCESS_NEMESES)}); "
                f"{', '.join(bad)} need the lab's own members (drop --endpoints)",
                file=sys.stderr,
            )
            return 2
        if args.unsafe_local_reads:
            print(
                "raftstore chaos: --unsafe-local-reads needs the lab's own members (drop --endpoints)", file=sys.stderr
            )
            return 2
        print(
            "raftstore chaos: using existing members: only admin-endpoint faults (partitions, slow disk)",
            file=sys.stderr,
        )
    if args.duration <= 0 or args.clients < 1 or args.keys < 1 or args.interval <= 0:
        print("raftstore chaos: --duration, --clients, --keys and --interval must be positive", file=sys.stderr)
        return 2

    from raftstore.chaos.runner import RunConfig, run_chaos, summary_text

    cfg = RunConfig(
        nemeses=nemeses,
        duration=args.duration,
        clients=args.clients,
        out=args.out,
        endpoints=eps,
        seed=args.seed,
        interval=args.interval,
        hold=args.hold,
        keys=args.keys,
        set_keys=args.set_keys,
        unsafe_local_reads=args.unsafe_local_reads,
        pinned_readers=args.pinned_readers,
        op_timeout=args.op_timeout,
        attempt_timeout=args.attempt_timeout,
        checker_timeout=args.checker_timeout,
        slow_disk_seconds=args.slow_disk_ms / 1000.0,
        overlap=args.overlap,
        progress=False if args.no_progress else None,
        plots=not args.no_plots,
    )
    results = run_chaos(cfg)
    if getattr(args, "output", "text") == "json":
        print(
            json.dumps(
                {
                    k: results[k]
                    for k in (
                        "valid",
                        "operations",
                        "availability",
                        "write_unavailability",
                        "elections",
                        "checker_seconds",
                        "lost_acknowledged_writes",
                        "problems",
                    )
                },
                default=str,
            )
        )
    else:
        print(summary_text(results, args.out))
    v = results["valid"]
    return 0 if v is True else (1 if v is False else 3)
