"""Kubernetes timestamps: ``Time`` (RFC 3339 to the second) and ``MicroTime``, both UTC, and parsing.

One copy for every component (the scheduler, controllers, kubelet, leader
election and the event recorder all write them). Pure functions.
"""

from __future__ import annotations

import datetime as _dt
import time


def rfc3339(t: float | None = None) -> str:
    """``t`` (epoch seconds, default now) as a ``Time``: ``2024-01-02T03:04:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def micro_time(t: float | None = None) -> str:
    """``t`` (epoch seconds, default now) as a ``MicroTime``: ``2024-01-02T03:04:05.123456Z`` (Leases)."""
    ts = time.time() if t is None else t
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> float | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``, with optional fraction or offset) -> epoch seconds (None if not one)."""
    if not s:
        return None
    try:
        v = str(s)
        if v.endswith("Z"):
            v = v[:-1] + "+00:00"
        return _dt.datetime.fromisoformat(v).timestamp()
    except ValueError:
        return None
