"""The ``raftstore`` command.

Cluster lifecycle (``up``, ``down``, ``serve``), etcdctl-like verbs (``put``,
``get``, ``del``, ``watch``, ``lease``, ``compact``, ``status``) and the
consensus lab (``chaos``). ``-o json`` gives one JSON document per result for
scripts; errors are one line on stderr with exit code 1 (2 for usage).

Endpoints come from ``--endpoints``, ``RAFTSTORE_ENDPOINTS`` or the
``cluster.json`` of ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from .client import KeyValue, RaftstoreClient, RaftstoreError


def _out(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.output == "json":
        print(json.dumps(obj, default=_json_default), flush=True)
    else:
        print(text, flush=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    if isinstance(o, KeyValue):
        return {
            "key": o.key,
            "value": o.value,
            "create_revision": o.create_revision,
            "mod_revision": o.mod_revision,
            "version": o.version,
            "lease": o.lease,
        }
    raise TypeError(type(o).__name__)


def _endpoints(args: argparse.Namespace) -> list[str]:
    if getattr(args, "endpoints", None):
        return [e for e in args.endpoints.split(",") if e]
    if os.environ.get("RAFTSTORE_ENDPOINTS"):
        return [e for e in os.environ["RAFTSTORE_ENDPOINTS"].split(",") if e]
    if getattr(args, "data_dir", None):
        from .config import ClusterConfig

        return ClusterConfig.load(args.data_dir).endpoints
    raise SystemExit("raftstore: no endpoints: give --endpoints, RAFTSTORE_ENDPOINTS or --data-dir")


def _kv_text(kv: KeyValue) -> str:
    return f"{kv.key.decode('utf-8', 'replace')}\n{kv.value.decode('utf-8', 'replace')}"


# ---- lifecycle -------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from .localcluster import LocalCluster

    cluster = LocalCluster.create(args.data_dir, members=args.members, base_port=args.port)
    extra = {m.name: ["--unsafe-local-reads"] for m in cluster.config.members} if args.unsafe_local_reads else None
    cluster.start(extra_args=extra)
    try:
        cluster.wait_serving(timeout=args.timeout)

        async def leader() -> dict[str, Any]:
            async with RaftstoreClient(cluster.endpoints) as c:
                return await c.wait_for_leader(args.timeout)

        asyncio.run(leader())
    except Exception as exc:
        cluster.stop()
        print(f"raftstore: cluster did not come up: {exc}", file=sys.stderr)
        return 1
    print("endpoints=" + ",".join(cluster.endpoints), flush=True)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .localcluster import LocalCluster

    try:
        cluster = LocalCluster(args.data_dir)
    except FileNotFoundError as exc:
        print(f"raftstore: {exc}", file=sys.stderr)
        return 1
    cluster.stop()
    print(f"stopped {len(cluster.config.members)} members in {cluster.data_dir}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from . import member

    argv = ["--data-dir", args.data_dir, "--name", args.name]
    if args.unsafe_local_reads:
        argv.append("--unsafe-local-reads")
    if args.create:
        from .config import ClusterConfig

        if not os.path.exists(os.path.join(args.data_dir, "cluster.json")):
            ClusterConfig.local(args.members, args.port).save(args.data_dir)
    member.main(argv)
    return 0


# ---- client verbs ----------------------------------------------------------
async def _with_client(args: argparse.Namespace, fn: Any) -> int:
    async with RaftstoreClient(_endpoints(args), timeout=args.timeout) as c:
        return await fn(c)


def cmd_put(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        res = await c.put(args.key, args.value, lease=args.lease)
        _out(args, {"revision": res["revision"]}, "OK")
        return 0

    return asyncio.run(_with_client(args, run))


def cmd_get(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        r = await c.get(
            args.key, prefix=args.prefix, revision=args.rev, limit=args.limit, serializable=args.consistency == "s"
        )
        _out(
            args,
            {"kvs": r.kvs, "count": r.count, "more": r.more, "revision": r.revision},
            "\n".join(_kv_text(kv) for kv in r.kvs),
        )
        return 0

    return asyncio.run(_with_client(args, run))


def cmd_del(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        res = await c.delete(args.key, prefix=args.prefix)
        _out(args, {"deleted": res["deleted"], "revision": res["revision"]}, str(res["deleted"]))
        return 0

    return asyncio.run(_with_client(args, run))


def cmd_watch(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        w = c.watch(args.key, prefix=args.prefix, start_revision=args.rev)
        seen = 0
        async for resp in w:
            for e in resp.events:
                _out(args, {"type": e.type, "kv": e.kv, "revision": e.revision}, f"{e.type}\n{_kv_text(e.kv)}")
                seen += 1
                if args.count and seen >= args.count:
                    await w.cancel()
                    return 0
        return 0

    try:
        return asyncio.run(_with_client(args, run))
    except KeyboardInterrupt:
        return 0


def cmd_lease(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        if args.lease_cmd == "grant":
            lid = await c.lease_grant(args.ttl)
            _out(args, {"id": lid, "ttl": args.ttl}, f"lease {lid:x} granted with TTL({args.ttl}s)")
        elif args.lease_cmd == "keepalive":
            lid = int(args.id, 16) if not args.id.isdigit() else int(args.id)
            while True:
                ttl = await c.lease_keepalive(lid)
                _out(args, {"id": lid, "ttl": ttl}, f"lease {lid:x} keepalived with TTL({ttl})")
                if args.once:
                    return 0
                await asyncio.sleep(max(0.5, ttl / 3))
        elif args.lease_cmd == "revoke":
            lid = int(args.id, 16) if not args.id.isdigit() else int(args.id)
            res = await c.lease_revoke(lid)
            _out(args, res, f"lease {lid:x} revoked")
        return 0

    return asyncio.run(_with_client(args, run))


def cmd_compact(args: argparse.Namespace) -> int:
    async def run(c: RaftstoreClient) -> int:
        res = await c.compact(args.rev)
        _out(args, res, f"compacted revision {args.rev}")
        return 0

    return asyncio.run(_with_client(args, run))


STATUS_COLUMNS = ("name", "endpoint", "pid", "role", "term", "leader", "commit_index", "applied_index", "revision")


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        from .statusview import run_status_view

        return run_status_view(_endpoints(args), interval=args.interval, iterations=args.iterations or None)

    async def run(c: RaftstoreClient) -> int:
        rows = await c.cluster_status()
        if args.output == "json":
            print(json.dumps(rows, default=_json_default))
            return 0 if all("error" not in r for r in rows) else 1
        from rich.console import Console
        from rich.table import Table

        t = Table(title="raftstore members")
        for col in STATUS_COLUMNS:
            t.add_column(col)
        for r in rows:
            if "error" in r:
                t.add_row("?", r["endpoint"], "-", f"[red]{r['error']}[/red]", *["-"] * 5)
            else:
                t.add_row(*(str(r.get(col, "")) for col in STATUS_COLUMNS))
        Console().print(t)
        return 0 if all("error" not in r for r in rows) else 1

    return asyncio.run(_with_client(args, run))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raftstore", description="an etcd-style Raft key-value store on pysyncobj")
    p.add_argument("--endpoints", help="comma-separated host:port list (or RAFTSTORE_ENDPOINTS)")
    p.add_argument("--data-dir", help="read endpoints from DIR/cluster.json")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds before a call gives up")
    sub = p.add_subparsers(dest="cmd", required=True)
    # The global options are accepted after the verb too, as etcdctl does.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoints", default=argparse.SUPPRESS)
    common.add_argument("--data-dir", default=argparse.SUPPRESS)
    common.add_argument("-o", "--output", choices=["text", "json"], default=argparse.SUPPRESS)
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS)

    up = sub.add_parser("up", help="start a local cluster in the background")
    up.add_argument("--data-dir", required=True)
    up.add_argument("--members", type=int, default=3)
    up.add_argument("--port", type=int, default=None, help="base port (member i uses base+10i .. base+10i+2)")
    up.add_argument("--unsafe-local-reads", action="store_true", help=argparse.SUPPRESS)
    up.set_defaults(fn=cmd_up)

    down = sub.add_parser("down", help="stop a local cluster")
    down.add_argument("--data-dir", required=True)
    down.set_defaults(fn=cmd_down)

    serve = sub.add_parser("serve", help="run one member in the foreground")
    serve.add_argument("--data-dir", required=True)
    serve.add_argument("--name", required=True)
    serve.add_argument("--create", action="store_true", help="write a local cluster.json if none exists")
    serve.add_argument("--members", type=int, default=3)
    serve.add_argument("--port", type=int, default=32379)
    serve.add_argument(
        "--unsafe-local-reads",
        action="store_true",
        help="PLANTED BUG: answer linearizable reads from local state without confirming leadership",
    )
    serve.set_defaults(fn=cmd_serve)

    put = sub.add_parser("put", parents=[common])
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--lease", type=lambda s: int(s, 0), default=0)
    put.set_defaults(fn=cmd_put)

    get = sub.add_parser("get", parents=[common])
    get.add_argument("key")
    get.add_argument("--prefix", action="store_true")
    get.add_argument("--rev", type=int, default=0)
    get.add_argument("--limit", type=int, default=0)
    get.add_argument("--consistency", choices=["l", "s"], default="l", help="l: linearizable, s: serializable")
    get.set_defaults(fn=cmd_get)

    d = sub.add_parser("del", parents=[common])
    d.add_argument("key")
    d.add_argument("--prefix", action="store_true")
    d.set_defaults(fn=cmd_del)

    w = sub.add_parser("watch", parents=[common])
    w.add_argument("key")
    w.add_argument("--prefix", action="store_true")
    w.add_argument("--rev", type=int, default=0)
    w.add_argument("--count", type=int, default=0, help="exit after this many events")
    w.set_defaults(fn=cmd_watch)

    lease = sub.add_parser("lease", parents=[common])
    lsub = lease.add_subparsers(dest="lease_cmd", required=True)
    g = lsub.add_parser("grant", parents=[common])
    g.add_argument("ttl", type=int)
    k = lsub.add_parser("keepalive", parents=[common])
    k.add_argument("id")
    k.add_argument("--once", action="store_true")
    r = lsub.add_parser("revoke", parents=[common])
    r.add_argument("id")
    lease.set_defaults(fn=cmd_lease)

    c = sub.add_parser("compact", parents=[common])
    c.add_argument("rev", type=int)
    c.set_defaults(fn=cmd_compact)

    s = sub.add_parser("status", parents=[common])
    s.add_argument("--watch", action="store_true", help="live view of the members")
    s.add_argument("--interval", type=float, default=0.5)
    s.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_status)

    from .chaos.cli import add_chaos_parser

    add_chaos_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.fn(args)
    except RaftstoreError as exc:
        print(f"raftstore: {exc.code}: {exc.message}", file=sys.stderr)
        code = 1
    except (FileNotFoundError, ValueError, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not isinstance(exc.code, str):
            raise
        print(str(exc) if str(exc).startswith("raftstore") else f"raftstore: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
