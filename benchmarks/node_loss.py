#!/usr/bin/env python3
"""Node loss: time from a node's power cut to all replicas Ready again on the surviving nodes.

    python benchmarks/node_loss.py [--replicas 6] [--kills 5] [--out benchmarks/out/node_loss.json] [--keep]

Brings up its own raykube cluster (``cluster.launcher.up``: Ray on loopback,
raftstore, API server, scheduler, controller manager and 3 kubelet actors,
timing profile ``demo``: 2 s heartbeat, 5 s node-monitor grace, eviction at
once) in a temporary state dir on a free port, applies a Deployment made from
``examples/web.yaml`` (``raykube/web`` with an HTTP readiness probe) scaled to
``--replicas`` (6), and then ``--kills`` (5) times:

1. waits until the cluster is settled: every node Ready without
   ``node.kubernetes.io/*`` taints, exactly ``replicas`` pods of the
   Deployment, all Ready, none terminating;
2. picks a node that runs at least one replica (the least-often killed one,
   then the one with the most replicas) and powers it off
   (``cluster.launcher.nodes.kill_cluster_node``: the kubelet actor and all its pod
   processes SIGKILLed at once);
3. measures, from the kill, as observed by watches on pods and nodes (no
   polling of the API): the node's Ready condition leaving ``True``
   (NotReady/Unknown), the node's pods evicted (deletionTimestamp set), the
   first replacement created, and **all replicas Ready on surviving nodes**
   (Ready condition True, not terminating, node != the killed one, count ==
   replicas) — the number judged;
4. adds the node back under the same name and index
   (``cluster.launcher.nodes.add_cluster_node``) and waits until it is Ready and the
   Deployment is settled again (the evicted pods finish terminating once their
   kubelet is back).

Target (PASS/FAIL, exit code 0/1): median kill -> all replicas Ready <= 10 s
with the demo profile. With Kubernetes' defaults (kubelet lease renewal every
10 s, node-monitor-grace-period 40 s, pods tolerate not-ready/unreachable for
300 s) the same recovery takes almost 6 minutes: ~40-45 s to NotReady, then
300 s until eviction, then the replacements' start-up.

Ray may print "(raylet) A worker died or was killed ... SYSTEM_ERROR" after
a kill: that is the SIGKILLed kubelet actor's worker, i.e. the power cut
itself, and expected.

Container restarts of the benchmark's pods are recorded (a healthy run has
none), as are sockets of other processes inside this cluster's pod address
ranges before it starts (there should be none: each cluster has its own
address slot, ``cluster.addresses``).

Results: a rich table per kill with the median, JSON (``--out``, default
``benchmarks/out/node_loss.json``) and a PNG beside it (ready replicas over
time, with kill, NotReady, recovered and node-back markers). ``--keep``
leaves the cluster (and its state dir) up; otherwise it is stopped in
``finally`` with ``raykube down`` semantics (``cluster_harness``, ``cluster.launcher.down``: only
this state dir's Ray head and actors), and the state dir is removed on a pass
(kept, with its path printed, on a failure, for the logs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The project root first (this checkout's cluster package, not an installed
# one), then this folder for the sibling modules.
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# The run and the report live beside this script (node_loss_run,
# node_loss_report); their names are re-exported for whoever imported them
# from here.
from cluster_harness import add_cluster_args, console_for, mark_end, run_on_own_cluster
from node_loss_report import K8S, TARGET_MEDIAN_S, fmt, plot, report
from node_loss_run import (
    APP,
    NAMESPACE,
    NODE_TAINT_PREFIX,
    NodeLossRun,
    deployment_manifest,
    node_index,
    node_ready_status,
    node_taints,
    terminating,
)

from cluster import launcher

__all__ = [
    "APP",
    "K8S",
    "NAMESPACE",
    "NODE_TAINT_PREFIX",
    "TARGET_MEDIAN_S",
    "NodeLossRun",
    "deployment_manifest",
    "fmt",
    "main",
    "node_index",
    "node_ready_status",
    "node_taints",
    "plot",
    "report",
    "terminating",
]


# ==================================================================== main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--container-port", type=int, default=8080, help="the pods' port")
    p.add_argument("--pause", type=float, default=2.0, help="seconds of calm before each kill")
    p.add_argument("--recover-timeout", type=float, default=90.0)
    p.add_argument("--settle-timeout", type=float, default=120.0)
    add_cluster_args(p, "node_loss.json")
    args = p.parse_args()
    console = console_for(170)

    def measure(state_dir: str, meta: dict[str, Any]) -> dict[str, Any]:
        async def go() -> NodeLossRun:
            client = launcher.client_for(state_dir, retry_deadline=60)
            run = NodeLossRun(args, state_dir, client, console)
            try:
                await run.run()
            except Exception as exc:  # noqa: BLE001 - report what was measured, then fail
                run.error = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]benchmark stopped: {run.error}[/red]")
                console.print(traceback.format_exc(), markup=False, highlight=False)
            finally:
                await client.close()
            return run

        # One Ray connection for the whole run: kill_cluster_node / add_cluster_node use it (from a thread).
        with launcher.ray_connection(launcher.load_state(launcher.Paths(state_dir)), launcher.Paths(state_dir)):
            run = asyncio.run(go())
        mark_end(meta)
        result = report(run, args, console, meta)
        if getattr(run, "error", None):
            result["error"] = run.error
            result["pass"] = False
        return result

    return run_on_own_cluster(
        args, console, title="raykube node-loss benchmark", prefix="rk-nodeloss-", nodes=3, measure=measure, plot=plot
    )


if __name__ == "__main__":
    sys.exit(main())
