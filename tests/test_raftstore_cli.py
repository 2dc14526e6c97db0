"""The ``raftstore`` command as scripts use it: up, verbs with -o json, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from raftstore.localcluster import LocalCluster


def rs(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "raftstore.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"raftstore {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def js(*args: str, **kw: Any) -> Any:
    return json.loads(rs(*args, "-o", "json", **kw).stdout)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory):
    data = str(tmp_path_factory.mktemp("cli"))
    proc = rs("up", "--data-dir", data)
    try:
        yield data, proc.stdout
    finally:
        LocalCluster(data).kill_all()


def test_up_prints_one_endpoints_line(up) -> None:
    data, out = up
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("endpoints=")
    eps = lines[0].split("=", 1)[1].split(",")
    assert len(eps) == 3 and all(e.startswith("127.0.0.1:") for e in eps)


def test_put_get_del_prefix_and_rev(up) -> None:
    data, _ = up
    r1 = js("--data-dir", data, "put", "cli/a", "1")["revision"]
    js("--data-dir", data, "put", "cli/b", "2")
    js("--data-dir", data, "put", "cli/a", "3")
    got = js("--data-dir", data, "get", "cli/", "--prefix")
    assert [(kv["key"], kv["value"]) for kv in got["kvs"]] == [("cli/a", "3"), ("cli/b", "2")]
    old = js("--data-dir", data, "get", "cli/a", "--rev", str(r1))
    assert old["kvs"][0]["value"] == "1"
    text = rs("--data-dir", data, "get", "cli/a").stdout
    assert text.strip().splitlines() == ["cli/a", "3"]
    assert js("--data-dir", data, "del", "cli/", "--prefix")["deleted"] == 2
    assert js("--data-dir", data, "get", "cli/", "--prefix")["kvs"] == []


def test_endpoints_from_environment(up) -> None:
    data, out = up
    eps = out.strip().split("=", 1)[1]
    js("put", "env/k", "v", env={"RAFTSTORE_ENDPOINTS": eps})
    assert js("get", "env/k", env={"RAFTSTORE_ENDPOINTS": eps})["kvs"][0]["value"] == "v"


def test_watch_prints_events(up) -> None:
    data, _ = up
    rev = js("--data-dir", data, "put", "watch/x", "0")["revision"]
    js("--data-dir", data, "put", "watch/x", "1")
    out = rs(
        "--data-dir", data, "-o", "json", "watch", "watch/", "--prefix", "--rev", str(rev), "--count", "2", timeout=30
    ).stdout
    events = [json.loads(line) for line in out.strip().splitlines()]
    assert [(e["type"], e["kv"]["value"]) for e in events] == [("PUT", "0"), ("PUT", "1")]


def test_lease_grant_keepalive_and_expiry(up) -> None:
    data, _ = up
    lease = js("--data-dir", data, "lease", "grant", "2")["id"]
    js("--data-dir", data, "put", "leased", "v", "--lease", str(lease))
    ka = js("--data-dir", data, "lease", "keepalive", str(lease), "--once")
    assert ka["ttl"] == 2
    deadline = time.monotonic() + 15
    while js("--data-dir", data, "get", "leased")["kvs"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_compact_then_old_revision_is_an_error(up) -> None:
    data, _ = up
    r = js("--data-dir", data, "put", "comp", "1")["revision"]
    r2 = js("--data-dir", data, "put", "comp", "2")["revision"]
    js("--data-dir", data, "compact", str(r2))
    proc = rs("--data-dir", data, "get", "comp", "--rev", str(r), check=False)
    assert proc.returncode == 1 and "compacted" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_status_lists_every_member(up) -> None:
    data, _ = up
    rows = js("--data-dir", data, "status")
    assert len(rows) == 3
    for r in rows:
        for field in ("endpoint", "pid", "role", "term", "leader", "commit_index", "applied_index", "revision"):
            assert field in r, field
    assert sum(r["role"] == "leader" for r in rows) == 1
    assert len({r["leader"] for r in rows}) == 1


def test_bad_usage_is_one_line(up) -> None:
    proc = rs("get", check=False, env={"RAFTSTORE_ENDPOINTS": ""})
    assert proc.returncode == 2
    proc = rs("--endpoints", "127.0.0.1:1", "--timeout", "1", "get", "x", check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1


def test_down_stops_every_member(tmp_path) -> None:
    data = str(tmp_path)
    rs("up", "--data-dir", data)
    cluster = LocalCluster(data)
    pids = [cluster.pid(m.name) for m in cluster.config.members]
    assert all(pids)
    rs("down", "--data-dir", data)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
