"""The consensus lab's run: workload under nemeses, then heal, check and report.

:func:`run_chaos` (and ``raftstore chaos``):

1. brings up its own three members in ``OUT/data`` (or uses ``--endpoints``:
   then only admin-endpoint faults -- partitions and slow disk -- are
   possible, since killing and pausing needs the member processes);
2. runs the workload (:mod:`raftstore.chaos.workload`) and the nemeses
   (:mod:`raftstore.chaos.nemesis`) for the duration, with a live progress
   display (rich on a terminal, a line every few seconds otherwise);
3. heals everything, waits for a leader and for every member to hold the
   same state (digest), reads every key one last time, and reads the store's
   event history back for the watch checker;
4. runs every checker (linearizability with a timeout that turns undecided
   keys into "unknown"; lost adds; lost acknowledged register writes; watch)
   and times each;
5. computes availability (share of the run not inside a write-unavailability
   window, plus the share of 1-second bins with a successful write),
   write-unavailability windows (gaps longer than ``gap_threshold`` between
   successful writes: count, median, max), elections seen (from the members'
   ``raft-events.jsonl``), recovery after each fault;
6. writes ``history.jsonl``, ``history.porcupine.json``, ``faults.json``,
   ``raft-events.jsonl``, ``results.json``, ``report.md`` and the PNG plots.

Everything it starts it stops, by PID, in ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from raftstore.chaos.checkers import (
    check_acknowledged_writes,
    check_linearizable,
    check_lost_writes,
    check_watch,
)
from raftstore.chaos.faults import Faults
from raftstore.chaos.history import History, pair_ops
from raftstore.chaos.nemesis import PROCESS_NEMESES, NemesisRunner, parse_nemeses
from raftstore.chaos.workload import Clock, Workload, WorkloadConfig
from raftstore.client import RaftstoreClient, RaftstoreError
from raftstore.config import RaftTuning
from raftstore.localcluster import LocalCluster

log = logging.getLogger("raftstore.chaos.runner")

SUCCESSFUL_WRITE_FS = frozenset({"write", "cas", "add"})


@dataclass
class RunConfig:
    nemeses: list[str]
    duration: float = 60.0
    clients: int = 8
    out: str = "chaos-out"
    endpoints: list[str] | None = None
    seed: int = 0
    interval: float = 5.0
    hold: float | None = None
    keys: int = 16
    set_keys: int = 4
    unsafe_local_reads: bool = False
    pinned_readers: bool = False
    op_timeout: float = 2.0
    attempt_timeout: float = 0.5
    checker_timeout: float = 60.0
    gap_threshold: float = 0.25
    slow_disk_seconds: float = 0.05
    overlap: bool = False  # let faults of different nemeses overlap
    progress: bool | None = None  # None: rich on a terminal, plain lines otherwise
    plots: bool = True
    data_dir: str | None = None  # default OUT/data
    tuning: RaftTuning | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tuning"] = asdict(self.tuning) if self.tuning else None
        return d


# ---------------------------------------------------------------- analysis (pure)


def op_counts(history: History) -> dict[str, Any]:
    """Operation counts by completion type, overall and per op kind."""
    by_type: Counter[str] = Counter()
    by_f: dict[str, Counter[str]] = {}
    for inv, comp in pair_ops(history):
        status = "info" if comp is None else comp.type
        by_type[status] += 1
        by_f.setdefault(inv.f, Counter())[status] += 1
    return {
        "total": sum(by_type.values()),
        "ok": by_type["ok"], "fail": by_type["fail"], "info": by_type["info"],
        "by_f": {f: {"ok": c["ok"], "fail": c["fail"], "info": c["info"]} for f, c in sorted(by_f.items())},
    }


def latency_stats(history: History) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    for inv, comp in pair_ops(history):
        if comp is None:
            continue
        lat.setdefault(f"{inv.f}:{comp.type}", []).append(comp.time - inv.time)
    out = {}
    for k, xs in sorted(lat.items()):
        xs.sort()
        out[k] = {"count": len(xs), "p50": _pct(xs, 0.5), "p99": _pct(xs, 0.99), "max": xs[-1]}
    return out


def _pct(sorted_xs: Sequence[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    i = min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))
    return sorted_xs[i]


def successful_write_times(history: History, start: float = -math.inf, end: float = math.inf) -> list[float]:
    """Completion times of ok writes, cas and adds within [start, end], sorted."""
    out = [comp.time for inv, comp in pair_ops(history)
           if comp is not None and comp.type == "ok" and inv.f in SUCCESSFUL_WRITE_FS and start <= comp.time <= end]
    out.sort()
    return out


def write_unavailability(times: Sequence[float], start: float, end: float,
                         threshold: float = 0.25) -> dict[str, Any]:
    """Windows longer than ``threshold`` with no successful write completing.

    The gaps considered are start -> first success, between consecutive
    successes, and last success -> end.  ``availability`` is the share of
    [start, end] outside those windows."""
    points = [start, *[t for t in times if start <= t <= end], end]
    windows = [(a, b) for a, b in zip(points, points[1:]) if b - a > threshold]
    lengths = [b - a for a, b in windows]
    duration = max(end - start, 1e-9)
    return {
        "threshold": threshold,
        "count": len(windows),
        "median": statistics.median(lengths) if lengths else 0.0,
        "max": max(lengths) if lengths else 0.0,
        "total": sum(lengths),
        "availability": max(0.0, 1.0 - sum(lengths) / duration),
        "windows": [[round(a, 6), round(b, 6)] for a, b in windows],
    }


def availability_bins(times: Sequence[float], start: float, end: float, width: float = 1.0) -> float:
    """Share of ``width``-second bins of [start, end) with at least one successful write."""
    n = max(1, int(math.ceil((end - start) / width)))
    hit = {int((t - start) // width) for t in times if start <= t < end}
    return len(hit) / n


def elections(events: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Elections seen in the members' role/term events within [start, end].

    ``elections`` counts terms in which some member became leader during the
    window; ``term_changes`` counts how far the highest term moved;
    ``leaders`` is the leadership timeline (time, leader, term)."""
    evs = sorted((e for e in events if "time" in e), key=lambda e: e["time"])
    before = [e.get("term", 0) for e in evs if e["time"] < start]
    during = [e for e in evs if start <= e["time"] <= end]
    leader_terms: dict[int, tuple[float, str]] = {}
    for e in during:
        if e.get("role") == "leader":
            leader_terms.setdefault(int(e.get("term", 0)), (e["time"], str(e.get("member"))))
    max_before = max(before, default=0)
    max_during = max((e.get("term", 0) for e in during), default=max_before)
    timeline = [{"time": t, "leader": m, "term": term} for term, (t, m) in sorted(leader_terms.items())]
    return {
        "elections": len(leader_terms),
        "term_at_start": max_before,
        "term_at_end": max(max_before, max_during),
        "term_changes": max(0, max_during - max_before),
        "leaders": timeline,
        "candidacies": sum(1 for e in during if e.get("role") == "candidate"),
    }


