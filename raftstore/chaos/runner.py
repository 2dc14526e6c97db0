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

This module is the I/O orchestration only; the pieces it strings together
are importable on their own: :mod:`~raftstore.chaos.analysis` (pure
measurements), :mod:`~raftstore.chaos.checks` (running the checkers),
:mod:`~raftstore.chaos.report` (report.md and the summary),
:mod:`~raftstore.chaos.artifacts` (the files) and
:mod:`~raftstore.chaos.progress` (the live view).  Their public names are
re-exported here.

Concurrency: :func:`run_chaos` blocks; the run itself is one asyncio loop
(workload tasks, one task per planned fault, the progress loop); member
processes are separate OS processes, started and stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from raftstore.chaos.analysis import (
    SUCCESSFUL_WRITE_FS,
    availability_bins,
    elections,
    latency_stats,
    measure_run,
    op_counts,
    overall_verdict,
    recovery_after_faults,
    successful_write_spans,
    successful_write_times,
    write_unavailability,
)
from raftstore.chaos.artifacts import read_raft_events, write_run_files
from raftstore.chaos.checks import run_checkers
from raftstore.chaos.clock import Clock
from raftstore.chaos.faults import Faults
from raftstore.chaos.nemesis import PROCESS_NEMESES, NemesisRunner, parse_nemeses
from raftstore.chaos.progress import Progress
from raftstore.chaos.report import render_report, summary_text
from raftstore.chaos.workload import Workload, WorkloadConfig
from raftstore.client import RaftstoreClient, RaftstoreError
from raftstore.config import RaftTuning
from raftstore.localcluster import LocalCluster

__all__ = [
    "SUCCESSFUL_WRITE_FS",
    "Progress",
    "RunConfig",
    "availability_bins",
    "config_from_names",
    "elections",
    "latency_stats",
    "op_counts",
    "overall_verdict",
    "read_raft_events",
    "recovery_after_faults",
    "render_report",
    "run_chaos",
    "successful_write_spans",
    "successful_write_times",
    "summary_text",
    "write_unavailability",
]


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


