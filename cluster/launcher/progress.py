"""Step-by-step progress of ``up`` and ``down`` on a rich console: a spinner for the current step, a
line per finished step with the seconds since the command started. Silent without a console (``--json``,
library use).

Concurrency: used from the launcher's thread only (rich's spinner runs its own refresh thread).
"""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """Step-by-step progress on a rich console (a spinner for the current step, a line per finished step)."""

    def __init__(self, console: Any, t0: float) -> None:
        self.console = console
        self.t0 = t0
        self._status: Any = None

    def step(self, text: str) -> None:
        if self.console is None:
            return
        if self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def done(self, text: str) -> None:
        if self.console is None:
            return
        self.console.print(f"[green]✓[/green] {text} [dim]({time.time() - self.t0:.1f} s)[/dim]")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
