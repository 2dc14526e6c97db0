"""The files of a chaos run: what it reads from the members' data and writes to ``--out``.

Writes ``history.jsonl``, ``history.porcupine.json``, ``faults.json``,
``raft-events.jsonl``, ``watch.json``, the PNG plots, ``results.json`` and
``report.md`` (rendered by :mod:`raftstore.chaos.report`), and reads the
members' ``raft-events.jsonl`` back.  Blocking file I/O, called once at the
end of a run (after the members stopped) from the run's thread.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raftstore.chaos.history import History
from raftstore.chaos.report import render_report

# The run's logger: plot failures were always reported under it.
log = logging.getLogger("raftstore.chaos.runner")


def read_raft_events(data_dir: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """Every role/term event our members logged in ``DATA/NAME/raft-events.jsonl``, by time."""
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


def json_default(o: Any) -> Any:
    """JSON for what results may hold beyond plain JSON: sets, tuples, bytes."""
    if isinstance(o, set | frozenset | tuple):
        return sorted(o) if isinstance(o, set | frozenset) else list(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)


def write_run_files(
    out: Path,
    results: dict[str, Any],
    *,
    history: History,
    fault_actions: Sequence[dict[str, Any]],
    raft_events: Sequence[dict[str, Any]],
    watch: dict[str, Any],
    plots: bool,
    member_names: Sequence[str],
) -> None:
    """Write every file of the run into ``out`` and fill in ``results["files"]``.

    ``results`` must hold ``faults`` (the windows), ``times`` and
    ``problems``; a failed plot is added to ``problems`` (before results.json
    and report.md are written) rather than losing the verdict over it."""
    windows = results["faults"]
    history.write_jsonl(out / "history.jsonl")
    history.to_porcupine(out / "history.porcupine.json")
    (out / "faults.json").write_text(json.dumps({"windows": windows, "actions": fault_actions}, indent=1))
    with open(out / "raft-events.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in raft_events)
    with open(out / "watch.json", "w", encoding="utf-8") as fh:
        json.dump(watch, fh)
    made: dict[str, str] = {}
    if plots:
        try:
            from raftstore.chaos.plots import make_plots

            made = make_plots(
                out, history, raft_events, windows, results["times"]["start"], results["times"]["end"], member_names
            )
        except Exception as exc:
            log.exception("plots failed")
            results["problems"].append(f"plots failed: {exc}")
    results["files"] = {
        "history": "history.jsonl",
        "porcupine": "history.porcupine.json",
        "faults": "faults.json",
        "raft_events": "raft-events.jsonl",
        "watch": "watch.json",
        "report": "report.md",
        "plots": made,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=json_default))
    (out / "report.md").write_text(render_report(results))
