"""The consensus lab catches its planted bug.

Members started with ``--unsafe-local-reads`` answer linearizable reads from
local state without confirming leadership.  Under the "isolate the leader"
nemesis -- with one read-only client pinned to each member, so someone keeps
reading from the cut-off old leader while the others write through the new
majority -- the linearizability checker calls the history non-linearizable.
The default mode passes the very same scenario (same seed, same schedule).
Both runs together take well under two minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raftstore.chaos.history import History, pair_ops
from raftstore.chaos.runner import RunConfig, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def scenario(out: Path, unsafe: bool) -> RunConfig:
    return RunConfig(
        nemeses=["isolate-leader"],
        duration=12.0,
        clients=4,
        keys=8,
        set_keys=2,
        interval=5.0,
        hold=3.0,
        seed=11,
        out=str(out),
        unsafe_local_reads=unsafe,
        pinned_readers=True,
        progress=False,
        plots=False,
        checker_timeout=30.0,
    )


def reads_served_while_isolated(results: dict[str, Any], out: Path) -> tuple[int, int]:
    """(ok, total) reads by the reader pinned to the isolated leader, invoked
    once the isolation was in place for a moment and completed before it ended."""
    history = History.read_jsonl(out / "history.jsonl")
    pinned = {int(p): ep for p, ep in results["pinned_readers"].items()}
    ok = total = 0
    for w in results["faults"]:
        if w["skipped"] or not w["targets"]:
            continue
        ep = results["members"][w["targets"][0]]
        for inv, comp in pair_ops(history):
            if inv.f != "read" or pinned.get(inv.process) != ep or comp is None:
                continue
            if w["start"] + 0.5 <= inv.time and comp.time <= w["stop"]:
                total += 1
                ok += comp.type == "ok"
    return ok, total


def test_unsafe_local_reads_are_caught_and_the_default_mode_passes(tmp_path: Path) -> None:
    bad = run_chaos(scenario(tmp_path / "unsafe", unsafe=True))
    good = run_chaos(scenario(tmp_path / "default", unsafe=False))

    for r in (bad, good):
        isolations = [w for w in r["faults"] if w["nemesis"] == "isolate-leader"]
        assert len(isolations) >= 2, r["faults"]
        assert all(not w["skipped"] and not w["error"] for w in isolations), isolations
        assert r["operations"]["ok"] > 500
        assert r["lost_acknowledged_writes"] == 0

    # The planted bug: stale reads, and the checker says so (not "unknown").
    lin = bad["checkers"]["linearizable"]
    assert lin["valid"] is False, lin
    assert lin["failed_keys"]
    assert "NOT linearizable" in lin["explanation"]
    assert bad["valid"] is False
    # ...because the cut-off old leader kept answering reads on its own.
    ok, total = reads_served_while_isolated(bad, tmp_path / "unsafe")
    assert ok > 0, (ok, total)

    # Default mode, same scenario: every checker passes, and the isolated
    # member answered no read it could not confirm.
    assert good["checkers"]["linearizable"]["valid"] is True, good["checkers"]["linearizable"]
    assert good["valid"] is True, {k: v["valid"] for k, v in good["checkers"].items()}
    ok, total = reads_served_while_isolated(good, tmp_path / "default")
    assert ok == 0 and total > 0, (ok, total)