def successful_write_spans(history: History) -> list[tuple[float, float]]:
    """(invoke, completion) of every ok write, cas and add, by invocation time."""
    out = [(inv.time, comp.time) for inv, comp in pair_ops(history)
           if comp is not None and comp.type == "ok" and inv.f in SUCCESSFUL_WRITE_FS]
    out.sort()
    return out


def recovery_after_faults(windows: Sequence[dict[str, Any]], spans: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    """For each fault: how long after its start (and after its stop) the first
    successful write *invoked* after that moment completed."""
    def first_after(t: float | None) -> float | None:
        if not t:
            return None
        done = [c for i, c in spans if i >= t]
        return min(done) - t if done else None

    out = []
    for w in windows:
        if w.get("skipped") or w.get("error"):
            continue
        out.append({
            "nemesis": w["nemesis"], "start": w["start"], "description": w.get("description", ""),
            "first_write_after_start": first_after(w["start"]),
            "first_write_after_stop": first_after(w.get("stop")),
        })
    return out


def read_raft_events(data_dir: str, names: Sequence[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for name in names:
        path = os.path.join(data_dir, name, "raft-events.jsonl")
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        try:
                            events.append(json.loads(line))
                        except json.JSONDecodeError:
                            pass  # a line cut short by SIGKILL
        except FileNotFoundError:
            pass
    events.sort(key=lambda e: e.get("time", 0))
    return events


def overall_verdict(verdicts: Sequence[Any]) -> Any:
    if any(v is False for v in verdicts):
        return False
    if any(v != True for v in verdicts):  # noqa: E712 -- "unknown" and None
        return "unknown"
    return True


# ---------------------------------------------------------------- progress


class Progress:
    """Live view while the run goes: rich on a terminal, plain lines otherwise."""

    def __init__(self, enabled: bool | None, duration: float) -> None:
        self.tty = sys.stderr.isatty()
        self.enabled = True if enabled is None else enabled
        self.duration = duration
        self.events: list[str] = []
        self.leader = "?"
        self.term = 0
        self._live: Any = None
        self._last_line = 0.0

    def event(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        del self.events[:-6]
        if self.enabled and not self.tty:
            print(f"[chaos] {text}", file=sys.stderr, flush=True)

    def start(self) -> None:
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()

    def update(self, elapsed: float, workload: Workload, nemesis: NemesisRunner, rate: float) -> None:
        if not self.enabled:
            return
        counts = workload.counts
        active = ", ".join(f"{w.nemesis} ({w.description})" for w in nemesis.active) or "none"
        if self._live is not None:
            from rich.console import Group
            from rich.progress_bar import ProgressBar
            from rich.table import Table
            from rich.text import Text

            t = Table.grid(padding=(0, 2))
            t.add_row("elapsed", f"{elapsed:5.1f} / {self.duration:.0f} s")
            t.add_row("ops", Text.assemble((f"ok {counts['ok']}", "green"), "  ",
                                           (f"fail {counts['fail']}", "red"), "  ",
                                           (f"info {counts['info']}", "yellow"), f"   {rate:.0f} ops/s"))
            t.add_row("leader", f"{self.leader} (term {self.term})")
            t.add_row("faults", active)
            bar = ProgressBar(total=self.duration, completed=min(elapsed, self.duration), width=50)
            self._live.update(Group(Text("raftstore chaos", style="bold"), bar, t,
                                    Text("\n".join(self.events[-5:]), style="dim")))
        elif time.monotonic() - self._last_line >= 5.0:
            self._last_line = time.monotonic()
            print(f"[chaos] {elapsed:5.1f}/{self.duration:.0f}s ok={counts['ok']} fail={counts['fail']} "
                  f"info={counts['info']} {rate:.0f} ops/s leader={self.leader} faults: {active}",
                  file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


# ---------------------------------------------------------------- the run


async def _wait_converged(client: RaftstoreClient, endpoints: Sequence[str], timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    started = loop.time()
    digests: list[dict[str, Any]] = []
    while loop.time() < deadline:
        try:
            digests = [await client.digest(ep) for ep in endpoints]
        except (RaftstoreError, OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.2)
            continue
        if len({(d["digest"], d["revision"]) for d in digests}) == 1:
            return {"converged": True, "seconds": loop.time() - started, "revision": digests[0]["revision"]}
        await asyncio.sleep(0.2)
    return {"converged": False, "seconds": loop.time() - started,
            "digests": [{"revision": d.get("revision"), "digest": d.get("digest")} for d in digests]}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


async def _run(cfg: RunConfig, out: Path, state: dict[str, Any]) -> dict[str, Any]:
    clock = Clock()
    problems: list[str] = []
    unsupported = [n for n in cfg.nemeses if n in PROCESS_NEMESES]
    cluster: LocalCluster | None = None
    extra: dict[str, list[str]] = {}
    if cfg.endpoints:
        if unsupported:
            raise ValueError(
                f"with --endpoints only admin-endpoint faults are possible (partitions, slow disk); "
                f"{', '.join(unsupported)} need the member processes: run without --endpoints")
        if cfg.unsafe_local_reads:
            raise ValueError("--unsafe-local-reads is a member flag: it needs the lab's own cluster, not --endpoints")
        endpoints = list(cfg.endpoints)
        faults = await Faults.for_endpoints(endpoints)
        mode = "endpoints"
    else:
        data_dir = cfg.data_dir or str(out / "data")
        _prepare_data_dir(data_dir)
        cluster = LocalCluster.create(data_dir, tuning=cfg.tuning)
        state["cluster"] = cluster
        if cfg.unsafe_local_reads:
            extra = {m.name: ["--unsafe-local-reads"] for m in cluster.config.members}
        cluster.start(extra_args=extra)
        await asyncio.to_thread(cluster.wait_serving, 30.0)
        endpoints = cluster.endpoints
        faults = Faults.for_cluster(cluster, extra_args=extra)
        mode = "local"
    state["faults"] = faults
    admin = RaftstoreClient(endpoints, timeout=30.0)
    state["clients"] = [admin]
    await admin.wait_for_leader(timeout=30.0)

    run_id = uuid.uuid4().hex[:8]
    wcfg = WorkloadConfig(
        clients=cfg.clients, keys=cfg.keys, set_keys=cfg.set_keys, op_timeout=cfg.op_timeout,
        attempt_timeout=min(cfg.attempt_timeout, cfg.op_timeout),
        pinned_readers=list(endpoints) if (cfg.pinned_readers or cfg.unsafe_local_reads) else [],
        prefix=f"chaos/{run_id}/", seed=cfg.seed,
    )
    workload = Workload(endpoints, wcfg, clock=clock)
    state["workload"] = workload
    progress = Progress(cfg.progress, cfg.duration)
    nemesis = NemesisRunner(faults, cfg.nemeses, duration=cfg.duration, interval=cfg.interval, hold=cfg.hold,
                            seed=cfg.seed, clock=clock, on_event=progress.event,
                            slow_disk_seconds=cfg.slow_disk_seconds, exclusive=not cfg.overlap)
    state["nemesis"] = nemesis
    await workload.setup()

    stop = asyncio.Event()
    progress.start()
    t_start = clock()
    work_task = asyncio.create_task(workload.run(stop))
    nem_task = asyncio.create_task(nemesis.run(t0=t_start))
    try:
        last_ops, last_t = 0, time.monotonic()
        rate = 0.0
        next_status = 0.0
        while clock() - t_start < cfg.duration:
            if work_task.done():
                work_task.result()  # a crashed workload is a bug: surface it
                break
            await asyncio.sleep(0.25)
            now = time.monotonic()
            done = sum(workload.counts.values())
            if now - last_t >= 1.0:
                rate, last_ops, last_t = (done - last_ops) / (now - last_t), done, now
            if progress.enabled and now >= next_status:
                next_status = now + 1.0
                sts = await faults.statuses()
                lead = [(st.get("term", 0), n) for n, st in sts.items() if st.get("role") == "leader"]
                if lead:
                    progress.term, progress.leader = max(lead)
                else:
                    progress.leader = "none"
            progress.update(clock() - t_start, workload, nemesis, rate)
        stop.set()
        t_end = clock()
        await work_task
    finally:
        stop.set()
        progress.stop()
        progress.event("healing every fault")
        state["heal_problems"] = await nemesis.heal_all()
        nem_task.cancel()
        await asyncio.gather(nem_task, work_task, return_exceptions=True)
    problems.extend(state.get("heal_problems", []))
    t_healed = clock()

    try:
        await admin.wait_for_leader(timeout=30.0)
    except RaftstoreError as exc:
        problems.append(f"no leader after healing: {exc}")
    convergence = await _wait_converged(admin, endpoints, timeout=60.0)
    if not convergence["converged"]:
        problems.append("members did not converge to the same state after healing")
    progress.event("final reads")
    finals = await workload.final_reads(timeout=30.0)
    observed, reference = await workload.finish_watch(timeout=60.0)
    if workload.watch_error:
        problems.append(f"watcher: {workload.watch_error}")

    # Raft events: files for our own members (they survive restarts), else the members' memory.
    if cluster is not None:
        raft_events = read_raft_events(cluster.data_dir, faults.names)
    else:
        raft_events = []
        for name, ep in faults.members.items():
            try:
                for ch in await admin.call("role_changes", endpoint=ep, leader=False):
                    raft_events.append({"member": name, **ch})
            except RaftstoreError as exc:
                problems.append(f"role_changes from {name}: {exc}")
        raft_events.sort(key=lambda e: e.get("time", 0))
        try:  # tidy up after ourselves on someone else's cluster
            await admin.delete(wcfg.prefix, prefix=True)
        except RaftstoreError:
            pass

    # Stop our members before checking: the checkers want the CPU.
    await workload.close()
    await admin.close()
    await faults.close()
    state["clients"] = []
    if cluster is not None:
        await asyncio.to_thread(cluster.stop)
        state["cluster"] = None

    history = workload.history
    progress.event(f"checking {len(history)} events")
    lin, lin_s = _timed(lambda: check_linearizable(history, timeout=cfg.checker_timeout))
    sets, sets_s = _timed(lambda: check_lost_writes(history))
    acks, acks_s = _timed(lambda: check_acknowledged_writes(history, finals))
    if reference is not None:
        watch, watch_s = _timed(lambda: check_watch(observed, reference, start_revision=workload.start_revision))
        watch_d = {**watch.to_dict(), "elapsed": watch_s, "reconnects": workload.watch_reconnects,
                   "error": workload.watch_error}
    else:
        watch_d = {"valid": "unknown", "elapsed": 0.0, "observed_count": len(observed),
                   "error": workload.watch_error or "reference history could not be read"}
    checkers = {
        "linearizable": {**lin.to_dict(), "elapsed": lin_s,
                         "explanation": lin.explain() if lin.valid is not True else ""},
        "lost_writes": {**sets.to_dict(), "elapsed": sets_s},
        "acknowledged_writes": {**acks.to_dict(), "elapsed": acks_s},
        "watch": watch_d,
    }
    valid = overall_verdict([c["valid"] for c in checkers.values()])

    write_times = successful_write_times(history, t_start, t_end)
    unavail = write_unavailability(write_times, t_start, t_end, cfg.gap_threshold)
    windows = nemesis.to_dicts()
    results: dict[str, Any] = {
        "valid": valid,
        "config": cfg.to_dict(),
        "mode": mode,
        "members": faults.members,
        "unsafe_local_reads": cfg.unsafe_local_reads,
        "data_dir": cluster.data_dir if cluster is not None else None,
        "key_prefix": wcfg.prefix,
        "pinned_readers": {str(pid): ep for pid, ep in workload.pinned_processes.items()},
        "times": {"start": t_start, "end": t_end, "healed": t_healed, "duration": t_end - t_start},
        "operations": op_counts(history),
        "history_events": len(history),
        "throughput_ok_per_s": op_counts(history)["ok"] / max(1e-9, t_end - t_start),
        "latency": latency_stats(history),
        "availability": {
            "gap_based": unavail["availability"],
            "one_second_bins_with_a_write": availability_bins(write_times, t_start, t_end),
        },
        "write_unavailability": unavail,
        "elections": elections(raft_events, t_start, t_end),
        "faults": windows,
        "recovery": recovery_after_faults(windows, successful_write_spans(history)),
        "convergence": convergence,
        "checkers": checkers,
        "checker_seconds": {k: v.get("elapsed", 0.0) for k, v in checkers.items()},
        "lost_acknowledged_writes": len(sets.lost) + len(acks.lost),
        "problems": problems,
    }

    history.write_jsonl(out / "history.jsonl")
    history.to_porcupine(out / "history.porcupine.json")
    (out / "faults.json").write_text(json.dumps({"windows": windows, "actions": faults.log}, indent=1))
    with open(out / "raft-events.jsonl", "w", encoding="utf-8") as fh:
        for e in raft_events:
            fh.write(json.dumps(e) + "\n")
    with open(out / "watch.json", "w", encoding="utf-8") as fh:
        json.dump({"start_revision": workload.start_revision, "observed": observed, "reference": reference}, fh)
    plots: dict[str, str] = {}
    if cfg.plots:
        try:
            from raftstore.chaos.plots import make_plots

            plots = make_plots(out, history, raft_events, windows, t_start, t_end, faults.names)
        except Exception as exc:  # plots are a nicety: never lose the verdict over them
            log.exception("plots failed")
            problems.append(f"plots failed: {exc}")
    results["files"] = {
        "history": "history.jsonl", "porcupine": "history.porcupine.json", "faults": "faults.json",
        "raft_events": "raft-events.jsonl", "watch": "watch.json", "report": "report.md", "plots": plots,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    (out / "report.md").write_text(render_report(results))
    return results


def _json_default(o: Any) -> Any:
    if isinstance(o, set | frozenset | tuple):
        return sorted(o) if isinstance(o, set | frozenset) else list(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)


def _prepare_data_dir(data_dir: str) -> None:
    """A fresh data directory: an old one of ours is removed unless a member still runs in it."""
    if not os.path.exists(data_dir):
        return
    if not os.path.exists(os.path.join(data_dir, "cluster.json")):
        if os.listdir(data_dir):
            raise ValueError(f"{data_dir} exists and is not a raftstore data directory; choose another --out")
        return
    old = LocalCluster(data_dir)
    alive = [m.name for m in old.config.members if old.pid(m.name) is not None]
    if alive:
        raise ValueError(f"members {', '.join(alive)} still run in {data_dir}; stop them first "
                         f"(raftstore down --data-dir {data_dir})")
    shutil.rmtree(data_dir)


def run_chaos(cfg: RunConfig) -> dict[str, Any]:
    """Run one chaos experiment (blocking); returns the results dict.

    Whatever happens, every member this run started is stopped (by PID)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}

    async def main() -> dict[str, Any]:
        try:
            return await _run(cfg, out, state)
        finally:
            # Best-effort cleanup inside the loop (cancellation, errors).
            for c in state.get("clients", []):
                try:
                    await c.close()
                except Exception:
                    pass
            w = state.get("workload")
            if w is not None:
                await w.close()
            f = state.get("faults")
            if f is not None and state.get("cluster") is not None:
                try:
                    await asyncio.wait_for(f.heal_all(timeout=5.0), 15.0)
                except Exception:
                    pass
            if f is not None:
                await f.close()

    try:
        return asyncio.run(main())
    finally:
        cluster: LocalCluster | None = state.get("cluster")
        if cluster is not None:
            for m in cluster.config.members:
                try:
                    cluster.resume(m.name)
                except Exception:
                    pass
            cluster.kill_all()


# ---------------------------------------------------------------- report


def _fmt(v: Any) -> str:
    if v is True:
        return "PASS"
    if v is False:
        return "**FAIL**"
    return f"{v}"


def render_report(r: dict[str, Any]) -> str:
    cfg = r["config"]
    ops = r["operations"]
    un = r["write_unavailability"]
    el = r["elections"]
    ch = r["checkers"]
    lines = [
        "# raftstore chaos run",
        "",
        f"**Verdict: {_fmt(r['valid'])}**" + (" — the planted bug (`--unsafe-local-reads`) is on" if r["unsafe_local_reads"] else ""),
        "",
        f"- nemeses: `{','.join(cfg['nemeses']) or 'none'}` every {cfg['interval']} s (seed {cfg['seed']})",
        f"- duration {r['times']['duration']:.1f} s, {cfg['clients']} clients over {cfg['keys']} register keys "
        f"and {cfg['set_keys']} sets" + (", one pinned reader per member" if r["config"]["pinned_readers"]
                                          or r["unsafe_local_reads"] else ""),
        f"- cluster: {r['mode']} ({', '.join(f'{k}={v}' for k, v in r['members'].items())})",
        "",
        "## Checkers",
        "",
        "| checker | verdict | details | time (s) |",
        "|---|---|---|---|",
    ]
    lin = ch["linearizable"]
    lines.append(f"| linearizable (per key, WGL) | {_fmt(lin['valid'])} | {lin['key_count']} keys, {lin['op_count']} ops, "
                 f"failed keys: {lin['failed_keys'][:5] or 'none'}, undecided: {len(lin['unknown_keys'])} | {lin['elapsed']:.3f} |")
    lw = ch["lost_writes"]
    lines.append(f"| lost / duplicated adds (set) | {_fmt(lw['valid'])} | {lw['ok_count']} acknowledged adds, lost {lw['lost_count']}, "
                 f"duplicated {lw['duplicated_count']}, unexpected {lw['unexpected_count']}, recovered info {lw['recovered_count']} | {lw['elapsed']:.3f} |")
    aw = ch["acknowledged_writes"]
    lines.append(f"| acknowledged register writes | {_fmt(aw['valid'])} | {aw['checked_count']} keys checked, lost {len(aw['lost'])}, "
                 f"unexpected {len(aw['unexpected'])} | {aw['elapsed']:.3f} |")
    w = ch["watch"]
    lines.append(f"| watch (every event once, in order) | {_fmt(w['valid'])} | observed {w.get('observed_count')}, "
                 f"reference {w.get('reference_count')}, missing {w.get('missing', '-')}, duplicated {w.get('duplicated', '-')}, "
                 f"out of order {w.get('out_of_order', '-')}, phantom {w.get('phantom', '-')}, reconnects {w.get('reconnects', '-')} | {w['elapsed']:.3f} |")
    lines += [
        "",
        f"Lost acknowledged writes: **{r['lost_acknowledged_writes']}**. "
        f"Total checker time: {sum(r['checker_seconds'].values()):.2f} s.",
        "",
    ]
    if lin["valid"] is not True and lin.get("explanation"):
        lines += ["```", lin["explanation"][:4000], "```", ""]
    lines += [
        "## Operations",
        "",
        f"{ops['total']} operations: {ops['ok']} ok, {ops['fail']} fail, {ops['info']} info "
        f"({r['throughput_ok_per_s']:.0f} ok/s).",
        "",
        "| op | ok | fail | info |",
        "|---|---|---|---|",
    ]
    for f, c in ops["by_f"].items():
        lines.append(f"| {f} | {c['ok']} | {c['fail']} | {c['info']} |")
    lines += ["", "| latency (s) | count | p50 | p99 | max |", "|---|---|---|---|---|"]
    for k, s in r["latency"].items():
        lines.append(f"| {k} | {s['count']} | {s['p50']:.4f} | {s['p99']:.4f} | {s['max']:.3f} |")
    av = r["availability"]
    lines += [
        "",
        "## Availability",
        "",
        f"- availability (share of the run outside write-unavailability windows): **{av['gap_based'] * 100:.1f} %**",
        f"- one-second bins with at least one successful write: {av['one_second_bins_with_a_write'] * 100:.1f} %",
        f"- write-unavailability windows (no successful write for > {un['threshold']} s): {un['count']}, "
        f"**median {un['median']:.3f} s, max {un['max']:.3f} s**, total {un['total']:.2f} s",
        "",
        "## Elections",
        "",
        f"- leaders elected during the run: **{el['elections']}** (term {el['term_at_start']} → {el['term_at_end']}, "
        f"{el['candidacies']} candidacies)",
    ]
    t0 = r["times"]["start"]
    if el["leaders"]:
        lines.append("- leaders: " + ", ".join(f"{x['leader']}@t{x['term']} ({x['time'] - t0:+.1f} s)"
                                             for x in el["leaders"][:40]))
    lines += ["", "## Faults", "", "| t start (s) | t stop (s) | nemesis | what | recovery: first write after start / after stop (s) |",
              "|---|---|---|---|---|"]
    rec = {(x["nemesis"], x["start"]): x for x in r["recovery"]}
    for fw in r["faults"]:
        x = rec.get((fw["nemesis"], fw["start"]))
        rtxt = "-"
        if x is not None:
            a, b = x["first_write_after_start"], x["first_write_after_stop"]
            rtxt = f"{a:.3f} / {b:.3f}" if a is not None and b is not None else f"{a} / {b}"
        what = fw["description"] + (f" (error: {fw['error']})" if fw.get("error") else "")
        stop = f"{fw['stop'] - t0:.2f}" if fw.get("stop") else "-"
        lines.append(f"| {fw['start'] - t0:.2f} | {stop} | {fw['nemesis']} | {what} | {rtxt} |")
    conv = r["convergence"]
    lines += ["", "## After healing", "",
              f"- members converged to one state digest: {conv['converged']} ({conv['seconds']:.2f} s after healing)"]
    if r["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in r["problems"]]
    plots = r.get("files", {}).get("plots", {})
    if plots:
        lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()]
    lines += ["", "Files: `history.jsonl` (Jepsen-style history), `history.porcupine.json` (Porcupine export), "
              "`faults.json`, `raft-events.jsonl`, `watch.json`, `results.json`.", ""]
    return "\n".join(lines)


def summary_text(r: dict[str, Any], out: str) -> str:
    ch = r["checkers"]
    un = r["write_unavailability"]
    parts = [
        f"verdict: {_fmt(r['valid'])}  (" + ", ".join(f"{k}={_fmt(v['valid'])}" for k, v in ch.items()) + ")",
        f"ops: {r['operations']['total']} (ok {r['operations']['ok']}, fail {r['operations']['fail']}, "
        f"info {r['operations']['info']}); lost acknowledged writes: {r['lost_acknowledged_writes']}",
        f"availability {r['availability']['gap_based'] * 100:.1f} %; write-unavailability windows: {un['count']}, "
        f"median {un['median']:.3f} s, max {un['max']:.3f} s; elections: {r['elections']['elections']}",
        f"checker time: {sum(r['checker_seconds'].values()):.2f} s",
        f"report: {os.path.join(out, 'report.md')}",
    ]
    if r["problems"]:
        parts.append("problems: " + "; ".join(r["problems"]))
    return "\n".join(parts)


def config_from_names(nemeses: str | Sequence[str], **kw: Any) -> RunConfig:
    return RunConfig(nemeses=parse_nemeses(nemeses), **kw)