async def _wait_converged(client: RaftstoreClient, endpoints: Sequence[str], timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    started = loop.time()
    digests: list[dict[str, Any]] = []
    while loop.time() < deadline:
        try:
            digests = [await client.digest(ep) for ep in endpoints]
        except (TimeoutError, RaftstoreError, OSError):
            await asyncio.sleep(0.2)
            continue
        if len({(d["digest"], d["revision"]) for d in digests}) == 1:
            return {"converged": True, "seconds": loop.time() - started, "revision": digests[0]["revision"]}
        await asyncio.sleep(0.2)
    return {
        "converged": False,
        "seconds": loop.time() - started,
        "digests": [{"revision": d.get("revision"), "digest": d.get("digest")} for d in digests],
    }


async def _bring_up(
    cfg: RunConfig, out: Path, state: dict[str, Any]
) -> tuple[LocalCluster | None, list[str], Faults, str]:
    """Our own members in ``OUT/data`` (or the given endpoints) and their fault layer.

    Returns (our cluster or None, endpoints, faults, mode); what must be
    stopped later is put in ``state`` as soon as it exists."""
    unsupported = [n for n in cfg.nemeses if n in PROCESS_NEMESES]
    cluster: LocalCluster | None = None
    extra: dict[str, list[str]] = {}
    if cfg.endpoints:
        if unsupported:
            raise ValueError(
                f"with --endpoints only admin-endpoint faults are possible (partitions, slow disk); "
                f"{', '.join(unsupported)} need the member processes: run without --endpoints"
            )
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
    return cluster, endpoints, faults, mode


async def _drive(
    cfg: RunConfig,
    clock: Clock,
    workload: Workload,
    nemesis: NemesisRunner,
    faults: Faults,
    progress: Progress,
    state: dict[str, Any],
) -> tuple[float, float]:
    """Run the workload and the nemeses for the duration, then heal every fault.

    Returns (t_start, t_end) of the workload; healing problems go to
    ``state["heal_problems"]``."""
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
    return t_start, t_end


async def _role_changes(admin: RaftstoreClient, faults: Faults, problems: list[str]) -> list[dict[str, Any]]:
    """Role/term events from the members' memory (someone else's cluster: no files to read)."""
    raft_events: list[dict[str, Any]] = []
    for name, ep in faults.members.items():
        try:
            for ch in await admin.call("role_changes", endpoint=ep, leader=False):
                raft_events.append({"member": name, **ch})
        except RaftstoreError as exc:
            problems.append(f"role_changes from {name}: {exc}")
    raft_events.sort(key=lambda e: e.get("time", 0))
    return raft_events


async def _run(cfg: RunConfig, out: Path, state: dict[str, Any]) -> dict[str, Any]:
    clock = Clock()
    problems: list[str] = []
    cluster, endpoints, faults, mode = await _bring_up(cfg, out, state)
    admin = RaftstoreClient(endpoints, timeout=30.0)
    state["clients"] = [admin]
    await admin.wait_for_leader(timeout=30.0)

    run_id = uuid.uuid4().hex[:8]
    wcfg = WorkloadConfig(
        clients=cfg.clients,
        keys=cfg.keys,
        set_keys=cfg.set_keys,
        op_timeout=cfg.op_timeout,
        attempt_timeout=min(cfg.attempt_timeout, cfg.op_timeout),
        pinned_readers=list(endpoints) if (cfg.pinned_readers or cfg.unsafe_local_reads) else [],
        prefix=f"chaos/{run_id}/",
        seed=cfg.seed,
    )
    workload = Workload(endpoints, wcfg, clock=clock)
    state["workload"] = workload
    progress = Progress(cfg.progress, cfg.duration)
    nemesis = NemesisRunner(
        faults,
        cfg.nemeses,
        duration=cfg.duration,
        interval=cfg.interval,
        hold=cfg.hold,
        seed=cfg.seed,
        clock=clock,
        on_event=progress.event,
        slow_disk_seconds=cfg.slow_disk_seconds,
        exclusive=not cfg.overlap,
    )
    state["nemesis"] = nemesis
    await workload.setup()
    t_start, t_end = await _drive(cfg, clock, workload, nemesis, faults, progress, state)
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
        raft_events = await _role_changes(admin, faults, problems)
        with contextlib.suppress(RaftstoreError):  # tidy up after ourselves on someone else's cluster
            await admin.delete(wcfg.prefix, prefix=True)

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
    checks = run_checkers(
        history,
        finals,
        observed,
        reference,
        start_revision=workload.start_revision,
        checker_timeout=cfg.checker_timeout,
        watch_reconnects=workload.watch_reconnects,
        watch_error=workload.watch_error,
    )
    results: dict[str, Any] = {
        "valid": checks.valid,
        "config": cfg.to_dict(),
        "mode": mode,
        "members": faults.members,
        "unsafe_local_reads": cfg.unsafe_local_reads,
        "data_dir": cluster.data_dir if cluster is not None else None,
        "key_prefix": wcfg.prefix,
        "pinned_readers": {str(pid): ep for pid, ep in workload.pinned_processes.items()},
        "times": {"start": t_start, "end": t_end, "healed": t_healed, "duration": t_end - t_start},
        **measure_run(history, raft_events, nemesis.to_dicts(), t_start, t_end, cfg.gap_threshold),
        "convergence": convergence,
        "checkers": checks.checkers,
        "checker_seconds": {k: v.get("elapsed", 0.0) for k, v in checks.checkers.items()},
        "lost_acknowledged_writes": checks.lost_acknowledged_writes,
        "problems": problems,
    }
    write_run_files(
        out,
        results,
        history=history,
        fault_actions=faults.log,
        raft_events=raft_events,
        watch={"start_revision": workload.start_revision, "observed": observed, "reference": reference},
        plots=cfg.plots,
        member_names=faults.names,
    )
    return results


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
        raise ValueError(
            f"members {', '.join(alive)} still run in {data_dir}; stop them first "
            f"(raftstore down --data-dir {data_dir})"
        )
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
                with contextlib.suppress(Exception):
                    await c.close()
            w = state.get("workload")
            if w is not None:
                await w.close()
            f = state.get("faults")
            if f is not None and state.get("cluster") is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(f.heal_all(timeout=5.0), 15.0)
            if f is not None:
                await f.close()

    try:
        return asyncio.run(main())
    finally:
        cluster: LocalCluster | None = state.get("cluster")
        if cluster is not None:
            for m in cluster.config.members:
                with contextlib.suppress(Exception):  # best effort: kill_all below is what counts
                    cluster.resume(m.name)
            cluster.kill_all()


def config_from_names(nemeses: str | Sequence[str], **kw: Any) -> RunConfig:
    return RunConfig(nemeses=parse_nemeses(nemeses), **kw)
