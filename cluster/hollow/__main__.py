"""``python -m cluster.hollow``: run a fleet of hollow nodes in one process (SIGTERM/SIGINT to stop)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from . import HollowFleet


async def amain(a: argparse.Namespace) -> int:
    token = a.token or open(a.token_file).read().strip()
    fleet = HollowFleet(
        api_url=a.api,
        token=token,
        count=a.count,
        state_dir=a.state_dir,
        prefix=a.prefix,
        index_base=a.index_base,
        ca_file=a.ca,
        profile=a.profile,
        cpu=a.cpu,
        memory=a.memory,
        max_pods=a.max_pods,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await fleet.start()
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            json.dump(fleet.info(), f)
    await stop.wait()
    await fleet.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cluster.hollow", description="a fleet of hollow raykube nodes")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default="hollow-")
    ap.add_argument("--index-base", type=int, default=1000, help="node index of the first node (IP/podCIDR)")
    ap.add_argument("--api", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--token")
    ap.add_argument("--ca")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--profile", default="kubernetes", choices=["demo", "kubernetes"])
    ap.add_argument("--cpu", default="4")
    ap.add_argument("--memory", default="16Gi")
    ap.add_argument("--max-pods", type=int, default=110)
    ap.add_argument("--ready-file")
    ap.add_argument("--log-level", default="WARNING")
    a = ap.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, a.log_level.upper(), logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(amain(a))


if __name__ == "__main__":
    sys.exit(main())
