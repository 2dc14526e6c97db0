"""PNG plots of a chaos run (matplotlib, Agg backend: no display needed).

* ``timeline.png`` -- each member's Raft role over time (one lane per
  member: leader, candidate, follower; black while killed, grey hatched while
  paused) and each member's term, with every fault window shaded;
* ``latency.png``  -- the latency of every operation against its invocation
  time, coloured by outcome (ok / fail / info), fault windows shaded;
* ``throughput.png`` -- completions per second by outcome, fault windows shaded.

Times on the x axis are seconds since the workload started.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from raftstore.chaos.history import History, pair_ops  # noqa: E402

ROLE_COLOURS = {"leader": "#2ca02c", "candidate": "#ff7f0e", "follower": "#9ecae1"}
STATUS_COLOURS = {"ok": "#2ca02c", "fail": "#d62728", "info": "#ff9f1c"}
NEMESIS_COLOURS = {
    "kill": "#d62728",
    "leader-kill": "#9467bd",
    "pause": "#8c564b",
    "partition-halves": "#1f77b4",
    "isolate-leader": "#e377c2",
    "majorities-ring": "#17becf",
    "bridge": "#bcbd22",
    "slow-disk": "#7f7f7f",
}


def _shade(ax: Any, windows: Sequence[dict[str, Any]], t0: float, end: float) -> set[str]:
    used = set()
    for w in windows:
        if w.get("skipped"):
            continue
        a = w["start"] - t0
        b = (w.get("stop") or end) - t0
        ax.axvspan(a, b, color=NEMESIS_COLOURS.get(w["nemesis"], "#cccccc"), alpha=0.15, lw=0)
        used.add(w["nemesis"])
    return used


def _fault_legend(used: set[str]) -> list[Patch]:
    return [Patch(color=NEMESIS_COLOURS.get(n, "#cccccc"), alpha=0.3, label=n) for n in sorted(used)]


def plot_timeline(
    path: Path,
    raft_events: Sequence[dict[str, Any]],
    windows: Sequence[dict[str, Any]],
    t0: float,
    t_end: float,
    names: Sequence[str],
) -> None:
    evs = sorted((e for e in raft_events if "time" in e), key=lambda e: e["time"])
    horizon = max([t_end] + [e["time"] for e in evs if e["time"] <= t_end + 15.0]) + 0.5
    fig, (ax_role, ax_term) = plt.subplots(
        2, 1, figsize=(13, 6.5), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]}
    )
    used = _shade(ax_role, windows, t0, horizon)
    _shade(ax_term, windows, t0, horizon)
    for lane, name in enumerate(names):
        mine = [e for e in evs if e.get("member") == name]
        # Role segments from each event to the next one of the same member.
        start_state = [e for e in mine if e["time"] <= t0]
        seq = ([{**start_state[-1], "time": t0}] if start_state else []) + [e for e in mine if e["time"] > t0]
        for e, nxt in zip(seq, seq[1:] + [None]):
            a = e["time"]
            b = nxt["time"] if nxt is not None else horizon
            if b <= t0 - 1:
                continue
            ax_role.barh(lane, b - a, left=a - t0, height=0.6, color=ROLE_COLOURS.get(e.get("role"), "#dddddd"), lw=0)
        # Down (killed) and paused periods override the role lane.
        for w in windows:
            if w.get("skipped") or name not in w.get("targets", []):
                continue
            a, b = w["start"] - t0, (w.get("stop") or horizon) - t0
            if w["nemesis"] in ("kill", "leader-kill"):
                ax_role.barh(lane, b - a, left=a, height=0.6, color="black", lw=0)
            elif w["nemesis"] == "pause":
                ax_role.barh(lane, b - a, left=a, height=0.6, color="#999999", hatch="//", lw=0)
        if seq:
            xs = [e["time"] - t0 for e in seq] + [horizon - t0]
            # A small offset per member keeps equal terms from hiding each other.
            off = (lane - (len(names) - 1) / 2) * 0.12
            ys = [e.get("term", 0) + off for e in seq] + [seq[-1].get("term", 0) + off]
            ax_term.step(xs, ys, where="post", label=name, lw=1.5)
    ax_role.set_yticks(range(len(names)), list(names))
    ax_role.set_ylim(-0.6, len(names) - 0.4)
    ax_role.invert_yaxis()
    ax_role.set_title("Raft role per member (black: killed, hatched: paused); fault windows shaded")
    role_legend = [Patch(color=c, label=r) for r, c in ROLE_COLOURS.items()]
    role_legend += [Patch(color="black", label="killed"), Patch(color="#999999", hatch="//", label="paused")]
    ax_role.legend(handles=role_legend + _fault_legend(used), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax_term.set_ylabel("term")
    ax_term.set_xlabel("seconds since the workload started")
    ax_term.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax_term.axvline(t_end - t0, color="k", ls="--", lw=0.8)
    ax_role.axvline(t_end - t0, color="k", ls="--", lw=0.8)
    ax_term.set_xlim(-0.5, horizon - t0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(path: Path, history: History, windows: Sequence[dict[str, Any]], t0: float, t_end: float) -> None:
    fig, ax = plt.subplots(figsize=(13, 5))
    used = _shade(ax, windows, t0, t_end)
    pts: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in STATUS_COLOURS}
    for inv, comp in pair_ops(history):
        if comp is None:
            continue
        xs, ys = pts[comp.type]
        xs.append(inv.time - t0)
        ys.append(max(comp.time - inv.time, 1e-5))
    for status in ("ok", "fail", "info"):
        xs, ys = pts[status]
        if xs:
            ax.scatter(
                xs,
                ys,
                s=4 if status == "ok" else 9,
                c=STATUS_COLOURS[status],
                alpha=0.6,
                lw=0,
                label=f"{status} ({len(xs)})",
            )
    ax.set_yscale("log")
    ax.set_xlabel("invocation time (s since the workload started)")
    ax.set_ylabel("latency (s)")
    ax.set_title("latency of every operation, by outcome; fault windows shaded")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=handles + _fault_legend(used), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, markerscale=3
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(path: Path, history: History, windows: Sequence[dict[str, Any]], t0: float, t_end: float) -> None:
    n = max(1, int(t_end - t0 + 0.999) + 5)
    counts = {s: [0] * n for s in STATUS_COLOURS}
    for inv, comp in pair_ops(history):
        if comp is None:
            continue
        i = int(comp.time - t0)
        if 0 <= i < n:
            counts[comp.type][i] += 1
    fig, ax = plt.subplots(figsize=(13, 4.5))
    used = _shade(ax, windows, t0, t_end)
    xs = list(range(n))
    bottom = [0] * n
    for status in ("ok", "fail", "info"):
        ax.bar(
            xs,
            counts[status],
            bottom=bottom,
            width=1.0,
            align="edge",
            color=STATUS_COLOURS[status],
            label=status,
            alpha=0.85,
        )
        bottom = [b + c for b, c in zip(bottom, counts[status])]
    ax.axvline(t_end - t0, color="k", ls="--", lw=0.8)
    ax.set_xlim(-0.5, t_end - t0 + 1.5)
    ax.set_xlabel("seconds since the workload started (dashed: the workload stops)")
    ax.set_ylabel("completions per second")
    ax.set_title("throughput by outcome; fault windows shaded")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + _fault_legend(used), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_plots(
    out: Path,
    history: History,
    raft_events: Sequence[dict[str, Any]],
    windows: Sequence[dict[str, Any]],
    t0: float,
    t_end: float,
    names: Sequence[str],
) -> dict[str, str]:
    """Write the three PNGs into ``out``; returns name -> file name."""
    out = Path(out)
    plot_timeline(out / "timeline.png", raft_events, windows, t0, t_end, names)
    plot_latency(out / "latency.png", history, windows, t0, t_end)
    plot_throughput(out / "throughput.png", history, windows, t0, t_end)
    return {"timeline": "timeline.png", "latency": "latency.png", "throughput": "throughput.png"}
