"""Node readiness from its conditions.

Concurrency: pure functions; callers own the objects.
"""

from __future__ import annotations

from typing import Any

from .conditions import get_condition


def node_condition(node: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return get_condition(node.get("status"), ctype)


def node_ready_status(node: dict[str, Any]) -> str:
    """``True``, ``False``, ``Unknown``, or ``""`` when the node has no Ready condition."""
    c = node_condition(node, "Ready")
    return str(c.get("status") or "Unknown") if c else ""
