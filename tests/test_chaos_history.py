"""History files: the JSON Lines round trip and the Porcupine export."""

from __future__ import annotations

import json
from pathlib import Path

from checker_fixtures import call

from raftstore.chaos.history import History, Op

# -- history files --------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.25, 1.5)
    call(h, 1, "cas", "x", [1, 2], 2.0, 3.0, status="fail")
    h.invoke(2, "read", "x", None, 4.0)
    h.info(2, "read", "x", None, 5.0, error="timeout")
    call(h, 3, "read_set", "s", None, 6.0, 7.0, out=[1, 2, 3])
    call(h, 4, "write", "y", 5, 8.0, None)
    path = tmp_path / "history.jsonl"
    h.write_jsonl(path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(h)
    assert set(json.loads(lines[0])) == {"index", "process", "type", "f", "key", "value", "time", "error"}
    back = History.read_jsonl(path)
    assert back.ops == h.ops
    assert [p[0].index for p in back.pair()] == [p[0].index for p in h.pair()]
    assert back.by_key().keys() == {"x", "s", "y"}
    assert all(isinstance(op, Op) for op in back)


def test_porcupine_export_shape(tmp_path: Path) -> None:
    h = History()
    call(h, 0, "write", "x", 1, 0.5, 1.0)
    call(h, 1, "read", "x", None, 1.5, 2.0, out=1)
    call(h, 1, "read", "x", None, 2.5, 3.0, out=None)
    call(h, 2, "cas", "x", [1, 2], 3.5, 4.0)
    call(h, 3, "write", "x", 9, 4.0, 4.5, status="fail")  # dropped
    call(h, 4, "write", "x", 7, 5.0, 6.0, status="info")
    call(h, 5, "read", "x", None, 5.0, None)  # unknown read: dropped
    call(h, 6, "add", "s", 1, 5.0, 6.0)  # not a register op: skipped
    path = tmp_path / "porcupine.json"
    out = h.to_porcupine(path)
    assert json.loads(path.read_text()) == out
    assert len(out) == 5
    for o in out:
        assert set(o) == {"ClientId", "Input", "Call", "Output", "Return"}
        assert set(o["Input"]) == {"Op", "Key", "Value"} and set(o["Output"]) == {"Value"}
        assert isinstance(o["Call"], int) and isinstance(o["Return"], int)
        assert o["Call"] <= o["Return"]
    put, get1, get_missing, cas, info_put = out
    assert put == {
        "ClientId": 0,
        "Input": {"Op": 1, "Key": "x", "Value": "1"},
        "Call": 500_000_000,
        "Output": {"Value": ""},
        "Return": 1_000_000_000,
    }
    assert get1["Input"]["Op"] == 0 and get1["Output"]["Value"] == "1"
    assert get_missing["Output"]["Value"] == ""
    assert cas["Input"] == {"Op": 2, "Key": "x", "Value": "[1, 2]"} and cas["Output"]["Value"] == "ok"
    # An unknown outcome returns after the end of the history.
    assert info_put["Return"] > max(o["Call"] for o in out)
    assert info_put["Return"] > 6_000_000_000
