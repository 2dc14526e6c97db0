"""``raftstore chaos`` end to end (short runs; the 60-s run is in the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raftstore.chaos.runner import RunConfig, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent


def chaos(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftstore.cli", "chaos", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_leader_kill_and_partitions_pass_every_checker(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = chaos("--nemesis", "leader-kill,partition-halves", "--duration", "16", "--clients", "8", "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "verdict: PASS" in p.stdout
    r = json.loads((out / "results.json").read_text())
    assert r["valid"] is True
    for name, c in r["checkers"].items():
        assert c["valid"] is True, (name, c)
    assert r["lost_acknowledged_writes"] == 0
    assert r["checkers"]["lost_writes"]["ok_count"] > 0
    assert r["checkers"]["watch"]["observed_count"] == r["checkers"]["watch"]["reference_count"] > 0
    kills = [w for w in r["faults"] if w["nemesis"] == "leader-kill" and not w["skipped"]]
    parts = [w for w in r["faults"] if w["nemesis"] == "partition-halves"]
    assert len(kills) >= 2 and len(parts) >= 2
    assert all(w["error"] is None for w in r["faults"])
    # Every leader kill forces an election.
    assert r["elections"]["elections"] >= len(kills)
    assert r["operations"]["ok"] > 1000
    assert 0 < r["availability"]["gap_based"] <= 1
    un = r["write_unavailability"]
    assert un["count"] >= 1 and 0 < un["median"] <= un["max"] < 10
    assert r["convergence"]["converged"] is True
    assert r["mode"] == "local"

    report = (out / "report.md").read_text()
    for needle in (
        "Verdict: PASS",
        "linearizable",
        "lost / duplicated adds",
        "watch",
        "operations",
        "availability",
        "leaders elected during the run",
        "Total checker time",
        "median",
        "max",
        "Lost acknowledged writes: **0**",
    ):
        assert needle in report, needle
    for png in ("timeline.png", "latency.png", "throughput.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    hist = (out / "history.jsonl").read_text().splitlines()
    first = json.loads(hist[0])
    assert set(first) == {"index", "process", "type", "f", "key", "value", "time", "error"}
    assert json.loads((out / "history.porcupine.json").read_text())
    # Every member the run started is gone.
    data = out / "data"
    for m in ("m0", "m1", "m2"):
        pidfile = data / m / "member.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_cli_rejects_unknown_nemeses_and_process_faults_with_endpoints(tmp_path: Path) -> None:
    p = chaos("--nemesis", "leader-kill,partiton-halves", "--out", str(tmp_path / "x"), timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "partiton-halves" in lines[0] and "partition-halves" in lines[0] and "majorities-ring" in lines[0]
    p = chaos("--nemesis", "leader-kill", "--endpoints", "127.0.0.1:1", "--out", str(tmp_path / "y"), timeout=60)
    assert p.returncode == 2
    assert "only admin-endpoint faults" in p.stderr


def test_endpoints_mode_runs_partitions_on_an_existing_cluster(make_cluster, tmp_path: Path) -> None:
    cluster = make_cluster()
    r = run_chaos(
        RunConfig(
            nemeses=["partition-halves", "bridge"],
            duration=7.0,
            clients=4,
            keys=8,
            interval=3.0,
            endpoints=cluster.endpoints,
            out=str(tmp_path / "ep"),
            progress=False,
            plots=False,
        )
    )
    assert r["mode"] == "endpoints"
    assert r["valid"] is True, {k: v["valid"] for k, v in r["checkers"].items()}
    assert {w["nemesis"] for w in r["faults"]} == {"partition-halves", "bridge"}
    # The cluster is not ours: it still runs, healed.
    for m in cluster.config.members:
        assert cluster.pid(m.name) is not None
