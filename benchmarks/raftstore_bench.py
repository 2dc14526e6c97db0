#!/usr/bin/env python3
"""Throughput and latency of raftstore, optionally side by side with etcd.

    python benchmarks/raftstore_bench.py [--against etcd] [--duration S] [--out PATH]

Brings up its own 3-member raftstore (``LocalCluster`` in a temporary
directory) and, with ``--against etcd``, its own 3-member etcd 3.4
(``benchmarks/etcd_cluster.py``, default timing; install it with
``scripts/install-etcd.sh``), then runs the identical workload through the
identical harness (``benchmarks/kvbackends.py``) on each:

- put throughput and p50/p99 latency at concurrency 1, 16 and 64 (100-byte
  values, every put to a distinct key);
- linearizable get throughput and p50/p99 at concurrency 16 (over a preloaded
  key set);
- put-to-watch-event latency: a watcher on a prefix, a writer putting
  timestamped values at a fixed rate; latency = event receipt - put start;
- server CPU seconds per 1,000 operations (psutil: the user+sys CPU time
  delta of the three member processes over the measured window / ops), and the
  same for the load generator.

Each cell runs for a fixed time (``--duration``, after ``--warmup``), not a
fixed op count. The load generator runs in separate processes (``--workers``,
each with its own asyncio loop and a share of the concurrency) so it shares
no GIL with the harness; both systems get the same generator. Cells are
interleaved (raftstore, etcd, raftstore, ...) so background noise on a shared
machine falls on both. Results: a rich table, JSON (``--out``) and a PNG plot
beside it. Everything started here is stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

VALUE_SIZE = 100
GET_KEYS_DEFAULT = 1000


# ===========================================================================
# Load generator: runs in child processes, one asyncio loop each.


def _worker_entry(kind: str, spec: dict[str, Any], params: dict[str, Any], conn: Any, counters: Any,
                  idx: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and kills us by PID
    try:
        result = asyncio.run(_worker(kind, spec, params, conn, counters, idx))
        conn.send(("result", result))
    except BaseException as exc:  # report, never hang the parent
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        except Exception:
            pass
    finally:
        conn.close()


class _Stats:
    def __init__(self) -> None:
        self.lat = array.array("d")
        self.errors = 0
        self.error_samples: list[str] = []
        self.last_done = 0.0
        self.max_gap = 0.0

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:400])


async def _worker(kind: str, spec: dict[str, Any], params: dict[str, Any], conn: Any, counters: Any,
                  idx: int) -> dict[str, Any]:
    from kvbackends import make_backend

    conc = int(params["concurrency"])
    loop = asyncio.get_running_loop()
    backend = make_backend(spec, pool=max(conc, 1))
    await backend.start()
    extra: dict[str, Any] = {}
    watcher_backend = None
    if kind == "watch":
        watcher_backend = make_backend(spec, pool=1)
        await watcher_backend.start()

    conn.send(("ready", {"pid": os.getpid()}))
    msg = conn.recv()  # blocks until every worker is ready: ("go", t_start, t_end)
    assert msg[0] == "go", msg
    t_start, t_end = float(msg[1]), float(msg[2])
    mono = time.monotonic
    st = _Stats()
    st.last_done = t_start
    value = (os.urandom(VALUE_SIZE // 2).hex().encode())[:VALUE_SIZE]
    tag = f"w{idx}-{os.getpid()}"

    def done(s: float, e: float) -> None:
        counters[idx] += 1
        if s >= t_start and e <= t_end:
            st.lat.append(e - s)
            gap = e - st.last_done
            if gap > st.max_gap:
                st.max_gap = gap
            st.last_done = e

    if kind == "put":
        prefix = params["prefix"].encode()

        async def put_loop(t: int) -> None:
            n = 0
            while True:
                s = mono()
                if s >= t_end:
                    return
                key = b"%s/%s-t%d-%08d" % (prefix, tag.encode(), t, n)
                n += 1
                try:
                    await backend.put(key, value)
                except Exception as exc:
                    st.error(exc)
                    await asyncio.sleep(0.01)
                    continue
                done(s, mono())

        tasks = [loop.create_task(put_loop(t)) for t in range(conc)]

    elif kind == "get":
        keys = [k.encode() for k in params["keys"]]
        rnd = random.Random(idx)

        async def get_loop(t: int) -> None:
            while True:
                s = mono()
                if s >= t_end:
                    return
                try:
                    v = await backend.get(rnd.choice(keys))
                    if v is None:
                        raise LookupError("preloaded key missing")
                except Exception as exc:
                    st.error(exc)
                    await asyncio.sleep(0.01)
                    continue
                done(s, mono())

        tasks = [loop.create_task(get_loop(t)) for t in range(conc)]

    elif kind == "watch":
        assert watcher_backend is not None
        prefix = params["prefix"].encode()
        rate = float(params["rate"])
        watch = await watcher_backend.watch(prefix + b"/")
        put_lat = array.array("d")
        started_in_window: set[bytes] = set()
        seen: set[bytes] = set()

        async def reader() -> None:
            async for ev in watch:
                r = mono()
                try:
                    s = float(ev.value.split(b" ", 1)[0])
                except ValueError:
                    continue
                seen.add(ev.key)
                if s >= t_start and s <= t_end:
                    counters[idx] += 1
                    st.lat.append(r - s)
                    gap = r - st.last_done
                    if gap > st.max_gap:
                        st.max_gap = gap
                    st.last_done = r

        async def one_put(i: int) -> None:
            s = mono()
            key = b"%s/%s-%08d" % (prefix, tag.encode(), i)
            v = (b"%.9f " % s).ljust(VALUE_SIZE, b"x")
            if t_start <= s <= t_end:
                started_in_window.add(key)
            try:
                await backend.put(key, v)
            except Exception as exc:
                st.error(exc)
                return
            e = mono()
            if t_start <= s and e <= t_end:
                put_lat.append(e - s)

        rtask = loop.create_task(reader())

        async def writer() -> None:
            t0 = mono()
            i = 0
            pending: set[asyncio.Task[None]] = set()
            while True:
                at = t0 + i / rate
                if at >= t_end:
                    break
                delay = at - mono()
                if delay > 0:
                    await asyncio.sleep(delay)
                tk = loop.create_task(one_put(i))
                pending.add(tk)
                tk.add_done_callback(pending.discard)
                i += 1
            if pending:
                await asyncio.wait(pending, timeout=float(params["op_timeout"]))
            # Grace for the last events to arrive.
            deadline = mono() + 2.0
            while mono() < deadline and not started_in_window <= seen:
                await asyncio.sleep(0.01)

        tasks = [loop.create_task(writer())]
        extra = {"put_latencies": put_lat, "rate": rate}

    else:
        raise ValueError(kind)

    # Wait for the loops to finish; stragglers past the op timeout are hangs.
    _, still = await asyncio.wait(tasks, timeout=max(0.0, t_end - mono()) + float(params["op_timeout"]) + 5.0)
    hung = len(still)
    for tk in still:
        tk.cancel()
    for tk in tasks:
        if tk.done() and not tk.cancelled() and tk.exception() is not None:
            st.error(tk.exception())  # type: ignore[arg-type]
    if kind == "watch":
        extra["missed_events"] = len(started_in_window - seen)
        extra["events_expected"] = len(started_in_window)
        rtask.cancel()
        try:
            await watch.cancel()
        except Exception:
            pass
        if rtask.done() and not rtask.cancelled() and rtask.exception() is not None:
            st.error(rtask.exception())  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(backend.close(), 5.0)
        if watcher_backend is not None:
            await asyncio.wait_for(watcher_backend.close(), 5.0)
    except Exception:
        pass
    return {"latencies": st.lat, "errors": st.errors, "error_samples": st.error_samples, "hung": hung,
            "max_gap": st.max_gap if st.lat else None, **extra}


# ===========================================================================
# Harness (parent process)


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
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except Exception:
            pass
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
        shares = [cell.concurrency // nworkers + (1 if i < cell.concurrency % nworkers else 0)
                  for i in range(nworkers)]
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
        result: dict[str, Any] = {"system": system.name, "cell": cell.key, "concurrency": cell.concurrency,
                                  "workers": nworkers}
        try:
            for i, share in enumerate(shares):
                parent_conn, child_conn = self.ctx.Pipe()
                params = dict(params_base, concurrency=share)
                p = self.ctx.Process(target=_worker_entry, args=(cell.kind, system.spec, params, child_conn,
                                                                 counters, i), daemon=True)
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
            progress.update(ptask, total=total, completed=0,
                            description=f"{system.name:9} {cell.label:10} warm-up")
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
                progress.update(ptask, completed=min(total, now - (t_start - a.warmup)),
                                description=f"{system.name:9} {cell.label:10} {phase} {rate:8.0f} ops/s")
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
                    samples.append(f"load worker {p.pid} gave no result {a.op_timeout + 20:.0f} s after the "
                                   f"window closed (killed)")
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
        ms = lambda x: None if x is None else round(x * 1000.0, 3)  # noqa: E731
        result.update({
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
        })
        if cell.kind == "watch":
            put_lat.sort()
            result.update({"writer_rate_per_s": a.watch_rate, "events": ops, "events_expected": expected,
                           "missed_events": missed, "put_p50_ms": ms(pct(put_lat, 50)),
                           "put_p99_ms": ms(pct(put_lat, 99))})
            # Server CPU per op counts the puts: the events are their by-product.
            if srv_cpu is not None and expected:
                result["server_cpu_s_per_1k_ops"] = round(srv_cpu / expected * 1000, 4)
        if errors or hung or (cell.kind == "watch" and missed):
            system.anomalies.append(f"{cell.label}: {errors} errors, {hung} hung"
                                    + (f", {missed}/{expected} watch events missed" if cell.kind == "watch" else "")
                                    + (f"; e.g. {samples[0][:300]}" if samples else ""))
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


# ---- system set-up ----------------------------------------------------------------


def raftstore_status(endpoints: list[str]) -> list[dict[str, Any]]:
    from raftstore.client import RaftstoreClient

    async def go() -> list[dict[str, Any]]:
        c = RaftstoreClient(endpoints, timeout=5.0, request_timeout=2.0)
        try:
            sts = await c.cluster_status()
        finally:
            await c.close()
        keep = ("name", "role", "term", "leader", "leader_changes", "elections_seen", "commit_index",
                "applied_index", "revision", "log_size", "fsyncs", "error")
        return [{k: st.get(k) for k in keep if k in st} for st in sts]

    try:
        return asyncio.run(go())
    except Exception as exc:
        return [{"error": f"{type(exc).__name__}: {exc}"}]


def etcd_status(cluster: Any) -> list[dict[str, Any]]:
    out = []
    for name, url in zip(cluster.names, cluster.endpoints):
        try:
            st = cluster.status(url)
            out.append({"name": name, "leader": st.get("leader"), "member_id": st.get("header", {}).get("member_id"),
                        "term": int(st.get("raftTerm", 0)), "raft_index": int(st.get("raftIndex", 0)),
                        "db_size": int(st.get("dbSize", 0))})
        except Exception as exc:
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


# ---- output -----------------------------------------------------------------------


def fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}"


def ratio_text(cell: Cell, rs: dict[str, Any] | None, et: dict[str, Any] | None) -> tuple[str, float | None]:
    if not rs or not et:
        return "—", None
    if cell.kind == "watch":
        if rs.get("p50_ms") and et.get("p50_ms"):
            r = rs["p50_ms"] / et["p50_ms"]
            return f"p50 {r:.2f}×", round(r, 3)
        return "—", None
    if rs.get("ops_per_s") and et.get("ops_per_s"):
        r = rs["ops_per_s"] / et["ops_per_s"]
        return f"{r:.2f}×", round(r, 3)
    return "—", None


def plot(path: str, cells: list[Cell], results: dict[str, dict[str, dict[str, Any]]], systems: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"raftstore": "#1f77b4", "etcd": "#ff7f0e"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    w = 0.8 / max(1, len(systems))
    tput_cells = [c for c in cells if c.kind != "watch"]
    ax = axes[0]
    for j, s in enumerate(systems):
        vals = [(results.get(c.key, {}).get(s) or {}).get("ops_per_s") or 0 for c in tput_cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(tput_cells))]
        bars = ax.bar(xs, vals, w, label=s, color=colors.get(s))
        ax.bar_label(bars, fmt=lambda v: f"{v:,.0f}", fontsize=7)
    ax.set_xticks(range(len(tput_cells)), [c.label for c in tput_cells])
    ax.set_ylabel("ops/s")
    ax.set_title("throughput (higher is better)")
    ax.legend()

    ax = axes[1]
    for j, s in enumerate(systems):
        p50 = [(results.get(c.key, {}).get(s) or {}).get("p50_ms") or 0 for c in cells]
        p99 = [(results.get(c.key, {}).get(s) or {}).get("p99_ms") or 0 for c in cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(cells))]
        ax.bar(xs, p99, w, color=colors.get(s), alpha=0.35, label=f"{s} p99")
        ax.bar(xs, p50, w, color=colors.get(s), label=f"{s} p50")
    ax.set_yscale("log")
    ax.set_xticks(range(len(cells)), [c.label for c in cells], rotation=15)
    ax.set_ylabel("latency, ms (log)")
    ax.set_title("latency p50 (solid) / p99 (pale), lower is better")
    ax.legend(fontsize=8)

    ax = axes[2]
    for j, s in enumerate(systems):
        vals = [(results.get(c.key, {}).get(s) or {}).get("server_cpu_s_per_1k_ops") or 0 for c in cells]
        xs = [i + (j - (len(systems) - 1) / 2) * w for i in range(len(cells))]
        bars = ax.bar(xs, vals, w, label=s, color=colors.get(s))
        ax.bar_label(bars, fmt=lambda v: f"{v:.2f}", fontsize=7)
    ax.set_xticks(range(len(cells)), [c.label for c in cells], rotation=15)
    ax.set_ylabel("server CPU s / 1,000 ops")
    ax.set_title("server CPU per op (lower is better)")
    ax.legend()
    fig.suptitle("raftstore" + (" vs etcd" if "etcd" in systems else "") + " — 3 members on loopback")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ===========================================================================


class _Terminated(BaseException):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", choices=["etcd"], help="also run every cell against a 3-member etcd")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell (default 5)")
    p.add_argument("--warmup", type=float, default=1.5, help="warm-up seconds per cell (default 1.5)")
    p.add_argument("--out", default=os.path.join(HERE, "out", "raftstore_bench.json"), help="JSON output path")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes per cell (default 2)")
    p.add_argument("--watch-rate", type=float, default=100.0, help="writer puts/s in the watch cell (default 100)")
    p.add_argument("--get-keys", type=int, default=GET_KEYS_DEFAULT, help="keys preloaded for the get cell")
    p.add_argument("--op-timeout", type=float, default=10.0, help="client timeout per operation, s")
    p.add_argument("--etcd-client", choices=["gateway", "grpc"], default="grpc",
                   help="etcd client path: its native gRPC API via aetcd (default; pip install -e '.[bench]') "
                        "or the JSON gRPC gateway over aiohttp")
    p.add_argument("--etcd-endpoint", choices=["leader", "follower"], default="leader",
                   help="which etcd member the client pins (default: the leader, etcd's best case)")
    p.add_argument("--order", choices=["interleave", "sequential"], default="interleave",
                   help="interleave systems cell by cell (default) or run all of one system first")
    p.add_argument("--keep-data", action="store_true", help="keep the clusters' data directories and logs")
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console()
    if not console.is_terminal and console.width < 132:
        console = Console(width=132)  # piped or logged: don't squeeze the tables to 80 columns
    signal.signal(signal.SIGTERM, _on_sigterm)
    bench = Bench(args, console)
    cells = [
        Cell("put_c1", "put c=1", "put", 1),
        Cell("put_c16", "put c=16", "put", 16),
        Cell("put_c64", "put c=64", "put", 64),
        Cell("get_c16", "get c=16", "get", 16),
        Cell("watch", "watch", "watch", 1),
    ]
    systems: list[System] = []
    results: dict[str, dict[str, dict[str, Any]]] = {c.key: {} for c in cells}
    doc: dict[str, Any] = {}
    lc = None
    etcd = None
    rs_dir = None
    failed = False
    try:
        from raftstore.localcluster import LocalCluster

        etcd_version = None
        if args.against == "etcd":
            from etcd_cluster import etcd_version as _ev

            etcd_version = _ev()
        machine = machine_info(etcd_version)

        # ---- raftstore ----
        rs_dir = tempfile.mkdtemp(prefix="raftstore-bench-")
        console.print(f"[bold]raftstore[/]: starting 3 members in {rs_dir}")
        lc = LocalCluster.create(rs_dir)
        lc.start()
        lc.wait_serving(30)
        rs_endpoints = lc.endpoints
        st = raftstore_status(rs_endpoints)
        deadline = time.monotonic() + 20
        while not any(s.get("role") == "leader" for s in st) and time.monotonic() < deadline:
            time.sleep(0.2)
            st = raftstore_status(rs_endpoints)
        if not any(s.get("role") == "leader" for s in st):
            raise RuntimeError(f"raftstore elected no leader in 20 s: {st}")
        _lc = lc

        def rs_pids() -> list[int]:
            return [pid for pid in (_lc.pid(m.name) for m in _lc.config.members) if pid]

        systems.append(System("raftstore", {"system": "raftstore", "endpoints": rs_endpoints,
                                            "timeout": args.op_timeout},
                              rs_pids, lambda: raftstore_status(rs_endpoints), rs_dir,
                              logs=[os.path.join(rs_dir, m.name, "member.log") for m in lc.config.members]))

        # ---- etcd ----
        if args.against == "etcd":
            from etcd_cluster import EtcdCluster

            etcd = EtcdCluster(3)
            console.print("[bold]etcd[/]: starting 3 members (default timing: heartbeat 100 ms, election 1000 ms)")
            etcd.start()
            pinned = etcd.leader_endpoint() if args.etcd_endpoint == "leader" else etcd.follower_endpoint()
            _etcd = etcd
            systems.append(System("etcd", {"system": "etcd", "endpoint": pinned, "client": args.etcd_client,
                                           "timeout": args.op_timeout},
                                  lambda: list(_etcd.pids.values()), lambda: etcd_status(_etcd),
                                  etcd.tmpdir or "", logs=[etcd.log_path(n) for n in etcd.names]))
            console.print(f"etcd {etcd.version.get('etcd')} client: {args.etcd_client}, pinned to the "
                          f"{args.etcd_endpoint} {pinned}")

        for s in systems:
            s.status0 = s.status()
        idle = {s.name: bench.idle_cpu(s) for s in systems}
        console.print("idle server CPU (cores): " + ", ".join(f"{k} {v:.3f}" for k, v in idle.items()))

        order: list[tuple[Cell, System]]
        if args.order == "interleave":
            order = [(c, s) for c in cells for s in systems]
        else:
            order = [(c, s) for s in systems for c in cells]
        preloaded: set[str] = set()
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            overall = progress.add_task("cells", total=len(order))
            ptask = progress.add_task("", total=1)
            for cell, system in order:
                if cell.kind == "get" and system.name not in preloaded:
                    progress.update(ptask, description=f"{system.name:9} preloading {args.get_keys} keys",
                                    completed=0)
                    bench.preload(system)
                    preloaded.add(system.name)
                before = system.status()
                try:
                    r = bench.run_cell(system, cell, progress, ptask)
                except Exception as exc:
                    r = {"system": system.name, "cell": cell.key, "failed": f"{type(exc).__name__}: {exc}"}
                    system.anomalies.append(f"{cell.label}: harness failure {type(exc).__name__}: {exc}")
                after = system.status()
                r["status_before"], r["status_after"] = before, after
                if terms(before) != terms(after):
                    system.anomalies.append(f"{cell.label}: term changed during the cell "
                                            f"({sorted(map(str, terms(before)))} -> {sorted(map(str, terms(after)))})")
                if not system.pids() or len(system.pids()) < 3:
                    system.anomalies.append(f"{cell.label}: only {len(system.pids())} of 3 members alive after")
                results[cell.key][system.name] = r
                progress.advance(overall)
                progress.console.print(
                    f"  {system.name:9} {cell.label:9} {fmt(r.get('ops_per_s'), 0):>8} ops/s  "
                    f"p50 {fmt(r.get('p50_ms'))} ms  p99 {fmt(r.get('p99_ms'))} ms  "
                    f"CPU {fmt(r.get('server_cpu_s_per_1k_ops'), 3)} s/1k"
                    + (f"  [red]errors {r.get('errors')} hung {r.get('hung')}[/]" if r.get("errors") or r.get("hung")
                       else ""))

        # ---- report ----
        names = [s.name for s in systems]
        have_etcd = "etcd" in names
        table = Table(title="raftstore" + (" vs etcd" if have_etcd else "") +
                      f" — 3 members on loopback, {args.duration:g} s per cell, 100-byte values")
        table.add_column("workload")
        for n in ("raftstore", "etcd"):
            table.add_column(f"{n}\nops/s", justify="right")
            table.add_column(f"{n}\np50 ms", justify="right")
            table.add_column(f"{n}\np99 ms", justify="right")
        table.add_column("ratio\nraftstore/etcd", justify="right")
        rows = []
        for c in cells:
            rs, et = results[c.key].get("raftstore"), results[c.key].get("etcd")
            rtxt, rval = ratio_text(c, rs, et)
            label = c.label if c.kind != "watch" else f"put→watch @{args.watch_rate:g}/s"
            table.add_row(label,
                          fmt((rs or {}).get("ops_per_s"), 0), fmt((rs or {}).get("p50_ms")),
                          fmt((rs or {}).get("p99_ms")),
                          fmt((et or {}).get("ops_per_s"), 0), fmt((et or {}).get("p50_ms")),
                          fmt((et or {}).get("p99_ms")), rtxt)
            rs_cpu, et_cpu = (rs or {}).get("server_cpu_s_per_1k_ops"), (et or {}).get("server_cpu_s_per_1k_ops")
            rows.append({"cell": c.key, "label": c.label, "ratio": rval,
                         "ratio_kind": "p50 latency" if c.kind == "watch" else "throughput",
                         "server_cpu_per_op_ratio": round(rs_cpu / et_cpu, 3) if rs_cpu and et_cpu else None})
        console.print(table)
        cpu_table = Table(title="CPU seconds per 1,000 ops (server = sum of 3 members; client = load generator)")
        cpu_table.add_column("workload")
        for n in names:
            cpu_table.add_column(f"{n}\nserver s/1k", justify="right")
            cpu_table.add_column(f"{n}\nserver cores", justify="right")
            cpu_table.add_column(f"{n}\nclient s/1k", justify="right")
        if have_etcd:
            cpu_table.add_column("server CPU/op\nraftstore/etcd", justify="right")
        for c in cells:
            row = [c.label]
            for n in names:
                r = results[c.key].get(n) or {}
                row += [fmt(r.get("server_cpu_s_per_1k_ops"), 3), fmt(r.get("server_cpu_cores"), 2),
                        fmt(r.get("client_cpu_s_per_1k_ops"), 3)]
            if have_etcd:
                cr = next(x["server_cpu_per_op_ratio"] for x in rows if x["cell"] == c.key)
                row.append("—" if cr is None else f"{cr:.2f}×")
            cpu_table.add_row(*row)
        console.print(cpu_table)

        # ---- targets ----
        targets = []
        rs64, et64 = results["put_c64"].get("raftstore") or {}, results["put_c64"].get("etcd") or {}
        if have_etcd and rs64.get("ops_per_s") and et64.get("ops_per_s"):
            ratio = rs64["ops_per_s"] / et64["ops_per_s"]
            p99_ok = rs64.get("p99_ms") is not None and et64.get("p99_ms") is not None and \
                rs64["p99_ms"] <= et64["p99_ms"]
            targets.append({"target": "put c=64 throughput >= 1.5x etcd", "value": round(ratio, 3),
                            "passed": ratio >= 1.5})
            targets.append({"target": "put c=64 p99 <= etcd p99", "value": [rs64.get("p99_ms"), et64.get("p99_ms")],
                            "passed": p99_ok})
        else:
            targets.append({"target": "put c=64 throughput >= 1.5x etcd, p99 <= etcd's", "value": None,
                            "passed": None, "note": "needs --against etcd"})
        p50 = (results["put_c1"].get("raftstore") or {}).get("p50_ms")
        targets.append({"target": "single-client put p50 <= 2 ms", "value": p50,
                        "passed": None if p50 is None else p50 <= 2.0})
        for t in targets:
            verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}[t["passed"]]
            console.print(f"{verdict}  {t['target']}: {t['value']}")
        for s in systems:
            for an in s.anomalies:
                console.print(f"[red]anomaly[/] {s.name}: {an}")
            if s.anomalies:
                console.print(f"  logs: {' '.join(s.logs)}")

        machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        import raftstore

        doc = {
            "benchmark": "raftstore_bench",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine,
            "raftstore_version": getattr(raftstore, "__version__", None),
            "config": {
                "duration_s": args.duration, "warmup_s": args.warmup, "value_bytes": VALUE_SIZE,
                "workers": args.workers, "watch_rate_per_s": args.watch_rate, "get_keys": args.get_keys,
                "op_timeout_s": args.op_timeout, "order": args.order,
                "etcd_client": args.etcd_client if have_etcd else None,
                "etcd_pinned_endpoint": args.etcd_endpoint if have_etcd else None,
                "etcd_timing": {"heartbeat_ms": 100, "election_ms": 1000} if have_etcd else None,
                "raftstore_tuning": lc.config.tuning.__dict__ if lc else None,
                "notes": [
                    "latency = client-observed time per operation in the load generator",
                    "put→watch latency = watcher's receipt of the event - the writer's put start (same process)",
                    "server CPU per 1k ops = delta of user+sys CPU of the 3 member processes over the measured "
                    "window / ops completed in it (watch cell: / puts issued)",
                    "etcd clients pin one endpoint like etcd's own clients; here the leader (its best case)",
                ],
            },
            "idle_server_cpu_cores": idle,
            "cells": results,
            "summary": rows,
            "targets": targets,
            "anomalies": {s.name: s.anomalies for s in systems},
            "status_at_start": {s.name: s.status0 for s in systems},
        }
        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(doc, f, indent=2, default=lambda o: list(o) if isinstance(o, (set, array.array)) else str(o))
        png = os.path.splitext(out)[0] + ".png"
        try:
            plot(png, cells, results, names)
        except Exception as exc:
            console.print(f"[yellow]plot failed: {exc}[/]")
            png = None
        console.print(f"JSON: {out}" + (f"\nplot: {png}" if png else ""))
        if any(s.anomalies for s in systems):
            failed = True
    except (KeyboardInterrupt, _Terminated):
        console.print("[red]interrupted[/]")
        failed = True
        return 130
    except Exception:
        failed = True
        console.print_exception()
        return 1
    finally:
        keep = args.keep_data or failed
        if etcd is not None:
            etcd.keep_data = keep
            etcd.stop()
            if keep and etcd.tmpdir:
                console.print(f"etcd data and logs kept in {etcd.tmpdir}")
        if lc is not None:
            lc.stop()
            for m in lc.config.members:  # belt and braces, by PID
                if lc.pid(m.name):
                    lc.kill(m.name)
        if rs_dir:
            if keep:
                console.print(f"raftstore data and logs kept in {rs_dir}")
            else:
                shutil.rmtree(rs_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
