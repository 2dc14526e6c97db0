"""``python -m cluster.scheduler --api URL --token-file F --ca F``: run the scheduler.

With ``--leader-elect true`` (default) it schedules only while it holds the
``kube-system/kube-scheduler`` Lease, so two replicas can run. Runs until
SIGINT/SIGTERM (then releases the Lease).
"""

from __future__ import annotations

import argparse
import logging

from ..runner.component import add_common_args, client_from_args, election_from_args, main_loop, run_with_election
from .scheduler import Scheduler, SchedulerConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.scheduler", description=__doc__.split("\n")[0])
    add_common_args(p)
    p.add_argument("--scheduler-name", default="default-scheduler")
    p.add_argument("--bind-concurrency", type=int, default=64)
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = SchedulerConfig(
        scheduler_name=args.scheduler_name,
        bind_concurrency=args.bind_concurrency,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
    )

    async def run() -> None:
        client = client_from_args(args, "raykube-scheduler")

        async def work() -> None:
            await Scheduler(client, cfg).run()

        try:
            await run_with_election(client, election_from_args(args, "kube-scheduler"), work)
        finally:
            await client.close()

    return main_loop(run)


if __name__ == "__main__":
    raise SystemExit(main())
