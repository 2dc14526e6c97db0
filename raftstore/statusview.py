"""``raftstore status --watch``: a live terminal view of the members.

Polls every member's ``status`` and redraws one table with rich: role, term,
leader, commit and applied index, lag behind the leader (in Raft entries and
in revisions), leader changes and elections seen, and whether the member is
unreachable, paused or partitioned. Ctrl-C leaves it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .client import RaftstoreClient

ROLE_STYLE = {"leader": "bold green", "candidate": "bold yellow", "follower": "white"}


def render(rows: list[dict[str, Any]], started: float, leader_changes: int) -> Group:
    leader = next((r for r in rows if r.get("role") == "leader"), None)
    t = Table(title=f"raftstore members — {time.strftime('%H:%M:%S')}", expand=False)
    for col in (
        "name",
        "endpoint",
        "pid",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "lag (entries)",
        "lag (revs)",
        "revision",
        "elections",
        "partition",
    ):
        t.add_column(col, justify="right" if col not in ("name", "endpoint", "role", "leader", "partition") else "left")
    for r in rows:
        if "error" in r:
            t.add_row("?", r["endpoint"], "-", Text("unreachable", style="bold red"), *["-"] * 9)
            continue
        lag_entries = lag_revs = "-"
        if leader is not None:
            lag_entries = str(max(0, leader["commit_index"] - r["applied_index"]))
            lag_revs = str(max(0, leader["revision"] - r["revision"]))
        part = r.get("partition", {})
        cut = ",".join(sorted(set(part.get("drop_to", [])) | set(part.get("drop_from", [])))) or "-"
        t.add_row(
            r["name"],
            r["endpoint"],
            str(r["pid"]),
            Text(r["role"], style=ROLE_STYLE.get(r["role"], "")),
            str(r["term"]),
            str(r["leader"]),
            str(r["commit_index"]),
            str(r["applied_index"]),
            lag_entries,
            lag_revs,
            str(r["revision"]),
            str(r["elections_seen"]),
            cut,
        )
    summary = Text(
        f"leader: {leader['name'] if leader else 'none'}   leader changes seen: {leader_changes}   "
        f"watching for {time.monotonic() - started:.0f} s (Ctrl-C to quit)"
    )
    return Group(t, summary)


async def _run(endpoints: list[str], interval: float, iterations: int | None) -> int:
    client = RaftstoreClient(endpoints, timeout=interval * 2, request_timeout=max(0.2, interval))
    started = time.monotonic()
    last_leader: str | None = None
    changes = 0
    n = 0
    try:
        with Live(render([], started, 0), auto_refresh=False) as live:
            while iterations is None or n < iterations:
                rows = await client.cluster_status()
                leader = next((r["name"] for r in rows if r.get("role") == "leader"), None)
                if leader is not None and leader != last_leader:
                    if last_leader is not None:
                        changes += 1
                    last_leader = leader
                live.update(render(rows, started, changes), refresh=True)
                n += 1
                await asyncio.sleep(interval)
    finally:
        await client.close()
    return 0


def run_status_view(endpoints: list[str], *, interval: float = 0.5, iterations: int | None = None) -> int:
    try:
        return asyncio.run(_run(endpoints, interval, iterations))
    except KeyboardInterrupt:
        return 0
