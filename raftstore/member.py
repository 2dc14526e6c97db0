"""One raftstore member process: ``raftstore serve`` runs this in the foreground.

It owns ``<data-dir>/<name>/``: the journal and its meta file, the snapshot
(``dump``), ``member.pid``, and ``raft-events.jsonl`` (one line per role, term
or leader change, for the consensus lab's plots). The Raft thread and the
asyncio loop (client endpoint, metrics) share the process; SIGTERM and SIGINT
stop both cleanly, SIGKILL is what the fault tests use.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
from dataclasses import asdict

from .config import ClusterConfig
from .endpoint import Endpoint
from .metrics import MetricsServer
from .raftnode import RaftNode, RoleChange


def member_dir(data_dir: str, name: str) -> str:
    return os.path.join(data_dir, name)


async def run_member(config: ClusterConfig, name: str, data_dir: str, *, unsafe_local_reads: bool = False) -> None:
    spec = config.member(name)
    mdir = member_dir(data_dir, name)
    os.makedirs(mdir, exist_ok=True)
    events_path = os.path.join(mdir, "raft-events.jsonl")
    events_file = open(events_path, "a", buffering=1)

    def on_role_change(change: RoleChange) -> None:  # Raft thread
        events_file.write(json.dumps({"member": name, **asdict(change)}) + "\n")

    node = RaftNode(config, spec, mdir, on_role_change=on_role_change)
    endpoint = Endpoint(node, unsafe_local_reads=unsafe_local_reads)
    metrics = MetricsServer(endpoint)
    await endpoint.start()
    await metrics.start()
    node.start()
    # Keep full collections short: the modules and objects of startup are never garbage (see
    # cluster.runner.process.freeze_startup_heap; raftstore must not import cluster).
    gc.collect()
    gc.freeze()
    pidfile = os.path.join(mdir, "member.pid")
    with open(pidfile + ".tmp", "w") as f:  # readers must never see it empty
        f.write(str(os.getpid()))
    os.replace(pidfile + ".tmp", pidfile)
    logging.getLogger("raftstore").info(
        "member %s serving clients on %s, raft on %s, metrics on %s", name, spec.client, spec.raft, spec.metrics
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await endpoint.stop()
    await metrics.stop()
    node.stop()
    events_file.close()


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="raftstore serve", description="run one raftstore member in the foreground")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument(
        "--unsafe-local-reads",
        action="store_true",
        help="PLANTED BUG for the consensus lab: answer linearizable reads from local state",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pysyncobj logs CRITICAL "truncating already-applied log entries" for
    # every overlapping append-entries; the journal turns those truncations
    # into no-ops unless the terms conflict (journal.py), so they are noise.
    logging.getLogger("pysyncobj.syncobj").addFilter(
        lambda record: "truncating already-applied" not in record.getMessage()
    )
    logging.getLogger("pysyncobj").setLevel(logging.ERROR)
    # Two busy threads share the GIL; the default 5 ms switch interval would
    # add up to 5 ms to every hand-off between the client loop and Raft.
    sys.setswitchinterval(0.0002)
    config = ClusterConfig.load(args.data_dir)
    asyncio.run(run_member(config, args.name, args.data_dir, unsafe_local_reads=args.unsafe_local_reads))


if __name__ == "__main__":
    main()
