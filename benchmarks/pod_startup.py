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

The measurement lives in ``pod_startup_run`` (``StartupRun``), the table,
JSON document and plot in ``pod_startup_report``; this script is the CLI.
Concurrency: the run is one asyncio loop (``asyncio.run``) in the main
thread; the cluster is brought up and down around it (``cluster_harness``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The project root first (this checkout's cluster package, not an installed
# one), then this folder for the sibling modules.
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# The run and the report live beside this script (pod_startup_run,
# pod_startup_report); their names are re-exported for whoever imported them
# from here.
from cluster_harness import GCPauses, add_cluster_args, console_for, mark_end, run_on_own_cluster
from pod_startup_report import K8S_SLO_P99_S, TARGET_P99_RUNNING_S, fmt_ms, pct, plot, report, stats
from pod_startup_run import LABEL, NAMESPACE, RUN_LABEL, StartupRun, pod_manifest

from cluster import launcher

__all__ = [
    "K8S_SLO_P99_S",
    "LABEL",
    "NAMESPACE",
    "RUN_LABEL",
    "TARGET_P99_RUNNING_S",
    "StartupRun",
    "fmt_ms",
    "main",
    "pct",
    "plot",
    "pod_manifest",
    "report",
    "stats",
]


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
