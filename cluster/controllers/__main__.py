"""``python -m cluster.controllers --api URL --token-file F --ca F --profile demo``:
run the controller manager (ReplicaSet, Deployment, node lifecycle, garbage
collector, namespace, pod GC). With ``--leader-elect true`` (default) it acts
only while holding the ``kube-system/kube-controller-manager`` Lease, so two
replicas can run. Runs until SIGINT/SIGTERM (then releases the Lease).
"""

from __future__ import annotations

import argparse
import logging

from ..profiles import PROFILES
from ..runner.component import add_common_args, client_from_args, election_from_args, main_loop, run_with_election
from .manager import ALL_CONTROLLERS, ControllerManager


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.controllers", description=__doc__.split("\n")[0])
    add_common_args(p)
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES), help="node-lifecycle timing profile")
    p.add_argument(
        "--controllers",
        default=",".join(ALL_CONTROLLERS),
        help=f"comma-separated subset of {','.join(ALL_CONTROLLERS)}",
    )
    p.add_argument("--resync-period", type=float, default=30.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    enabled = tuple(c.strip() for c in args.controllers.split(",") if c.strip())
    unknown = set(enabled) - set(ALL_CONTROLLERS)
    if unknown:
        p.error(f"unknown controllers: {', '.join(sorted(unknown))}")

    async def run() -> None:
        client = client_from_args(args, "raykube-controller-manager")

        async def work() -> None:
            await ControllerManager(client, args.profile, controllers=enabled, resync_period=args.resync_period).run()

        try:
            await run_with_election(client, election_from_args(args, "kube-controller-manager"), work)
        finally:
            await client.close()

    return main_loop(run)


if __name__ == "__main__":
    raise SystemExit(main())
