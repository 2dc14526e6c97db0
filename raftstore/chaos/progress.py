"""The live view of a chaos run: rich on a terminal, a plain line every few seconds otherwise.

Display only: it reads the workload's counters and the nemesis's active
faults, and writes to stderr.  Called from the run's asyncio loop (never
from other threads), between awaits.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raftstore.chaos.schedule_runner import ScheduleRunner
    from raftstore.chaos.workload import Workload


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

    def update(self, elapsed: float, workload: Workload, nemesis: ScheduleRunner, rate: float) -> None:
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
            t.add_row(
                "ops",
                Text.assemble(
                    (f"ok {counts['ok']}", "green"),
                    "  ",
                    (f"fail {counts['fail']}", "red"),
                    "  ",
                    (f"info {counts['info']}", "yellow"),
                    f"   {rate:.0f} ops/s",
                ),
            )
            t.add_row("leader", f"{self.leader} (term {self.term})")
            t.add_row("faults", active)
            bar = ProgressBar(total=self.duration, completed=min(elapsed, self.duration), width=50)
            self._live.update(
                Group(Text("raftstore chaos", style="bold"), bar, t, Text("\n".join(self.events[-5:]), style="dim"))
            )
        elif time.monotonic() - self._last_line >= 5.0:
            self._last_line = time.monotonic()
            print(
                f"[chaos] {elapsed:5.1f}/{self.duration:.0f}s ok={counts['ok']} fail={counts['fail']} "
                f"info={counts['info']} {rate:.0f} ops/s leader={self.leader} faults: {active}",
                file=sys.stderr,
                flush=True,
            )

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
