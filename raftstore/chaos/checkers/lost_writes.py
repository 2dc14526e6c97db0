"""Lost-write checkers: acknowledged adds and writes must survive to the end.

Two workloads are covered:

* the **set** workload (:func:`check_lost_writes`): processes ``add`` unique
  elements to a per-key set and the run ends with one or more ``read_set``;
  the last ok one per key is the final read.  Every acknowledged add must be
  in it, nothing else may be, and nothing twice.
* the **register** workload (:func:`check_acknowledged_writes`): given the
  values found in the store after the run, every key whose last
  acknowledged write is certain must hold that write's value.

Both are conservative: they only report a violation that no legal execution
could explain.  ``fail`` means the op did not happen, ``info`` (or an invoke
with no completion) means it may or may not have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from raftstore.chaos.history import Op, Pair, completion_type, pair_ops

Verdict = Literal[True, False, "unknown"]
_EXAMPLES = 10


def _freeze(v: Any) -> Any:
    """Hashable stand-in for an element or value (JSON gives lists)."""
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _sort_key(v: Any) -> tuple[str, str]:
    # Elements may mix types; sort by type name then text for stable reports.
    return (type(v).__name__, repr(v))


# -- set workload -------------------------------------------------------------


@dataclass(slots=True)
class SetKeyResult:
    """Set-workload verdict for one key.

    ``valid`` is "unknown" when the key has no ok final read.  ``unconfirmed``
    lists ok adds that are absent from the final read but completed only
    after it began: they could legally be missing, so they are not lost.
    ``unexpected`` includes elements whose add *failed* (fail = did not
    happen), as well as elements that were never added at all.
    """

    key: str
    valid: Verdict
    lost: list[Any] = field(default_factory=list)
    unexpected: list[Any] = field(default_factory=list)
    duplicated: list[Any] = field(default_factory=list)
    recovered: list[Any] = field(default_factory=list)
    unconfirmed: list[Any] = field(default_factory=list)
    ok_count: int = 0
    info_count: int = 0
    fail_count: int = 0
    final_read_size: int | None = None


@dataclass(slots=True)
class SetResult:
    """Overall set-workload verdict; the element lists hold (key, element)."""

    valid: Verdict
    keys: dict[str, SetKeyResult]
    lost: list[tuple[str, Any]]
    unexpected: list[tuple[str, Any]]
    duplicated: list[tuple[str, Any]]
    recovered: list[tuple[str, Any]]
    ok_count: int
    info_count: int
    fail_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "key_count": len(self.keys),
            "ok_count": self.ok_count,
            "info_count": self.info_count,
            "fail_count": self.fail_count,
            "lost_count": len(self.lost),
            "unexpected_count": len(self.unexpected),
            "duplicated_count": len(self.duplicated),
            "recovered_count": len(self.recovered),
            "lost": self.lost[:_EXAMPLES],
            "unexpected": self.unexpected[:_EXAMPLES],
            "duplicated": self.duplicated[:_EXAMPLES],
            "invalid_keys": [k for k, r in self.keys.items() if r.valid is False],
            "unknown_keys": [k for k, r in self.keys.items() if r.valid == "unknown"],
        }


def _check_set_key(key: str, pairs: list[Pair]) -> SetKeyResult:
    result = SetKeyResult(key=key, valid="unknown")
    # element -> (status, ok completion time or None, element as added);
    # should an element ever be added twice, ok beats info beats fail.
    rank = {"ok": 2, "info": 1, "fail": 0}
    adds: dict[Any, tuple[str, float | None, Any]] = {}
    final: tuple[Op, Op] | None = None
    for pair in pairs:
        inv, comp = pair
        status = completion_type(pair)
        if inv.f == "add":
            result.ok_count += status == "ok"
            result.info_count += status == "info"
            result.fail_count += status == "fail"
            el = _freeze(inv.value)
            done = comp.time if comp is not None and status == "ok" else None
            prev = adds.get(el)
            if prev is None or rank[status] > rank[prev[0]]:
                adds[el] = (status, done, inv.value)
        elif inv.f == "read_set" and status == "ok":
            assert comp is not None
            if final is None or comp.index > final[1].index:
                final = (inv, comp)
    if final is None:
        return result

    read_start = final[0].time
    seen = Counter(_freeze(x) for x in (final[1].value or []))
    originals = {_freeze(x): x for x in (final[1].value or [])}
    result.final_read_size = sum(seen.values())
    for el, (status, done, original) in adds.items():
        present = el in seen
        if status == "ok" and not present:
            # Only an add acknowledged before the final read began must show.
            (result.lost if done is not None and done < read_start else result.unconfirmed).append(original)
        elif status == "info" and present:
            result.recovered.append(original)
        elif status == "fail" and present:
            result.unexpected.append(original)
    for el, count in seen.items():
        if el not in adds:
            result.unexpected.append(originals[el])
        if count > 1:
            result.duplicated.append(originals[el])
    for bucket in (result.lost, result.unexpected, result.duplicated, result.recovered, result.unconfirmed):
        bucket.sort(key=_sort_key)
    result.valid = not (result.lost or result.unexpected or result.duplicated)
    return result


def check_lost_writes(history: Iterable[Op]) -> SetResult:
    """Check the set workload: no acknowledged add lost, nothing unexpected or doubled.

    Overall ``valid`` is False if any key is invalid, else "unknown" if some
    key with adds has no ok final read, else True.
    """
    groups: dict[str, list[Pair]] = {}
    for pair in pair_ops(history):
        if pair[0].f in ("add", "read_set"):
            groups.setdefault(pair[0].key, []).append(pair)
    keys = {k: _check_set_key(k, ps) for k, ps in groups.items()}

    def gather(attr: str) -> list[tuple[str, Any]]:
        return [(k, el) for k, r in keys.items() for el in getattr(r, attr)]

    verdicts = [r.valid for r in keys.values()]
    valid: Verdict = False if False in verdicts else ("unknown" if "unknown" in verdicts else True)
    return SetResult(
        valid=valid,
        keys=keys,
        lost=gather("lost"),
        unexpected=gather("unexpected"),
        duplicated=gather("duplicated"),
        recovered=gather("recovered"),
        ok_count=sum(r.ok_count for r in keys.values()),
        info_count=sum(r.info_count for r in keys.values()),
        fail_count=sum(r.fail_count for r in keys.values()),
    )


# -- register workload --------------------------------------------------------

AckStatus = Literal["ok", "lost", "unexpected", "unchecked"]


@dataclass(slots=True)
class AckKeyResult:
    """Final-value verdict for one register key.

    ``explanations`` are the values some legal execution could leave in the
    key (values of writes that need not precede any acknowledged write, plus
    None if no write was acknowledged).  ``status`` is "lost" if the final
    value is not among them although a write was acknowledged, "unexpected"
    if no write was acknowledged and the final value was never written,
    "unchecked" if the final value of the key is not known.
    """

    key: str
    status: AckStatus
    final: Any = None
    explanations: list[Any] = field(default_factory=list)
    last_acknowledged: Pair | None = None


@dataclass(slots=True)
class AckResult:
    valid: bool
    keys: dict[str, AckKeyResult]
    lost: list[str]
    unexpected: list[str]
    checked_count: int
    unchecked_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked_count": self.checked_count,
            "unchecked_count": self.unchecked_count,
            "lost": self.lost,
            "unexpected": self.unexpected,
            "examples": {
                k: {"final": self.keys[k].final, "explanations": self.keys[k].explanations}
                for k in (self.lost + self.unexpected)[:_EXAMPLES]
            },
        }


def check_acknowledged_writes(history: Iterable[Op], final_values: Mapping[str, Any]) -> AckResult:
    """Check that no acknowledged register write was lost.

    ``final_values`` maps key -> value found in the store once every op of
    the history had completed (None for a missing key); keys absent from it
    are not checked.  The final value of a key is the value of the last write
    (or successful cas) to take effect.  That write cannot be one that
    completed before some acknowledged write began, because the acknowledged
    one took effect later.  So a key is flagged only when its final value
    matches none of the remaining writes -- ``info`` ones included, since they
    may take effect at any time -- which no execution could produce.
    """
    INF = float("inf")
    # key -> [(invoke time, return time, value written, acknowledged, op)]
    writers: dict[str, list[tuple[float, float, Any, bool, Pair]]] = {}
    for pair in pair_ops(history):
        inv, comp = pair
        if inv.f not in ("write", "cas"):
            continue
        outcome = completion_type(pair)
        if outcome == "fail":
            continue
        value = inv.value if inv.f == "write" else inv.value[1]
        ret = comp.time if outcome == "ok" and comp is not None else INF
        writers.setdefault(inv.key, []).append((inv.time, ret, value, outcome == "ok", pair))

    keys: dict[str, AckKeyResult] = {}
    for key in list(writers) + [k for k in final_values if k not in writers]:
        ws = writers.get(key, [])
        if key not in final_values:
            keys[key] = AckKeyResult(key, "unchecked")
            continue
        final = final_values[key]
        acked = [w for w in ws if w[3]]
        # A write can be the last one only if it does not precede (complete
        # before the invocation of) an acknowledged write.
        latest_acked_start = max((w[0] for w in acked), default=-INF)
        last = [w for w in ws if not w[1] < latest_acked_start]
        explanations: dict[Any, Any] = {_freeze(w[2]): w[2] for w in last}
        if not acked:
            explanations[None] = None
        last_acked = max(acked, key=lambda w: w[1], default=None)
        status: AckStatus
        if _freeze(final) in explanations:
            status = "ok"
        else:
            status = "lost" if acked else "unexpected"
        keys[key] = AckKeyResult(
            key,
            status,
            final,
            sorted(explanations.values(), key=_sort_key),
            None if last_acked is None else last_acked[4],
        )
    lost = [k for k, r in keys.items() if r.status == "lost"]
    unexpected = [k for k, r in keys.items() if r.status == "unexpected"]
    unchecked = sum(r.status == "unchecked" for r in keys.values())
    return AckResult(
        valid=not (lost or unexpected),
        keys=keys,
        lost=lost,
        unexpected=unexpected,
        checked_count=len(keys) - unchecked,
        unchecked_count=unchecked,
    )
