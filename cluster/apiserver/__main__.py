"""``python -m cluster.apiserver``: run one API server process in the foreground.

Example::

    python -m cluster.apiserver --raftstore-endpoints 127.0.0.1:32379,127.0.0.1:32389,127.0.0.1:32399 \\
        --port 6443 --tls-cert apiserver.crt --tls-key apiserver.key --tokens-file tokens.json

Runs until SIGINT/SIGTERM. One asyncio loop; see ``server.py`` for the
concurrency model.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .server import APIServer, APIServerConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.apiserver", description=__doc__.split("\n")[0])
    p.add_argument("--raftstore-endpoints", required=True, help="comma-separated host:port of raftstore members")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tokens-file")
    p.add_argument("--max-body-bytes", type=int, default=3 * 1024 * 1024)
    p.add_argument("--max-watches", type=int, default=10_000)
    p.add_argument("--service-cidr", default="127.96.0.0/16")
    p.add_argument(
        "--default-toleration-seconds",
        type=int,
        default=300,
        help="new pods tolerate not-ready/unreachable nodes this long (DefaultTolerationSeconds)",
    )
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = APIServerConfig(
        raftstore_endpoints=[e.strip() for e in args.raftstore_endpoints.split(",") if e.strip()],
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tokens_file=args.tokens_file,
        max_body_bytes=args.max_body_bytes,
        max_watches=args.max_watches,
        service_cidr=args.service_cidr,
        default_toleration_seconds=args.default_toleration_seconds,
    )

    async def run() -> None:
        server = APIServer(cfg)
        await server.start()
        print(f"serving at {server.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
