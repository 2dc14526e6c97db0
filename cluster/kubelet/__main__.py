"""``python -m cluster.kubelet``: run one kubelet as a plain process.

SIGTERM/SIGINT: orderly stop (containers stopped, 1 s grace). SIGUSR2: power
off - every container process group SIGKILLed, then the kubelet SIGKILLs
itself (what ``raykube node kill`` does to an actor-hosted kubelet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from .config import KubeletConfig
from .kubelet import Kubelet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m cluster.kubelet", description="raykube kubelet (one node)")
    ap.add_argument("--name", required=True, help="node name")
    ap.add_argument("--api", required=True, help="API server URL")
    ap.add_argument("--token-file", help="file holding this node's bearer token")
    ap.add_argument("--token", help="bearer token (prefer --token-file)")
    ap.add_argument("--ca", help="CA certificate of the API server (PEM)")
    ap.add_argument("--index", type=int, default=0, help="node number: picks InternalIP and podCIDR")
    ap.add_argument("--state-dir", required=True, help="pod working directories and logs")
    ap.add_argument("--profile", default="demo", choices=["demo", "kubernetes"])
    ap.add_argument("--node-ip")
    ap.add_argument("--pod-cidr")
    ap.add_argument("--port", type=int, default=0, help="kubelet HTTP port on the node IP (0: any free port)")
    ap.add_argument("--cpu", help="CPU capacity (default: host CPUs)")
    ap.add_argument("--memory", help="memory capacity, e.g. 8Gi (default: host RAM)")
    ap.add_argument("--max-pods", type=int, default=110)
    ap.add_argument("--label", action="append", default=[], help="KEY=VALUE node label (repeatable)")
    ap.add_argument("--cgroups", default="auto", choices=["auto", "v2", "v1", "off"])
    ap.add_argument("--backoff-base", type=float)
    ap.add_argument("--backoff-max", type=float)
    ap.add_argument("--resync", type=float, help="pod resync period (s)")
    ap.add_argument("--heartbeat", type=float, help="lease renewal period (s)")
    ap.add_argument("--no-events", action="store_true")
    ap.add_argument("--ready-file", help="write {pid, port, ...} JSON here once registered")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> KubeletConfig:
    labels = dict(kv.split("=", 1) for kv in a.label if "=" in kv)
    return KubeletConfig(
        name=a.name,
        api_url=a.api,
        state_dir=a.state_dir,
        index=a.index,
        token=a.token,
        token_file=a.token_file,
        ca_file=a.ca,
        profile=a.profile,
        node_ip=a.node_ip,
        pod_cidr=a.pod_cidr,
        kubelet_port=a.port,
        cpu=a.cpu,
        memory=a.memory,
        max_pods=a.max_pods,
        labels=labels,
        cgroups=a.cgroups,
        backoff_base=a.backoff_base,
        backoff_max=a.backoff_max,
        resync_seconds=a.resync,
        heartbeat_seconds=a.heartbeat,
        events=not a.no_events,
    )


async def amain(a: argparse.Namespace) -> int:
    kl = Kubelet(config_from_args(a))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def power_off() -> None:
        kl.power_off()
        os.kill(os.getpid(), signal.SIGKILL)

    loop.add_signal_handler(signal.SIGUSR2, power_off)
    await kl.start()
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {
                    "pid": os.getpid(),
                    "port": kl.server.port,
                    "nodeIP": kl.node_ip,
                    "podCIDR": kl.config.pod_cidr,
                    "limits": kl.runtime.limiter.memory if kl.runtime else None,
                },
                f,
            )
        os.replace(tmp, a.ready_file)
    await stop.wait()
    await kl.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, a.log_level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(amain(a))


if __name__ == "__main__":
    sys.exit(main())
