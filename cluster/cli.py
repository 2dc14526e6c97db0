"""``raykube``: bring a local raykube cluster up, inspect it, take it down, drive it with kubectl.

    raykube up [--nodes N] [--state-dir DIR] [--address RAY_ADDRESS] [--port 6443]
    raykube status [--json]
    raykube down [--purge]
    raykube kubectl ARGS...        # the real kubectl with --kubeconfig <state dir>/kubeconfig
    raykube kubeconfig [--viewer]  # print the kubeconfig's path
    raykube token [USER]           # print a bearer token (default: admin)
    raykube node kill NAME         # power a node off; raykube node add [--name NAME] starts one

The state directory defaults to ``~/.raykube`` (``$RAYKUBE_STATE_DIR``
overrides it); every command takes ``--state-dir``. The work is done by
``cluster.launcher``; this module parses arguments and prints results.

Concurrency: one command per process, run to completion on the main thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any

from . import launcher
from .launcher import nodes


def _console() -> Any:
    # Lazy: rich costs ~0.1 s to import; `--json` output and `raykube kubectl` don't need it.
    from rich.console import Console

    con = Console(stderr=False, highlight=False)
    if not con.is_terminal:  # pipes and CI logs: don't squeeze the tables into 80 columns
        con = Console(stderr=False, highlight=False, width=max(120, shutil.get_terminal_size((120, 40)).columns))
    return con


def _add_state_dir(p: argparse.ArgumentParser, top: bool = False) -> None:
    # Accepted before or after the subcommand; the subcommand's copy must not reset the top-level one.
    p.add_argument(
        "--state-dir",
        default=None if top else argparse.SUPPRESS,
        help="cluster state directory (default: $RAYKUBE_STATE_DIR or ~/.raykube)",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="raykube", description="A Kubernetes-style orchestrator on Ray.")
    _add_state_dir(ap, top=True)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("up", help="start (or resume) the cluster")
    _add_state_dir(p)
    p.add_argument(
        "--nodes",
        type=int,
        default=None,
        help="Kubernetes nodes, one kubelet actor each (default 3, or as many as the cluster had)",
    )
    p.add_argument(
        "--profile",
        default=None,
        choices=["demo", "kubernetes"],
        help="node-lifecycle timings: demo (2 s heartbeat, 5 s grace) or kubernetes (upstream defaults)",
    )
    p.add_argument("--address", default=None, help="join this Ray cluster instead of starting a local head")
    p.add_argument("--port", type=int, default=launcher.DEFAULT_API_PORT, help="API server port (default 6443)")
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("down", help="stop the cluster (data, PKI and tokens are kept)")
    _add_state_dir(p)
    p.add_argument("--purge", action="store_true", help="also delete the state directory")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("status", help="Ray nodes, raftstore members, components, Kubernetes nodes")
    _add_state_dir(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("kubeconfig", help="print the path of the kubeconfig")
    _add_state_dir(p)
    p.add_argument("--viewer", action="store_true", help="the read-only kubeconfig")

    p = sub.add_parser("token", help="print the bearer token of a user")
    _add_state_dir(p)
    p.add_argument("user", nargs="?", default="admin")

    p = sub.add_parser("node", help="kill or add Kubernetes nodes (kubelet actors)")
    _add_state_dir(p)
    nsub = p.add_subparsers(dest="node_cmd", required=True)
    k = nsub.add_parser("kill", help="power a node off: its kubelet and every pod process die at once")
    _add_state_dir(k)
    k.add_argument("name")
    a = nsub.add_parser("add", help="start a new node (kubelet actor)")
    _add_state_dir(a)
    a.add_argument("--name", default=None, help="default: node-<first free index>")

    p = sub.add_parser("kubectl", help="run kubectl against the cluster", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    return ap


def _split_kubectl(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """``raykube [--state-dir D] kubectl ARGS`` -> (raykube args, kubectl args)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "kubectl":
            return argv[:i], argv[i + 1 :]
        if a == "--state-dir":
            i += 2
            continue
        if a.startswith("--state-dir="):
            i += 1
            continue
        return None
    return None


