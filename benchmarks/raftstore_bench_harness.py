"""raftstore_bench's harness side: one cell on one system, and the systems' status.

``Bench.run_cell`` spawns the load processes (``raftstore_bench_load``),
starts them together, follows their rate on a rich progress bar, measures
the members' and the generator's CPU over the measured window (psutil) and
folds the workers' latencies into the cell's result.  The status helpers
ask each system for its members' role/term so a cell that saw an election
is flagged.

Concurrency: runs in the benchmark's main thread; the load runs in child
processes that are always joined (killed by PID if need be) in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from raftstore_bench_load import VALUE_SIZE, worker_entry
from raftstore_bench_report import fmt


def pct(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    # nearest rank
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[i]


def cpu_of(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(Exception):  # a process that is gone adds nothing
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


@dataclass
class Cell:
    key: str  # "put_c1"
    label: str  # "put c=1"
    kind: str  # put | get | watch
    concurrency: int


@dataclass
class System:
    name: str  # "raftstore" | "etcd"
    spec: dict[str, Any]
    pids: Any  # callable -> list[int]
    status: Any  # callable -> dict
    data_dir: str
    logs: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    status0: list[dict[str, Any]] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace, console: Any) -> None:
        self.args = args
        self.console = console
        self.ctx = mp.get_context("spawn")

    # ---- one cell on one system ------------------------------------------------
    def run_cell(self, system: System, cell: Cell, progress: Any, ptask: Any) -> dict[str, Any]:
        a = self.args
        if cell.kind == "watch":
            nworkers = 1
        else:
            nworkers = max(1, min(a.workers, cell.concurrency))
        shares = [cell.concurrency // nworkers + (1 if i < cell.concurrency % nworkers else 0) for i in range(nworkers)]
        params_base: dict[str, Any] = {"op_timeout": a.op_timeout}
        if cell.kind == "put":
            params_base["prefix"] = f"/bench/{cell.key}/{int(time.time() * 1000)}"
        elif cell.kind == "get":
            params_base["keys"] = [f"/bench/get/{i:06d}" for i in range(a.get_keys)]
        elif cell.kind == "watch":
            params_base["prefix"] = f"/bench/watch/{int(time.time() * 1000)}"
            params_base["rate"] = a.watch_rate
        counters = self.ctx.Array("q", nworkers, lock=False)
        procs = []
        conns = []
        result: dict[str, Any] = {
            "system": system.name,
            "cell": cell.key,
            "concurrency": cell.concurrency,
            "workers": nworkers,
        }
        try:
            for i, share in enumerate(shares):
                parent_conn, child_conn = self.ctx.Pipe()
                params = dict(params_base, concurrency=share)
                p = self.ctx.Process(
                    target=worker_entry, args=(cell.kind, system.spec, params, child_conn, counters, i), daemon=True
                )
                p.start()
                child_conn.close()
                procs.append(p)
                conns.append(parent_conn)
            # Wait until every worker has connected.
            deadline = time.monotonic() + 60
            for c, p in zip(conns, procs):
                if not c.poll(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"load worker {p.pid} did not become ready in 60 s")
                tag, payload = c.recv()
                if tag != "ready":
                    raise RuntimeError(f"load worker {p.pid} failed to start: {payload}")
            t_start = time.monotonic() + a.warmup
            t_end = t_start + a.duration
            for c in conns:
                c.send(("go", t_start, t_end))
            worker_pids = [p.pid for p in procs]
            total = a.warmup + a.duration
            progress.update(ptask, total=total, completed=0, description=f"{system.name:9} {cell.label:10} warm-up")
            last_n, last_t = 0, time.monotonic()
            srv0 = cli0 = None
            srv_members0: dict[str, float] = {}
            while True:
                now = time.monotonic()
                if srv0 is None and now >= t_start:
                    pids = system.pids()
                    srv0, cli0 = cpu_of(pids), cpu_of(worker_pids)
                    srv_members0 = {str(pid): cpu_of([pid]) for pid in pids}
                if now >= t_end:
                    break
                n = sum(counters)
                rate = (n - last_n) / max(1e-6, now - last_t)
                last_n, last_t = n, now
                phase = "warm-up" if now < t_start else "measure"
                progress.update(
                    ptask,
                    completed=min(total, now - (t_start - a.warmup)),
                    description=f"{system.name:9} {cell.label:10} {phase} {rate:8.0f} ops/s",
                )
                time.sleep(min(0.25, max(0.001, (t_start if srv0 is None else t_end) - now)))
            pids = system.pids()
            srv1, cli1 = cpu_of(pids), cpu_of(worker_pids)
            srv_members1 = {str(pid): cpu_of([pid]) for pid in pids}
            progress.update(ptask, completed=total, description=f"{system.name:9} {cell.label:10} collecting")
            # Collect.
            lat: list[float] = []
            put_lat: list[float] = []
            errors = hung = 0
            samples: list[str] = []
            gaps: list[float] = []
            missed = expected = 0
            deadline = t_end + a.op_timeout + 20
            for c, p in zip(conns, procs):
                if not c.poll(max(0.0, deadline - time.monotonic())):
                    hung += 1
                    samples.append(
                        f"load worker {p.pid} gave no result {a.op_timeout + 20:.0f} s after the window closed (killed)"
                    )
                    continue
                tag, payload = c.recv()
                if tag != "result":
                    errors += 1
                    samples.append(str(payload)[:1500])
                    continue
                lat.extend(payload["latencies"])
                put_lat.extend(payload.get("put_latencies", []))
                errors += payload["errors"]
                hung += payload["hung"]
                samples.extend(payload["error_samples"])
                if payload.get("max_gap") is not None:
                    gaps.append(payload["max_gap"])
                missed += payload.get("missed_events", 0)
                expected += payload.get("events_expected", 0)
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            for c in conns:
                c.close()
        lat.sort()
        ops = len(lat)
        srv_cpu = (srv1 - srv0) if srv0 is not None else None
        cli_cpu = (cli1 - cli0) if cli0 is not None else None
        per_member = {pid: round(srv_members1.get(pid, 0.0) - v, 3) for pid, v in srv_members0.items()}

        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1000.0, 3)

        result.update(
            {
                "ops": ops,
                "ops_per_s": round(ops / a.duration, 1),
                "p50_ms": ms(pct(lat, 50)),
                "p90_ms": ms(pct(lat, 90)),
                "p99_ms": ms(pct(lat, 99)),
                "max_ms": ms(lat[-1] if lat else None),
                "mean_ms": ms(sum(lat) / ops if ops else None),
                "errors": errors,
                "hung": hung,
                "error_samples": samples[:8],
                "longest_gap_ms": ms(max(gaps) if gaps else None),
                "server_cpu_s": None if srv_cpu is None else round(srv_cpu, 3),
                "server_cpu_s_per_1k_ops": None if not ops or srv_cpu is None else round(srv_cpu / ops * 1000, 4),
                "server_cpu_cores": None if srv_cpu is None else round(srv_cpu / a.duration, 3),
                "server_cpu_s_by_pid": per_member,
                "client_cpu_s": None if cli_cpu is None else round(cli_cpu, 3),
                "client_cpu_s_per_1k_ops": None if not ops or cli_cpu is None else round(cli_cpu / ops * 1000, 4),
            }
        )
        if cell.kind == "watch":
            put_lat.sort()
            result.update(
                {
                    "writer_rate_per_s": a.watch_rate,
                    "events": ops,
                    "events_expected": expected,
                    "missed_events": missed,
                    "put_p50_ms": ms(pct(put_lat, 50)),
                    "put_p99_ms": ms(pct(put_lat, 99)),
                }
            )
            # Server CPU per op counts the puts: the events are their by-product.
            if srv_cpu is not None and expected:
                result["server_cpu_s_per_1k_ops"] = round(srv_cpu / expected * 1000, 4)
        if errors or hung or (cell.kind == "watch" and missed):
            system.anomalies.append(
                f"{cell.label}: {errors} errors, {hung} hung"
                + (f", {missed}/{expected} watch events missed" if cell.kind == "watch" else "")
                + (f"; e.g. {samples[0][:300]}" if samples else "")
            )
        return result

    # ---- helpers ------------------------------------------------------------------
    def preload(self, system: System) -> None:
        from kvbackends import make_backend

        keys = [f"/bench/get/{i:06d}".encode() for i in range(self.args.get_keys)]
        value = b"v" * VALUE_SIZE

        async def go() -> None:
            b = make_backend(system.spec, pool=16)
            await b.start()
            try:
                sem = asyncio.Semaphore(16)

                async def one(k: bytes) -> None:
                    async with sem:
                        await b.put(k, value)

                await asyncio.gather(*(one(k) for k in keys))
            finally:
                await b.close()

        asyncio.run(go())

    def idle_cpu(self, system: System, seconds: float = 2.0) -> float:
        pids = system.pids()
        c0 = cpu_of(pids)
        time.sleep(seconds)
        return round((cpu_of(pids) - c0) / seconds, 4)


def raftstore_status(endpoints: list[str]) -> list[dict[str, Any]]:
    from raftstore.client import RaftstoreClient

    async def go() -> list[dict[str, Any]]:
        c = RaftstoreClient(endpoints, timeout=5.0, request_timeout=2.0)
        try:
            sts = await c.cluster_status()
        finally:
            await c.close()
        keep = (
            "name",
            "role",
            "term",
            "leader",
            "leader_changes",
            "elections_seen",
            "commit_index",
            "applied_index",
            "revision",
            "log_size",
            "fsyncs",
            "error",
        )
        return [{k: st.get(k) for k in keep if k in st} for st in sts]

    try:
        return asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 -- a status that cannot be read is reported as such
        return [{"error": f"{type(exc).__name__}: {exc}"}]


def etcd_status(cluster: Any) -> list[dict[str, Any]]:
    out = []
    for name, url in zip(cluster.names, cluster.endpoints):
        try:
            st = cluster.status(url)
            out.append(
                {
                    "name": name,
                    "leader": st.get("leader"),
                    "member_id": st.get("header", {}).get("member_id"),
                    "term": int(st.get("raftTerm", 0)),
                    "raft_index": int(st.get("raftIndex", 0)),
                    "db_size": int(st.get("dbSize", 0)),
                }
            )
        except Exception as exc:  # noqa: BLE001 -- a status that cannot be read is reported as such
            out.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
    return out


def terms(status: list[dict[str, Any]]) -> set[Any]:
    return {s.get("term") for s in status if "term" in s}


def machine_info(etcd_version: dict[str, str] | None) -> dict[str, Any]:
    import psutil

    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "etcd": etcd_version,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_cells(
    bench: Bench, order: list[tuple[Cell, System]], console: Any, results: dict[str, dict[str, dict[str, Any]]]
) -> None:
    """Run every (cell, system) in ``order`` under one progress display, into ``results``.

    A cell that fails is recorded (and flagged as an anomaly) and the next
    one runs; the members' status before and after each cell is kept, and a
    term change or a lost member during a cell is an anomaly."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    args = bench.args
    preloaded: set[str] = set()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        overall = progress.add_task("cells", total=len(order))
        ptask = progress.add_task("", total=1)
        for cell, system in order:
            if cell.kind == "get" and system.name not in preloaded:
                progress.update(ptask, description=f"{system.name:9} preloading {args.get_keys} keys", completed=0)
                bench.preload(system)
                preloaded.add(system.name)
            before = system.status()
            try:
                r = bench.run_cell(system, cell, progress, ptask)
            except Exception as exc:  # noqa: BLE001 -- recorded as an anomaly; the other cells still run
                r = {"system": system.name, "cell": cell.key, "failed": f"{type(exc).__name__}: {exc}"}
                system.anomalies.append(f"{cell.label}: harness failure {type(exc).__name__}: {exc}")
            after = system.status()
            r["status_before"], r["status_after"] = before, after
            if terms(before) != terms(after):
                system.anomalies.append(
                    f"{cell.label}: term changed during the cell "
                    f"({sorted(map(str, terms(before)))} -> {sorted(map(str, terms(after)))})"
                )
            if not system.pids() or len(system.pids()) < 3:
                system.anomalies.append(f"{cell.label}: only {len(system.pids())} of 3 members alive after")
            results[cell.key][system.name] = r
            progress.advance(overall)
            progress.console.print(
                f"  {system.name:9} {cell.label:9} {fmt(r.get('ops_per_s'), 0):>8} ops/s  "
                f"p50 {fmt(r.get('p50_ms'))} ms  p99 {fmt(r.get('p99_ms'))} ms  "
                f"CPU {fmt(r.get('server_cpu_s_per_1k_ops'), 3)} s/1k"
                + (
                    f"  [red]errors {r.get('errors')} hung {r.get('hung')}[/]"
                    if r.get("errors") or r.get("hung")
                    else ""
                )
            )
