"""Jepsen-style operation histories: the record a chaos run hands to the checkers.

A history is a list of :class:`Op` events in the order they were recorded.
Every client operation appears as an ``invoke`` event followed, for the same
process, by exactly one completion:

* ``ok``   -- the operation took effect (for reads: this is the value read);
* ``fail`` -- the operation certainly did not take effect;
* ``info`` -- unknown: it may or may not take effect, at any time after its
  invocation. The process that got ``info`` is never reused.

A trailing ``invoke`` with no completion at all (the client crashed, the run
was cut short) is treated exactly like ``info``.

Operation shapes (``f`` and ``value``):

=========  ==============================  ===============================
f          value on invoke                 value on ok
=========  ==============================  ===============================
read       None                            int read, or None (missing key)
write      int written                     int written
cas        [expected, new]                 [expected, new]
add        element                         element
read_set   None                            list of elements read
=========  ==============================  ===============================

Files on disk are JSON Lines: one object per event with the keys ``index,
process, type, f, key, value, time, error``.  :meth:`History.to_porcupine`
exports register operations for Porcupine (see its docstring for the shape).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
COMPLETIONS: frozenset[str] = frozenset({"ok", "fail", "info"})
REGISTER_FS: frozenset[str] = frozenset({"read", "write", "cas"})

# Porcupine kv-model op codes; 2 is our own extension (see to_porcupine).
PORCUPINE_GET, PORCUPINE_PUT, PORCUPINE_CAS = 0, 1, 2


@dataclass(slots=True)
class Op:
    """One event of a history: an invocation or a completion."""

    index: int
    process: int
    type: OpType
    f: str
    key: str
    value: Any
    time: float
    error: str | None = None


Pair = tuple[Op, Op | None]
"""An invocation and its completion (None: the invocation never completed)."""


def pair_ops(ops: Iterable[Op]) -> list[Pair]:
    """Match every invoke with its process's next completion, in history order.

    An invoke that is followed by another invoke of the same process, or by
    nothing, gets completion None (callers treat it as ``info``).  A completion
    with no pending invoke, or one that disagrees with its invoke about ``f``
    or ``key``, or goes back in time, is a malformed history: ValueError.
    """
    pairs: list[Pair] = []
    slot_of: dict[int, int] = {}  # process -> position in pairs of its pending invoke
    for op in ops:
        if op.type == "invoke":
            # A process that invokes again without completing lost its earlier
            # completion; the earlier op simply stays without one (= info).
            slot_of[op.process] = len(pairs)
            pairs.append((op, None))
        elif op.type in COMPLETIONS:
            slot = slot_of.pop(op.process, None)
            if slot is None:
                raise ValueError(f"completion without a pending invoke: {op}")
            inv = pairs[slot][0]
            if inv.f != op.f or inv.key != op.key:
                raise ValueError(f"completion {op} does not match its invoke {inv}")
            if op.time < inv.time:
                raise ValueError(f"completion {op} precedes its invoke {inv}")
            pairs[slot] = (inv, op)
        else:
            raise ValueError(f"unknown op type {op.type!r} in {op}")
    return pairs


def completion_type(pair: Pair) -> str:
    """``ok``/``fail``/``info`` for a pair; a missing completion counts as info."""
    return "info" if pair[1] is None else pair[1].type


class History:
    """An append-only list of :class:`Op` with Jepsen-style helpers."""

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self.ops: list[Op] = list(ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __getitem__(self, i: int) -> Op:
        return self.ops[i]

    # -- building -----------------------------------------------------------

    def append(
        self,
        process: int,
        type: OpType,
        f: str,
        key: str,
        value: Any,
        time: float,
        error: str | None = None,
    ) -> Op:
        """Append an event; its index is its position in the history."""
        op = Op(len(self.ops), process, type, f, key, value, float(time), error)
        self.ops.append(op)
        return op

    def invoke(self, process: int, f: str, key: str, value: Any, time: float) -> Op:
        return self.append(process, "invoke", f, key, value, time)

    def ok(self, process: int, f: str, key: str, value: Any, time: float) -> Op:
        return self.append(process, "ok", f, key, value, time)

    def fail(self, process: int, f: str, key: str, value: Any, time: float, error: str | None = None) -> Op:
        return self.append(process, "fail", f, key, value, time, error)

    def info(self, process: int, f: str, key: str, value: Any, time: float, error: str | None = None) -> Op:
        return self.append(process, "info", f, key, value, time, error)

    # -- views --------------------------------------------------------------

    def pair(self) -> list[Pair]:
        """(invoke, completion-or-None) for every operation, in invocation order."""
        return pair_ops(self.ops)

    def by_key(self) -> dict[str, list[Op]]:
        """Events grouped by key, each group in history order."""
        groups: dict[str, list[Op]] = {}
        for op in self.ops:
            groups.setdefault(op.key, []).append(op)
        return groups

    # -- persistence --------------------------------------------------------

    def write_jsonl(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for op in self.ops:
                fh.write(json.dumps(asdict(op), separators=(",", ":")))
                fh.write("\n")

    @classmethod
    def read_jsonl(cls, path: str | Path) -> History:
        ops: list[Op] = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                d = json.loads(line)
                ops.append(
                    Op(
                        index=int(d["index"]),
                        process=int(d["process"]),
                        type=d["type"],
                        f=d["f"],
                        key=d["key"],
                        value=d.get("value"),
                        time=float(d["time"]),
                        error=d.get("error"),
                    )
                )
        return cls(ops)

    def to_porcupine(self, path: str | Path | None = None) -> list[dict[str, Any]]:
        """Export register ops as Porcupine ``[]porcupine.Operation`` JSON.

        Each element is::

            {"ClientId": int,                       # our process id
             "Input":  {"Op": 0|1|2, "Key": str, "Value": str},
             "Call":   int,                         # invoke time, ns
             "Output": {"Value": str},
             "Return": int}                         # completion time, ns

        Op 0 is get (Output.Value is the value read, "" for a missing key),
        Op 1 is put (Input.Value is the value written, Output.Value is "").
        Porcupine's stock kv model only knows get/put/append, so cas is
        exported as Op 2, our own extension, which needs a model that knows
        it: Input.Value is the JSON text ``[expected, new]`` (e.g.
        ``"[null, 3]"``) and Output.Value is ``"ok"``, or ``"?"`` when the
        outcome is unknown.

        Porcupine has no notion of an operation that may never happen, so:
        ``fail`` ops are dropped (they did not happen), ``info`` or
        never-completed reads are dropped (they cannot constrain anything),
        and ``info`` writes/cas get a Return one second after the end of the
        history -- late enough to be linearized after everything else, which
        is indistinguishable from never taking effect.  Non-register ops
        (add, read_set) are skipped.  Returns the list; writes it to ``path``
        if given.
        """

        def ns(t: float) -> int:
            return int(round(t * 1e9))

        def s(v: Any) -> str:
            return "" if v is None else str(v)

        end_ns = max((ns(op.time) for op in self.ops), default=0) + 1_000_000_000
        out: list[dict[str, Any]] = []
        for inv, comp in self.pair():
            if inv.f not in REGISTER_FS:
                continue
            status = "info" if comp is None else comp.type
            if status == "fail" or (status == "info" and inv.f == "read"):
                continue
            ret = end_ns if status == "info" else ns(comp.time)  # type: ignore[union-attr]
            if inv.f == "read":
                op_code, in_val, out_val = PORCUPINE_GET, "", s(comp.value)  # type: ignore[union-attr]
            elif inv.f == "write":
                op_code, in_val, out_val = PORCUPINE_PUT, s(inv.value), ""
            else:
                op_code = PORCUPINE_CAS
                in_val = json.dumps(list(inv.value))
                out_val = "ok" if status == "ok" else "?"
            out.append(
                {
                    "ClientId": inv.process,
                    "Input": {"Op": op_code, "Key": inv.key, "Value": in_val},
                    "Call": ns(inv.time),
                    "Output": {"Value": out_val},
                    "Return": ret,
                }
            )
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(out, fh)
        return out
