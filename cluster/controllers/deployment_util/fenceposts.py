"""``maxSurge``/``maxUnavailable`` fenceposts of a rolling update.

Rounding as upstream: ``maxSurge`` percent rounds **up**, ``maxUnavailable``
percent rounds **down**; both zero -> ``maxUnavailable`` = 1.

Concurrency: pure functions on caller-owned dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .revisions import replica_count, replicas


# ------------------------------------------------------------- fenceposts
def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"invalid value {v!r}")
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        pct = int(s[:-1])
        x = pct * total / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(s)


def is_rolling(d: dict[str, Any]) -> bool:
    return (((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: dict[str, Any]) -> tuple[Any, Any]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%")


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    _, unavailable = resolve_fenceposts(*_rolling_params(d), replicas(d))
    return min(unavailable, replicas(d))


def max_surge(d: dict[str, Any]) -> int:
    if not is_rolling(d):
        return 0
    surge, _ = resolve_fenceposts(*_rolling_params(d), replicas(d))
    return surge


def new_rs_new_replicas(d: dict[str, Any], all_rss: Sequence[dict[str, Any] | None], new_rs: dict[str, Any]) -> int:
    """How big the new ReplicaSet may be now (``NewRSNewReplicas``)."""
    if not is_rolling(d):
        return replicas(d)
    surge = scaled_value(_rolling_params(d)[0], replicas(d), True)
    current = replica_count(all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + up
