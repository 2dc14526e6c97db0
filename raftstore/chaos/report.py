"""``report.md`` and the CLI's summary, rendered from a run's results dict.

Pure string building: the input is exactly what ``results.json`` holds, so
a report can be re-rendered from the file, and nothing here does I/O.
"""

from __future__ import annotations

import os
from typing import Any


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
        f"**Verdict: {_fmt(r['valid'])}**"
        + (" — the planted bug (`--unsafe-local-reads`) is on" if r["unsafe_local_reads"] else ""),
        "",
        f"- nemeses: `{','.join(cfg['nemeses']) or 'none'}` every {cfg['interval']} s (seed {cfg['seed']})",
        f"- duration {r['times']['duration']:.1f} s, {cfg['clients']} clients over {cfg['keys']} register keys "
        f"and {cfg['set_keys']} sets"
        + (", one pinned reader per member" if r["config"]["pinned_readers"] or r["unsafe_local_reads"] else ""),
        f"- cluster: {r['mode']} ({', '.join(f'{k}={v}' for k, v in r['members'].items())})",
        "",
        "## Checkers",
        "",
        "| checker | verdict | details | time (s) |",
        "|---|---|---|---|",
    ]
    lin = ch["linearizable"]
    lines.append(
        f"| linearizable (per key, WGL) | {_fmt(lin['valid'])} | {lin['key_count']} keys, {lin['op_count']} ops, "
        f"failed keys: {lin['failed_keys'][:5] or 'none'}, undecided: {len(lin['unknown_keys'])} | {lin['elapsed']:.3f} |"
    )
    lw = ch["lost_writes"]
    lines.append(
        f"| lost / duplicated adds (set) | {_fmt(lw['valid'])} | {lw['ok_count']} acknowledged adds, lost {lw['lost_count']}, "
        f"duplicated {lw['duplicated_count']}, unexpected {lw['unexpected_count']}, recovered info {lw['recovered_count']} | {lw['elapsed']:.3f} |"
    )
    aw = ch["acknowledged_writes"]
    lines.append(
        f"| acknowledged register writes | {_fmt(aw['valid'])} | {aw['checked_count']} keys checked, lost {len(aw['lost'])}, "
        f"unexpected {len(aw['unexpected'])} | {aw['elapsed']:.3f} |"
    )
    w = ch["watch"]
    lines.append(
        f"| watch (every event once, in order) | {_fmt(w['valid'])} | observed {w.get('observed_count')}, "
        f"reference {w.get('reference_count')}, missing {w.get('missing', '-')}, duplicated {w.get('duplicated', '-')}, "
        f"out of order {w.get('out_of_order', '-')}, phantom {w.get('phantom', '-')}, reconnects {w.get('reconnects', '-')} | {w['elapsed']:.3f} |"
    )
    lines += [
        "",
        (
            f"Lost acknowledged writes: **{r['lost_acknowledged_writes']}**. "
            f"Total checker time: {sum(r['checker_seconds'].values()):.2f} s."
        ),
        "",
    ]
    if lin["valid"] is not True and lin.get("explanation"):
        lines += ["```", lin["explanation"][:4000], "```", ""]
    lines += [
        "## Operations",
        "",
        (
            f"{ops['total']} operations: {ops['ok']} ok, {ops['fail']} fail, {ops['info']} info "
            f"({r['throughput_ok_per_s']:.0f} ok/s)."
        ),
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
        (
            f"- write-unavailability windows (no successful write for > {un['threshold']} s): {un['count']}, "
            f"**median {un['median']:.3f} s, max {un['max']:.3f} s**, total {un['total']:.2f} s"
        ),
        "",
        "## Elections",
        "",
        (
            f"- leaders elected during the run: **{el['elections']}** (term {el['term_at_start']} → {el['term_at_end']}, "
            f"{el['candidacies']} candidacies)"
        ),
    ]
    t0 = r["times"]["start"]
    if el["leaders"]:
        lines.append(
            "- leaders: "
            + ", ".join(f"{x['leader']}@t{x['term']} ({x['time'] - t0:+.1f} s)" for x in el["leaders"][:40])
        )
    lines += [
        "",
        "## Faults",
        "",
        "| t start (s) | t stop (s) | nemesis | what | recovery: first write after start / after stop (s) |",
        "|---|---|---|---|---|",
    ]
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
    lines += [
        "",
        "## After healing",
        "",
        f"- members converged to one state digest: {conv['converged']} ({conv['seconds']:.2f} s after healing)",
    ]
    if r["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in r["problems"]]
    plots = r.get("files", {}).get("plots", {})
    if plots:
        lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()]
    lines += [
        "",
        (
            "Files: `history.jsonl` (Jepsen-style history), `history.porcupine.json` (Porcupine export), "
            "`faults.json`, `raft-events.jsonl`, `watch.json`, `results.json`."
        ),
        "",
    ]
    return "\n".join(lines)


def summary_text(r: dict[str, Any], out: str) -> str:
    ch = r["checkers"]
    un = r["write_unavailability"]
    parts = [
        f"verdict: {_fmt(r['valid'])}  (" + ", ".join(f"{k}={_fmt(v['valid'])}" for k, v in ch.items()) + ")",
        (
            f"ops: {r['operations']['total']} (ok {r['operations']['ok']}, fail {r['operations']['fail']}, "
            f"info {r['operations']['info']}); lost acknowledged writes: {r['lost_acknowledged_writes']}"
        ),
        (
            f"availability {r['availability']['gap_based'] * 100:.1f} %; write-unavailability windows: {un['count']}, "
            f"median {un['median']:.3f} s, max {un['max']:.3f} s; elections: {r['elections']['elections']}"
        ),
        f"checker time: {sum(r['checker_seconds'].values()):.2f} s",
        f"report: {os.path.join(out, 'report.md')}",
    ]
    if r["problems"]:
        parts.append("problems: " + "; ".join(r["problems"]))
    return "\n".join(parts)