def cmd_kubectl(state_dir: str | None, args: list[str]) -> int:
    # ``raykube kubectl --state-dir D ...`` too (kubectl itself has no such flag).
    while args and (args[0] == "--state-dir" or args[0].startswith("--state-dir=")):
        if "=" in args[0]:
            state_dir, args = args[0].split("=", 1)[1], args[1:]
        else:
            state_dir, args = (args[1] if len(args) > 1 else None), args[2:]
    viewer = False
    if args[:1] == ["--as-viewer"]:
        viewer, args = True, args[1:]
    try:
        argv = launcher.kubectl_argv(state_dir, args, viewer=viewer)
    except launcher.LauncherError as exc:
        print(f"raykube: {exc}", file=sys.stderr)
        return 1
    os.execv(argv[0], argv)
    return 0  # pragma: no cover


def cmd_up(args: argparse.Namespace, t0: float) -> int:
    con = None if args.json else _console()
    if con:
        con.print(f"[bold]raykube up[/bold] [dim]state dir {launcher.paths_for(args.state_dir).root}[/dim]")
    try:
        res = launcher.up(
            args.state_dir,
            nodes=args.nodes,
            address=args.address,
            port=args.port,
            console=con,
            t0=t0,
            timeout=args.timeout,
            profile=args.profile,
        )
    except Exception as exc:  # noqa: BLE001 - report, point at the clean-up, exit non-zero
        msg = str(exc) if isinstance(exc, launcher.LauncherError) else f"{type(exc).__name__}: {exc}"
        if con:
            con.print(f"[red]✗ {msg}[/red]")
            con.print(
                "  logs: <state dir>/logs, <state dir>/raftstore/m*/member.log, Ray's session logs; "
                "clean up with `raykube down`"
            )
        else:
            print(json.dumps({"error": msg}))
        return 1
    if args.json:
        print(json.dumps(res))
        return 0
    assert con is not None
    if res.get("already_running"):
        con.print(f"[yellow]already running[/yellow] at {res['url']}")
    else:
        within = "[green]within[/green]" if res["ready_seconds"] <= 15 else "[red]over[/red]"
        con.print(
            f"[bold green]ready in {res['ready_seconds']:.1f} s[/bold green] ({within} the 15 s target, "
            f"measured from the command's start to an authenticated list)"
        )
    con.print(f"API server   {res['url']}")
    con.print(f"kubeconfig   {res['kubeconfig']}")
    if res.get("kubeconfig_viewer"):
        con.print(f"viewer       {res['kubeconfig_viewer']}")
    con.print(f"\n  export KUBECONFIG={res['kubeconfig']}\n  kubectl get ns        # or: raykube kubectl get ns")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    con = None if args.json else _console()
    res = launcher.down(args.state_dir, purge=args.purge, console=con)
    if args.json:
        print(json.dumps(res))
    elif con is not None:
        if res.get("note"):
            con.print(res["note"])
        con.print(
            f"stopped: {len(res['stopped_actors'])} actors, {len(res['killed_pids'])} processes"
            + (f"; [red]still alive: {res['leftover_pids']}[/red]" if res["leftover_pids"] else "")
        )
    return 1 if res["leftover_pids"] else 0


