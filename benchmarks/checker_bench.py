"""Benchmark of the linearizability checker on a large synthetic history.

Generates a linearizable read/write/cas history (default: 100,000 ops over
1,000 keys, 16 client processes working 8 to a key, ~1% indeterminate ops),
checks it, and prints a table; with ``--broken`` it also plants one provably
stale read and confirms the checker rejects it, both with the quick stale-read
scan and with the full WGL search alone.  Results go to ``--out`` as JSON.

Run from the project root::

    python -m benchmarks.checker_bench [--broken] [--ops N] [--keys K]

Exit status is 1 if any verdict is not the expected one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

try:
    import raftstore  # noqa: F401
except ImportError:  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from raftstore.chaos.checkers.linearizable import LinearizabilityResult, check_linearizable
from raftstore.chaos.synth import generate_register_history, plant_stale_read

TARGET_SECONDS = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=1_000)
    ap.add_argument("--processes", type=int, default=16)
    ap.add_argument("--group-size", type=int, default=8, help="processes working on one key at a time")
    ap.add_argument("--info-rate", type=float, default=0.01)
    ap.add_argument("--value-range", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=None, help="checker timeout, seconds")
    ap.add_argument("--broken", action="store_true", help="also plant a stale read and expect rejection")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/checker_bench.json"))
    return ap.parse_args(argv)


def run_check(name: str, history: Any, expected: bool, *, quick: bool, timeout: float | None) -> dict[str, Any]:
    result: LinearizabilityResult = check_linearizable(history, timeout=timeout, quick_reject=quick)
    slowest = max(result.keys.values(), key=lambda k: k.elapsed, default=None)
    return {
        "name": name,
        "quick_reject": quick,
        "expected": expected,
        "verdict": result.valid,
        "as_expected": result.valid is expected,
        "check_seconds": result.elapsed,
        "ops": result.op_count,
        "keys": result.key_count,
        "ops_per_second": result.op_count / result.elapsed if result.elapsed else None,
        "failed_keys": result.failed_keys[:10],
        "unknown_keys": len(result.unknown_keys),
        "search_steps": sum(k.steps for k in result.keys.values()),
        "slowest_key": None
        if slowest is None
        else {"key": slowest.key, "seconds": slowest.elapsed, "steps": slowest.steps},
        "explanation": None if result.valid is not False else result.explain()[:2000],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()

    started = time.monotonic()
    history = generate_register_history(
        args.ops,
        n_keys=args.keys,
        n_processes=args.processes,
        group_size=args.group_size,
        seed=args.seed,
        info_rate=args.info_rate,
        value_range=args.value_range,
    )
    gen_seconds = time.monotonic() - started

    runs = [run_check("clean", history, True, quick=True, timeout=args.timeout)]
    planted: dict[str, Any] | None = None
    if args.broken:
        op = plant_stale_read(history, seed=args.seed)
        if op is None:
            console.print("[red]no read qualifies for a planted stale read[/red]")
            return 1
        planted = {"key": op.key, "index": op.index, "process": op.process, "value": op.value}
        for quick in (True, False):
            run = run_check("stale read", history, False, quick=quick, timeout=args.timeout)
            run["as_expected"] = run["as_expected"] and run["failed_keys"] == [op.key]
            runs.append(run)

    table = Table(title=f"linearizability checker ({os.cpu_count()} CPUs, Python {platform.python_version()})")
    for col in ("history", "method", "ops", "keys", "gen", "check", "verdict", "ops/s"):
        table.add_column(col, justify="left" if col in ("history", "method", "verdict") else "right", no_wrap=True)
    for run in runs:
        ok = "green" if run["as_expected"] else "red"
        table.add_row(
            run["name"],
            "scan+WGL" if run["quick_reject"] else "WGL",
            f"{run['ops']:,}",
            f"{run['keys']:,}",
            f"{gen_seconds:.2f}s",
            f"{run['check_seconds']:.2f}s",
            f"[{ok}]{run['verdict']}[/{ok}]",
            f"{run['ops_per_second']:,.0f}" if run["ops_per_second"] else "-",
        )
    console.print(table)
    main_run = runs[0]
    within = main_run["check_seconds"] <= TARGET_SECONDS
    console.print(
        f"check of the linearizable history: {main_run['check_seconds']:.2f}s "
        f"({'within' if within else 'OVER'} the {TARGET_SECONDS:.0f}s target)"
    )
    if planted is not None:
        console.print(f"planted stale read: {planted}")

    report = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "history_events": len(history),
        "generate_seconds": gen_seconds,
        "target_seconds": TARGET_SECONDS,
        "within_target": within,
        "planted": planted,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"wrote {args.out}")
    return 0 if all(r["as_expected"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
