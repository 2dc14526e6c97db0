"""Status conditions (``[{type, status, reason, message, lastTransitionTime}]``): find and set.

Concurrency: pure functions; ``set_condition`` mutates the caller's status dict only.
"""

from __future__ import annotations

from typing import Any


def get_condition(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def set_condition(status: dict[str, Any], cond: dict[str, Any], *, keep_transition: bool = True) -> bool:
    """Replace the condition of ``cond['type']``; keep ``lastTransitionTime`` when the status is
    unchanged. Returns whether anything but timestamps changed."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            changed = any(c.get(k) != cond.get(k) for k in ("status", "reason", "message"))
            if keep_transition and c.get("status") == cond.get("status") and c.get("lastTransitionTime"):
                cond = dict(cond, lastTransitionTime=c["lastTransitionTime"])
            conds[i] = cond
            return changed
    conds.append(cond)
    return True