def render_status(s: dict[str, Any], con: Any) -> None:
    from rich.table import Table  # lazy: as in _console

    if s["status"] == "absent":
        con.print(f"no raykube cluster in {s['state_dir']}: run `raykube up`")
        return
    con.print(f"[bold]raykube[/bold] {s['status']}  state dir {s['state_dir']}  API {s.get('url') or '-'}")
    ray = s.get("ray") or {}
    t = Table(
        title=f"Ray ({ray.get('address')}, {'started by raykube' if ray.get('owned') else 'joined'}, "
        f"{'reachable' if ray.get('alive') else 'down'})",
        title_justify="left",
    )
    for c in ("node id", "address", "alive", "CPUs", "memory GiB"):
        t.add_column(c)
    for n in ray.get("nodes") or []:
        t.add_row(n["node_id"][:12], str(n["address"]), str(n["alive"]), str(n["cpus"]), str(n["memory_gib"]))
    con.print(t)
    t = Table(title="raftstore members", title_justify="left")
    for c in ("member", "endpoint", "pid", "role", "term", "leader", "commit", "applied", "revision"):
        t.add_column(c)
    for m in s.get("raftstore") or []:
        if m.get("error"):
            t.add_row(
                str(m.get("name")), str(m.get("endpoint")), "-", f"[red]{m['error'][:40]}[/red]", "", "", "", "", ""
            )
            continue
        role = m.get("role", "")
        t.add_row(
            str(m.get("name")),
            str(m.get("endpoint")),
            str(m.get("pid")),
            f"[bold]{role}[/bold]" if role == "leader" else role,
            str(m.get("term")),
            str(m.get("leader")),
            str(m.get("commit_index")),
            str(m.get("applied_index")),
            str(m.get("revision")),
        )
    con.print(t)
    t = Table(title="components (Ray actors, namespace raykube)", title_justify="left")
    for c in ("actor", "state", "restarts", "actor pid", "member pid", "url"):
        t.add_column(c)
    for c in s.get("components") or []:
        state = str(c.get("state"))
        t.add_row(
            c["name"],
            f"[green]{state}[/green]" if state == "ALIVE" else f"[red]{state}[/red]",
            str(c.get("restarts")),
            str(c.get("actor_pid")),
            str(c.get("member_pid") or ""),
            str(c.get("url") or ""),
        )
    con.print(t)
    t = Table(title="Kubernetes nodes", title_justify="left")
    for c in ("name", "ready", "kubelet"):
        t.add_column(c)
    for n in s.get("nodes") or []:
        t.add_row(n["name"], str(n["ready"]), str(n["version"]))
    if not s.get("nodes"):
        t.caption = "no nodes registered yet (kubelets arrive with a later issue)"
    con.print(t)
    for e in s.get("errors") or []:
        con.print(f"[red]{e}[/red]")


def cmd_node(args: argparse.Namespace) -> int:
    try:
        if args.node_cmd == "kill":
            res = nodes.kill_cluster_node(args.name, args.state_dir)
            print(
                f"node {res['node']} powered off (kubelet pid {res.get('pid')}); "
                f"{len(res.get('pids_left') or [])} pod processes left"
            )
        else:
            res = nodes.add_cluster_node(args.state_dir, args.name)
            print(
                f"node {res['node']} added: {res.get('node_ip')} pods {res.get('pod_cidr')} (kubelet pid {res.get('pid')})"
            )
    except Exception as exc:  # noqa: BLE001 - one line for the user
        print(f"raykube node {args.node_cmd}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    s = launcher.status(args.state_dir)
    if args.json:
        print(json.dumps(s, default=str))
    else:
        render_status(s, _console())
    return 0 if s["status"] != "absent" else 1


def main(argv: list[str] | None = None) -> int:
    t0 = launcher.process_start_time() if argv is None else time.time()
    argv = list(sys.argv[1:] if argv is None else argv)
    split = _split_kubectl(argv)
    if split is not None:
        pre, rest = split
        ns = build_parser().parse_args([*pre, "kubectl"])
        return cmd_kubectl(ns.state_dir, rest)
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.cmd == "up":
        return cmd_up(args, t0)
    if args.cmd == "down":
        return cmd_down(args)
    if args.cmd == "status":
        return cmd_status(args)
    if args.cmd == "node":
        return cmd_node(args)
    if args.cmd == "kubeconfig":
        p = launcher.paths_for(args.state_dir)
        print(p.kubeconfig_viewer if args.viewer else p.kubeconfig)
        return 0
    if args.cmd == "token":
        p = launcher.paths_for(args.state_dir)
        try:
            print(launcher.token_for(launcher.read_tokens(p), args.user))
        except (KeyError, FileNotFoundError) as exc:
            print(f"raykube: {exc}", file=sys.stderr)
            return 1
        return 0
    ap.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
