#!/usr/bin/env python3
"""Throughput and latency of the raykube API server (over raftstore), through ``cluster.client``.

    python benchmarks/apiserver_bench.py [--duration S] [--concurrency 1,16,64] [--out PATH]
    python benchmarks/apiserver_bench.py --state-dir ~/.raykube      # against a running `raykube up`

By default it brings up its own stack **without Ray**: a 3-member raftstore
(``LocalCluster``, three member processes in a temporary directory) and one
API server process (``python -m cluster.apiserver``, HTTPS with a CA made by
``cluster.pki`` and bearer tokens), i.e. the same processes ``raykube up``
runs minus the Ray actor wrappers. ``--state-dir`` measures a running
``raykube up`` cluster (API server inside its Ray actor) instead.

Workloads (ConfigMaps with a 100-byte value, namespace ``bench-*``):

- **create**, **update** (PUT with the last resourceVersion; each client task
  owns one object, so no 409s), **get** (one of 100 objects), **list** (a
  namespace of 100 objects): p50/p99 latency and throughput at concurrency 1,
  16 and 64, each for ``--duration`` seconds after ``--warmup``;
- **paced mutations**: an open-loop schedule of 20 requests/s (create, update,
  delete in rotation) for ``--paced-seconds``; latency is measured from the
  scheduled send time, so a stalled server cannot hide queueing;
- **watch fan-out**: ``--watchers`` (100) watches on one namespace, a writer
  creating ``--events`` (1,000) objects stamped with their send time at
  ``--watch-rate``/s; delivery latency = receipt - send, per (watcher,
  event); every watcher must see every event exactly once, in order.

The load runs in separate processes (``multiprocessing``, ``--load-procs``
of them, each its own asyncio loop and ``cluster.client.Client``; the
concurrency is split between them) so it shares no GIL with this harness.
Server CPU per operation (user+sys of the API server and the three members,
from psutil) is reported beside each cell: on this 2-core machine the load
generator competes with the server for CPU, so compare runs as ratios.

Targets (printed PASS/FAIL): mutating p99 <= 100 ms at 20 requests/s; >= 1,000
creates/s at concurrency 64. Results: a rich table, JSON (``--out``,
default ``benchmarks/out/apiserver_bench.json``) and a PNG beside it.
Everything started here is stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

VALUE = "x" * 100
OBJECTS_FOR_READS = 100
TARGET_PACED_P99_MS = 100.0
TARGET_CREATES_PER_S = 1000.0


# =============================================================== statistics
def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(lat_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(lat_ms, 50), "p90_ms": pct(lat_ms, 90), "p99_ms": pct(lat_ms, 99),
            "max_ms": max(lat_ms) if lat_ms else float("nan"),
            "mean_ms": (sum(lat_ms) / len(lat_ms)) if lat_ms else float("nan")}


# ============================================================ load processes
def _client(conn: dict[str, Any]) -> Any:
    from cluster.client import Client

    return Client(conn["url"], token=conn["token"], ca_data=conn["ca"].encode(), max_connections=0,
                  retry_deadline=10.0, timeout=30.0)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def _closed_loop(conn: dict[str, Any], op: str, tasks: int, proc: int, start_at: float, warmup: float,
                       duration: float, tag: str) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS, ApiError

    client = _client(conn)
    lat: list[float] = []
    errors: dict[str, int] = {}
    try:
        # Per-task state (update: own object and its resourceVersion).
        own: dict[int, dict[str, Any]] = {}
        if op == "update":
            for t in range(tasks):
                name = f"u-{tag}-{proc}-{t}"
                own[t] = await client.create(CONFIGMAPS, cm(name, v=VALUE), "bench-upd")
        # a warm connection per task before the clock starts
        await asyncio.gather(*(client.get(CONFIGMAPS, "r-0", "bench-read") for _ in range(tasks)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t_measure = time.time() + warmup
        t_end = t_measure + duration

        async def task(t: int) -> None:
            i = 0
            while True:
                now = time.time()
                if now >= t_end:
                    return
                i += 1
                t0 = time.perf_counter()
                try:
                    if op == "create":
                        await client.create(CONFIGMAPS, cm(f"c-{tag}-{proc}-{t}-{i}", v=VALUE), "bench-create")
                    elif op == "update":
                        obj = own[t]
                        obj["data"] = {"v": VALUE, "i": str(i)}
                        own[t] = await client.update(CONFIGMAPS, obj)
                    elif op == "get":
                        await client.get(CONFIGMAPS, f"r-{random.randrange(OBJECTS_FOR_READS)}", "bench-read")
                    elif op == "list":
                        await client.list(CONFIGMAPS, "bench-read")
                    else:
                        raise ValueError(op)
                except ApiError as exc:
                    errors[exc.reason] = errors.get(exc.reason, 0) + 1
                    if op == "update":
                        own[t] = await client.get(CONFIGMAPS, own[t]["metadata"]["name"], "bench-upd")
                    continue
                if now >= t_measure:
                    lat.append((time.perf_counter() - t0) * 1000.0)

        await asyncio.gather(*(task(t) for t in range(tasks)))
    finally:
        await client.close()
    return {"lat": lat, "errors": errors, "window": duration}


async def _paced(conn: dict[str, Any], rate: float, seconds: float, start_at: float, tag: str) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS, ApiError

    client = _client(conn)
    lat: dict[str, list[float]] = {"create": [], "update": [], "delete": []}
    errors: dict[str, int] = {}
    try:
        await client.get(CONFIGMAPS, "r-0", "bench-read")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        n = int(rate * seconds)
        t0 = time.perf_counter()
        live: dict[int, dict[str, Any]] = {}
        pending: set[asyncio.Task[None]] = set()

        async def one(k: int, sched: float) -> None:
            verb = ("create", "update", "delete")[k % 3]
            obj_id = k // 3
            try:
                if verb == "create":
                    live[obj_id] = await client.create(CONFIGMAPS, cm(f"p-{tag}-{obj_id}", v=VALUE), "bench-paced")
                elif verb == "update":
                    obj = live.get(obj_id)
                    if obj is None:
                        return
                    obj["data"] = {"v": VALUE, "u": "1"}
                    live[obj_id] = await client.update(CONFIGMAPS, obj)
                else:
                    await client.delete(CONFIGMAPS, f"p-{tag}-{obj_id}", "bench-paced")
            except ApiError as exc:
                errors[exc.reason] = errors.get(exc.reason, 0) + 1
                return
            lat[verb].append((time.perf_counter() - sched) * 1000.0)

        for k in range(n):
            sched = t0 + k / rate
            delay = sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # updates/deletes follow their create (same object): wait for it, as a client would
            if k % 3 and pending:
                await asyncio.gather(*[p for p in pending if getattr(p, "obj", None) == k // 3])
            task = asyncio.ensure_future(one(k, sched))
            task.obj = k // 3  # type: ignore[attr-defined]
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        await client.close()
    return {"lat": lat, "errors": errors}


async def _watchers(conn: dict[str, Any], n: int, rv: str, events: int, ready_q: Any, timeout: float,
                    proc: int) -> dict[str, Any]:
    import aiohttp

    from cluster.client import CONFIGMAPS

    client = _client(conn)
    lat: list[float] = []
    counts = [0] * n
    order_ok = [True] * n
    dup = [0] * n
    opened = 0

    async def watch(i: int) -> None:
        nonlocal opened
        last_rv = -1
        seen: set[int] = set()

        def on_resp(_: Any) -> None:
            nonlocal opened
            opened += 1
            if opened == n:
                ready_q.put(proc)

        try:
            async for ev in client.watch(CONFIGMAPS, "bench-watch", resource_version=rv, allow_bookmarks=True,
                                         on_response=on_resp):
                if ev.type != "ADDED":
                    continue
                now = time.time()
                data = ev.object.get("data") or {}
                seq = int(data["seq"])
                lat.append((now - float(data["ts"])) * 1000.0)
                if seq in seen:
                    dup[i] += 1
                seen.add(seq)
                rv_i = int(ev.object["metadata"]["resourceVersion"])
                if rv_i <= last_rv:  # events must arrive in resourceVersion (commit) order
                    order_ok[i] = False
                last_rv = rv_i
                counts[i] += 1
                if counts[i] >= events:
                    return
        except (aiohttp.ClientError, OSError) as exc:  # pragma: no cover - reported as missing events
            print(f"watcher {proc}/{i}: {exc!r}", file=sys.stderr)

    try:
        await asyncio.wait_for(asyncio.gather(*(watch(i) for i in range(n))), timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        await client.close()
    return {"lat": lat, "counts": counts, "in_order": all(order_ok), "duplicates": sum(dup)}


async def _watch_writer(conn: dict[str, Any], events: int, rate: float, start_at: float, tag: str) -> dict[str, Any]:
    from cluster.client import CONFIGMAPS

    client = _client(conn)
    lat: list[float] = []
    try:
        await client.get(CONFIGMAPS, "r-0", "bench-read")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def one(k: int) -> None:
            async with sem:
                s = time.perf_counter()
                await client.create(CONFIGMAPS, cm(f"w-{tag}-{k}", seq=str(k), ts=repr(time.time())), "bench-watch")
                lat.append((time.perf_counter() - s) * 1000.0)

        tasks = []
        for k in range(events):
            delay = t0 + k / rate - time.perf_counter() if rate > 0 else 0
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(k)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    finally:
        await client.close()
    return {"lat": lat, "elapsed": elapsed}


def _proc_main(kind: str, args: tuple[Any, ...], out_q: Any) -> None:
    try:
        sys.setswitchinterval(0.001)
        if kind == "closed":
            res = asyncio.run(_closed_loop(*args))
        elif kind == "paced":
            res = asyncio.run(_paced(*args))
        elif kind == "watchers":
            res = asyncio.run(_watchers(*args))
        elif kind == "writer":
            res = asyncio.run(_watch_writer(*args))
        else:
            raise ValueError(kind)
        out_q.put(("ok", res))
    except BaseException as exc:  # noqa: BLE001
        import traceback

        out_q.put(("error", f"{exc!r}\n{traceback.format_exc()}"))


def run_procs(specs: list[tuple[str, tuple[Any, ...]]], timeout: float) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_proc_main, args=(kind, args, q), daemon=True) for kind, args in specs]
    for p in procs:
        p.start()
    results = []
    try:
        for _ in procs:
            status, res = q.get(timeout=timeout)
            if status != "ok":
                raise RuntimeError(f"load process failed: {res}")
            results.append(res)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)
    return results


# ============================================================= the servers
class Stack:
    """raftstore (3 processes) + one API server process, all on free loopback ports."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="apibench-")
        self.cluster: Any = None
        self.api: subprocess.Popen[bytes] | None = None
        self.conn: dict[str, Any] = {}

    def start(self) -> None:
        from cluster.apiserver.auth import generate_tokens as _generate_tokens
        from cluster.launcher import token_for
        from cluster.pki import ensure_pki
        from raftstore.localcluster import LocalCluster

        self.cluster = LocalCluster.create(os.path.join(self.dir, "rs"))
        self.cluster.start()
        self.cluster.wait_serving(30)
        pki = ensure_pki(os.path.join(self.dir, "pki"))
        tokens = _generate_tokens([])
        tokens_file = os.path.join(self.dir, "tokens.json")
        with open(tokens_file, "w") as f:
            json.dump(tokens, f)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(os.path.join(self.dir, "apiserver.log"), "ab")
        self.api = subprocess.Popen(
            [sys.executable, "-m", "cluster.apiserver", "--raftstore-endpoints", ",".join(self.cluster.endpoints),
             "--port", str(port), "--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
             "--tokens-file", tokens_file, "--log-level", "WARNING"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        log.close()
        self.conn = {"url": f"https://127.0.0.1:{port}", "token": token_for(tokens, "admin"),
                     "ca": pki.ca_pem().decode()}

    def server_pids(self) -> list[int]:
        pids = [self.api.pid] if self.api else []
        return pids + [p for p in (self.cluster.pid(m.name) for m in self.cluster.config.members) if p]

    def stop(self) -> None:
        if self.api is not None and self.api.poll() is None:
            self.api.terminate()
            try:
                self.api.wait(10)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait(5)
        if self.cluster is not None:
            self.cluster.kill_all()
        shutil.rmtree(self.dir, ignore_errors=True)


def conn_from_state(state_dir: str) -> tuple[dict[str, Any], list[int]]:
    from cluster import launcher

    p = launcher.Paths(os.path.abspath(os.path.expanduser(state_dir)))
    st = launcher.load_state(p)
    with open(os.path.join(p.pki, "ca.crt")) as f:
        ca = f.read()
    conn = {"url": st["api"]["url"], "token": launcher.token_for(launcher.read_tokens(p), "admin"), "ca": ca}
    s = launcher.status(p.root)
    pids = [int(c["actor_pid"]) for c in s["components"] if c["name"].startswith("apiserver") and c.get("actor_pid")]
    pids += [int(m["pid"]) for m in s["raftstore"] if m.get("pid")]
    return conn, pids


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def prepare(conn: dict[str, Any]) -> None:
    from cluster.client import CONFIGMAPS, NAMESPACES, ApiError

    c = _client(conn)
    try:
        await c.wait_ready(30)
        for ns in ("bench-create", "bench-upd", "bench-read", "bench-paced", "bench-watch"):
            try:
                await c.create(NAMESPACES, {"metadata": {"name": ns}})
            except ApiError as exc:
                if not exc.already_exists:
                    raise
        sem = asyncio.Semaphore(16)

        async def mk(i: int) -> None:
            async with sem:
                try:
                    await c.create(CONFIGMAPS, cm(f"r-{i}", v=VALUE), "bench-read")
                except ApiError as exc:
                    if not exc.already_exists:
                        raise

        await asyncio.gather(*(mk(i) for i in range(OBJECTS_FOR_READS)))
    finally:
        await c.close()


async def list_rv(conn: dict[str, Any], ns: str) -> str:
    from cluster.client import CONFIGMAPS

    c = _client(conn)
    try:
        return str((await c.list(CONFIGMAPS, ns, limit=1))["metadata"]["resourceVersion"])
    finally:
        await c.close()


# ================================================================= phases
def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def closed_cell(conn: dict[str, Any], pids: list[int], op: str, conc: int, args: argparse.Namespace,
                tag: str) -> dict[str, Any]:
    shares = split(conc, args.load_procs)
    start_at = time.time() + 2.0 + 0.05 * conc  # time for the processes to start and pre-connect
    specs = [("closed", (conn, op, n, i, start_at, args.warmup, args.duration, f"{tag}-{conc}"))
             for i, n in enumerate(shares)]
    import threading

    cpu_mark: dict[str, float] = {}

    def mark() -> None:  # server CPU over the measured window only
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        cpu_mark["start"] = cpu_seconds(pids)
        time.sleep(args.duration)
        cpu_mark["end"] = cpu_seconds(pids)

    th = threading.Thread(target=mark, daemon=True)
    th.start()
    res = run_procs(specs, timeout=args.warmup + args.duration + 120)
    th.join(10)
    lat = [x for r in res for x in r["lat"]]
    errors: dict[str, int] = {}
    for r in res:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ops = len(lat)
    cpu = cpu_mark.get("end", 0.0) - cpu_mark.get("start", 0.0)
    return {"op": op, "concurrency": conc, "ops": ops, "throughput": ops / args.duration, **summary(lat),
            "errors": errors, "server_cpu_ms_per_op": (cpu * 1000.0 / ops) if ops else None,
            "server_cpu_cores": cpu / args.duration}


def paced_cell(conn: dict[str, Any], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    start_at = time.time() + 2.0
    (res,) = run_procs([("paced", (conn, args.paced_rate, args.paced_seconds, start_at, tag))],
                       timeout=args.paced_seconds + 120)
    all_lat = [x for v in res["lat"].values() for x in v]
    return {"rate": args.paced_rate, "seconds": args.paced_seconds, "ops": len(all_lat), **summary(all_lat),
            "by_verb": {k: {"ops": len(v), **summary(v)} for k, v in res["lat"].items()}, "errors": res["errors"]}


def watch_cell(conn: dict[str, Any], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    rv = asyncio.run(list_rv(conn, "bench-watch"))
    shares = split(args.watchers, args.load_procs)
    ready_q = ctx.Queue()
    out_q = ctx.Queue()
    timeout = args.events / max(1.0, args.watch_rate) + 60
    procs = [ctx.Process(target=_proc_main, args=("watchers", (conn, n, rv, args.events, ready_q, timeout, i), out_q),
                         daemon=True) for i, n in enumerate(shares)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready_q.get(timeout=60)
        time.sleep(0.5)
        writer = ctx.Process(target=_proc_main, args=("writer", (conn, args.events, args.watch_rate, time.time() + 1.0,
                                                                 tag), out_q), daemon=True)
        writer.start()
        procs.append(writer)
        results = []
        for _ in procs:
            status, res = out_q.get(timeout=timeout + 60)
            if status != "ok":
                raise RuntimeError(res)
            results.append(res)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    wres = [r for r in results if "counts" in r]
    wr = next(r for r in results if "elapsed" in r)
    lat = [x for r in wres for x in r["lat"]]
    counts = [c for r in wres for c in r["counts"]]
    return {"watchers": args.watchers, "events": args.events, "write_rate": args.watch_rate,
            "write_seconds": wr["elapsed"], "write_p99_ms": pct(wr["lat"], 99),
            "deliveries": len(lat), "expected_deliveries": args.watchers * args.events,
            "complete_watchers": sum(1 for c in counts if c >= args.events), "min_events_seen": min(counts or [0]),
            "in_order": all(r["in_order"] for r in wres), "duplicates": sum(r["duplicates"] for r in wres),
            "deliveries_per_s": len(lat) / wr["elapsed"] if wr["elapsed"] else None, **summary(lat),
            "lat_sample": random.sample(lat, min(5000, len(lat)))}


# ================================================================= output
def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=130)
    t = Table(title=f"API server: ConfigMaps through cluster.client ({result['meta']['target']})",
              title_justify="left")
    for c in ("op", "conc", "ops", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU ms/op",
              "server cores"):
        t.add_column(c, justify="right" if c not in ("op", "errors") else "left")
    for r in result["closed"]:
        t.add_row(r["op"], str(r["concurrency"]), str(r["ops"]), f"{r['throughput']:.0f}", f"{r['p50_ms']:.1f}",
                  f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}", json.dumps(r["errors"]) if r["errors"] else "",
                  f"{r['server_cpu_ms_per_op']:.2f}" if r["server_cpu_ms_per_op"] else "-",
                  f"{r['server_cpu_cores']:.2f}")
    t.caption = ("create/update: ConfigMaps with a 100-byte value; get: one of 100; list: a namespace of 100 "
                 "ConfigMaps. server CPU = API server + 3 raftstore members")
    con.print(t)
    pc = result.get("paced")
    if pc:
        t = Table(title=f"paced mutations: {pc['rate']:.0f} req/s open-loop for {pc['seconds']:.0f} s "
                        "(latency from the scheduled send time)", title_justify="left")
        for c in ("verb", "ops", "p50 ms", "p99 ms", "max ms"):
            t.add_column(c)
        for verb, s in pc["by_verb"].items():
            t.add_row(verb, str(s["ops"]), f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['max_ms']:.1f}")
        t.add_row("[bold]all[/bold]", str(pc["ops"]), f"{pc['p50_ms']:.1f}", f"{pc['p99_ms']:.1f}",
                  f"{pc['max_ms']:.1f}")
        con.print(t)
    w = result.get("watch")
    if w:
        t = Table(title=f"watch fan-out: {w['watchers']} watchers x {w['events']} events "
                        f"(written at {w['write_rate']:.0f}/s)", title_justify="left")
        for c in ("deliveries", "complete watchers", "in order", "dups", "deliveries/s", "p50 ms", "p99 ms",
                  "max ms", "write p99 ms"):
            t.add_column(c)
        t.add_row(f"{w['deliveries']}/{w['expected_deliveries']}", f"{w['complete_watchers']}/{w['watchers']}",
                  str(w["in_order"]), str(w["duplicates"]), f"{w['deliveries_per_s']:.0f}", f"{w['p50_ms']:.1f}",
                  f"{w['p99_ms']:.1f}", f"{w['max_ms']:.1f}", f"{w['write_p99_ms']:.1f}")
        con.print(t)
    la0, la1 = result["meta"]["loadavg_start"], result["meta"].get("loadavg_end") or (0, 0, 0)
    con.print(f"machine: {result['meta']['cpus']} CPUs, 1-min load average {la0[0]:.1f} at start, {la1[0]:.1f} at "
              f"end (other work on a shared machine takes CPU from the server: compare runs as ratios)")
    for name, tg in result["targets"].items():
        mark = "[green]PASS[/green]" if tg["pass"] else "[red]FAIL[/red]"
        con.print(f"{mark} {name}: {tg['value']:.1f} {tg['unit']} (target {tg['target']})")


def plot(path: str, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ops = ["create", "update", "get", "list"]
    concs = sorted({r["concurrency"] for r in result["closed"]})
    width = 0.8 / max(1, len(concs))
    for j, conc in enumerate(concs):
        rows = {r["op"]: r for r in result["closed"] if r["concurrency"] == conc}
        xs = [i + j * width for i in range(len(ops))]
        axes[0].bar(xs, [rows[o]["throughput"] if o in rows else 0 for o in ops], width, label=f"c={conc}")
        axes[1].bar(xs, [rows[o]["p99_ms"] if o in rows else 0 for o in ops], width, label=f"p99 c={conc}")
        axes[1].scatter(xs, [rows[o]["p50_ms"] if o in rows else 0 for o in ops], color="k", s=10, zorder=3)
    for ax, title in ((axes[0], "throughput (ops/s)"), (axes[1], "latency ms (bars p99, dots p50)")):
        ax.set_xticks([i + width * (len(concs) - 1) / 2 for i in range(len(ops))])
        ax.set_xticklabels(ops)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0].axhline(TARGET_CREATES_PER_S, color="r", ls="--", lw=1)
    axes[1].set_yscale("log")
    w = result.get("watch")
    if w and w.get("lat_sample"):
        xs = sorted(w["lat_sample"])
        axes[2].plot(xs, [i / len(xs) for i in range(len(xs))])
        axes[2].set_xscale("log")
        axes[2].set_title(f"watch delivery latency CDF ({w['watchers']} watchers x {w['events']} events)")
        axes[2].set_xlabel("ms")
    pc = result.get("paced")
    if pc:
        axes[2].axvline(pc["p99_ms"], color="r", ls="--", lw=1)
        axes[2].text(pc["p99_ms"], 0.05, f" for comparison: paced (20/s) mutating p99 {pc['p99_ms']:.0f} ms",
                     color="r", fontsize=8)
    fig.suptitle(f"raykube API server bench - {result['meta']['target']} - {result['meta']['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# =================================================================== main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state-dir", help="bench a running `raykube up` cluster instead of starting a stack")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--ops", default="create,update,get,list")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--load-procs", type=int, default=2, help="load generator processes per cell")
    ap.add_argument("--paced-rate", type=float, default=20.0)
    ap.add_argument("--paced-seconds", type=float, default=15.0)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--watch-rate", type=float, default=200.0, help="events written per second (0 = unpaced)")
    ap.add_argument("--skip", default="", help="comma list of phases to skip: closed,paced,watch")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "apiserver_bench.json"))
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    stack: Stack | None = None

    def on_signal(signum: int, _: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.state_dir:
            conn, pids = conn_from_state(args.state_dir)
            target = f"raykube cluster {args.state_dir} (API server in a Ray actor)"
        else:
            stack = Stack()
            stack.start()
            conn, pids = stack.conn, stack.server_pids()
            target = "own stack: 3 raftstore processes + 1 API server process, no Ray"
        asyncio.run(prepare(conn))
        tag = f"{int(time.time()) % 100000}"
        result: dict[str, Any] = {
            "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "target": target, "host": platform.node(),
                     "cpus": os.cpu_count(), "python": platform.python_version(),
                     "loadavg_start": os.getloadavg(), "args": vars(args)},
            "closed": [], "paced": None, "watch": None}
        if "closed" not in skip:
            for conc in [int(c) for c in args.concurrency.split(",")]:
                for op in args.ops.split(","):
                    print(f"... {op} at concurrency {conc}", file=sys.stderr, flush=True)
                    result["closed"].append(closed_cell(conn, pids, op, conc, args, tag))
        if "paced" not in skip:
            print(f"... paced mutations at {args.paced_rate}/s", file=sys.stderr, flush=True)
            result["paced"] = paced_cell(conn, args, tag)
        if "watch" not in skip:
            print(f"... watch fan-out {args.watchers} x {args.events}", file=sys.stderr, flush=True)
            result["watch"] = watch_cell(conn, args, tag)
        result["meta"]["loadavg_end"] = os.getloadavg()
        targets: dict[str, Any] = {}
        if result["paced"]:
            v = result["paced"]["p99_ms"]
            targets["mutating p99 at 20 req/s"] = {"value": v, "unit": "ms", "target": "<= 100 ms",
                                                   "pass": v <= TARGET_PACED_P99_MS}
        c64 = [r for r in result["closed"] if r["op"] == "create" and r["concurrency"] == 64]
        if c64:
            v = c64[0]["throughput"]
            targets["creates/s at concurrency 64"] = {"value": v, "unit": "creates/s", "target": ">= 1000",
                                                      "pass": v >= TARGET_CREATES_PER_S}
        result["targets"] = targets
        render(result)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, default=str)
        png = os.path.splitext(args.out)[0] + ".png"
        plot(png, result)
        print(f"wrote {args.out} and {png}")
        return 0
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
